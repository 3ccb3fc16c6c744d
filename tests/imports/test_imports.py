"""`radar import`: synthetic world -> vendor export -> import -> validate -> the same rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.imports.engine import ImportFailedError, run_import
from features.imports.mapping import MappingError, load_mapping, load_preset, preset_names
from features.synthetic.dataset import generate_dataset
from radar.cli import app
from tests.fixtures.make_exports import EVENT_PRESETS, make_exports

EVENT_ACCOUNTS = 6  # event exports are the large ones: a few accounts keep them small
NOW = "2026-01-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small synthetic world (60 accounts x 12 months)."""
    out = tmp_path_factory.mktemp("imports") / "world"
    generate_dataset(out, accounts=60, months=12, seed=5)
    return out


@pytest.fixture(scope="module")
def event_log(world, tmp_path_factory) -> Path:
    """The generic event-log export of the world's first accounts."""
    return make_exports(world, tmp_path_factory.mktemp("ev") / "x", "event_log", EVENT_ACCOUNTS)


def _read(folder: Path, table: str) -> pd.DataFrame:
    df = pd.read_parquet(folder / f"{table}.parquet")
    for c in df.columns:
        if "date" in c or c in ("customer_since", "week_start"):
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")  # one unit to compare
        elif df[c].dtype == "category" or c.endswith("_id") or c == "feature":
            df[c] = df[c].astype(str)
    return df


def _cli(*args: str):
    result = CliRunner().invoke(app, list(map(str, args)))
    return result


def _import_ok(*args: str) -> str:
    result = _cli("import", *args)
    assert result.exit_code == 0, result.output
    out = args[list(args).index("--out") + 1]
    valid = _cli("validate", "--data", out, "--now", NOW)
    assert valid.exit_code == 0, valid.output
    return result.output


def test_every_preset_loads_and_the_list_is_complete():
    assert preset_names() == sorted(
        [*EVENT_PRESETS, "stripe", "chargebee", "salesforce", "hubspot", "zendesk", "freshdesk"]
    )
    for name in preset_names():
        assert load_preset(name).name == name


@pytest.mark.parametrize("preset", EVENT_PRESETS)
def test_event_presets_round_trip_usage_exactly(preset, world, tmp_path):
    ex = make_exports(world, tmp_path / "ex", preset, EVENT_ACCOUNTS)
    out = tmp_path / "out"
    text = _import_ok("--preset", preset, "--from", ex, "--out", out)
    assert "--activity-churn-days" in text  # an event log has no contracts: said once
    assert text.count("--activity-churn-days") == 1
    got = _read(out, "usage").sort_values(["account_id", "date", "feature"])
    want = _read(world, "usage")
    want = want[want["account_id"].isin(got["account_id"].unique())]
    want = want.sort_values(["account_id", "date", "feature"])
    assert got["account_id"].nunique() == EVENT_ACCOUNTS
    cols = ["account_id", "date", "feature", "active_users", "events"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True),
        want[cols].reset_index(drop=True),
        check_dtype=False,
        check_categorical=False,
    )
    # Weekly distinct users: exact where the week's daily users can add up to them.
    wau = _read(out, "weekly_active_users").merge(
        _read(world, "weekly_active_users"), on=["account_id", "week_start"], suffixes=("", "_w")
    )
    assert len(wau) > 100
    assert (wau["active_users"] == wau["active_users_w"]).mean() > 0.8
    acc = _read(out, "accounts")
    assert sorted(acc["account_id"]) == sorted(got["account_id"].unique())
    if preset == "segment":
        assert "1 dropped by the preset" in text  # the group call


def _subscription_frame(folder: Path) -> pd.DataFrame:
    s = _read(folder, "subscriptions")
    return s.sort_values(["account_id", "start_date", "change_type"]).reset_index(drop=True)


@pytest.mark.parametrize("preset", ["stripe", "chargebee", "salesforce", "hubspot"])
def test_billing_and_crm_presets_round_trip_contracts(preset, world, event_log, tmp_path):
    ex = make_exports(world, tmp_path / "ex", preset)
    out = tmp_path / "out"
    text = _import_ok(
        "--preset",
        preset,
        "--preset",
        "event_log",
        "--from",
        ex,
        "--from",
        event_log,
        "--out",
        out,
        "--key",
        "crm_id",
    )
    got, want = _subscription_frame(out), _subscription_frame(world)
    key = ["account_id", "start_date", "change_type"]
    pd.testing.assert_frame_equal(got[key], want[key], check_dtype=False)
    np.testing.assert_allclose(got["arr"], want["arr"], rtol=1e-3)
    if preset in ("stripe", "chargebee", "salesforce"):
        assert (got["seats"].astype(float) == want["seats"].astype(float)).all()
    live = want["change_type"] != "churn"
    assert (got.loc[live, "plan_tier"] == want.loc[live, "plan_tier"]).all()
    if preset in ("stripe", "chargebee"):
        term = (want["billing_term"] == "annual") & live
        assert (got.loc[term, "end_date"] == want.loc[term, "end_date"]).all()
        order = ["account_id", "due_date", "amount"]
        inv = _read(out, "invoices").sort_values(order).reset_index(drop=True)
        winv = _read(world, "invoices").sort_values(order).reset_index(drop=True)
        cols = ["account_id", "due_date", "paid_date"]
        pd.testing.assert_frame_equal(inv[cols], winv[cols], check_dtype=False)
        np.testing.assert_allclose(inv["amount"], winv["amount"], rtol=1e-9)
    acc, wacc = _read(out, "accounts"), _read(world, "accounts")
    assert sorted(acc["account_id"]) == sorted(wacc["account_id"])
    if preset == "salesforce":
        m = acc.merge(wacc, on="account_id", suffixes=("", "_w"))
        for c in ("name", "industry", "region", "segment", "customer_since"):
            assert (m[c].fillna("-") == m[f"{c}_w"].fillna("-")).all(), c
    assert "absent: usage" not in text


@pytest.mark.parametrize("preset", ["zendesk", "freshdesk"])
def test_support_presets_round_trip_tickets(preset, world, event_log, tmp_path):
    ex = make_exports(world, tmp_path / "ex", preset)
    out = tmp_path / "out"
    _import_ok(
        "--preset",
        preset,
        "--preset",
        "event_log",
        "--from",
        ex,
        "--from",
        event_log,
        "--out",
        out,
        "--key",
        "crm_id",
    )
    got = _read(out, "support_tickets").sort_values(["account_id", "created_date", "severity"])
    want = _read(world, "support_tickets").sort_values(["account_id", "created_date", "severity"])
    cols = ["account_id", "created_date", "resolved_date", "severity", "escalated"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_dtype=False
    )
    if preset == "zendesk":  # good/bad: 4-5 read as 5, 1-2 as 1, 3 (offered) as none
        expect = want["csat"].map({1: 1, 2: 1, 4: 5, 5: 5})
        assert got["csat"].astype("Float64").fillna(-1).tolist() == expect.fillna(-1).tolist()


def test_merged_sources_join_by_key_and_list_unmatched(world, event_log, tmp_path):
    ex = make_exports(world, tmp_path / "ex", "stripe")
    cust = pd.read_csv(ex / "stripe_customers.csv", dtype=str)
    cust.loc[0, "crm_id (metadata)"] = None  # a Stripe customer the CRM does not know
    cust.to_csv(ex / "stripe_customers.csv", index=False)
    out = tmp_path / "out"
    result = _cli(
        "import",
        "--preset",
        "stripe",
        "--preset",
        "event_log",
        "--from",
        ex,
        "--from",
        event_log,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    lost = cust.loc[0, "id"]
    assert "unmatched" in result.output and lost in result.output
    subs = _read(out, "subscriptions")
    wsubs = _read(world, "subscriptions")
    gone = _read(world, "accounts")["account_id"].iloc[0]
    assert gone not in set(subs["account_id"])
    assert len(subs) == (wsubs["account_id"] != gone).sum()


def _assert_untouched(out: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(
    ("preset", "file", "edit", "expect"),
    [
        ("stripe", "stripe_customers.csv", "drop:Created (UTC)", "missing column 'Created (UTC)'"),
        ("stripe", "stripe_subscriptions.csv", "bad:Start Date (UTC)", "'yesterday'"),
        ("stripe", "stripe_invoices.csv", "bad:Currency", "unknown currency"),
        ("stripe", "stripe_invoices.csv", "dup:id", "duplicate invoices key invoice_id"),
        ("chargebee", "chargebee_subscriptions.csv", "drop:started_at", "closest: 'cancelled_at'"),
        ("salesforce", "salesforce_opportunities.csv", "bad:Close Date", "not a date (%m/%d/%Y)"),
        ("hubspot", "hubspot_deals.csv", "drop:Close Date", "missing column 'Close Date'"),
    ],
)
def test_bad_exports_name_preset_file_column_row_and_value(
    preset, file, edit, expect, world, tmp_path
):
    ex = make_exports(world, tmp_path / "ex", preset)
    df = pd.read_csv(ex / file, dtype=str)
    op, col = edit.split(":")
    if op == "drop":
        df = df.drop(columns=col)
    elif op == "bad":
        df.loc[3, col] = "yesterday" if "Date" in col else "XYZ"
    else:
        df.loc[5, col] = df.loc[4, col]
    df.to_csv(ex / file, index=False)
    rates = tmp_path / "rates.yaml"
    rates.write_text(yaml.safe_dump({"base": "USD", "rates": {"EUR": 1.1}}))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier import")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = _cli(
        "import",
        "--preset",
        preset,
        "--from",
        ex,
        "--out",
        out,
        "--rates",
        rates,
        "--key",
        "crm_id",
    )
    assert result.exit_code == 1
    assert expect in result.output, result.output
    assert f"preset {preset}" in result.output and "nothing written" in result.output
    if op == "bad":
        assert f"{file} row 4" in result.output  # data rows from 1: the 4th row
    _assert_untouched(out, before)


def test_several_currencies_need_a_rate_table_and_convert_by_it(world, event_log, tmp_path):
    ex = make_exports(world, tmp_path / "ex", "stripe")
    inv = pd.read_csv(ex / "stripe_invoices.csv", dtype=str)
    inv.loc[0, "Currency"] = "eur"
    inv.to_csv(ex / "stripe_invoices.csv", index=False)
    out = tmp_path / "out"
    args = [
        "import",
        "--preset",
        "stripe",
        "--preset",
        "event_log",
        "--from",
        ex,
        "--from",
        event_log,
        "--out",
        out,
    ]
    result = _cli(*args)
    assert result.exit_code == 1 and "--rates" in result.output and "EUR, USD" in result.output
    rates = tmp_path / "rates.yaml"
    rates.write_text(yaml.safe_dump({"base": "USD", "rates": {"EUR": 1.25}}))
    assert _cli(*args, "--rates", rates).exit_code == 0
    got = _read(out, "invoices").set_index("invoice_id")["amount"]
    assert got["in_" + "I0000001"] == pytest.approx(float(inv.loc[0, "Amount Due"]) * 1.25)
    assert got.iloc[1:].tolist() == pytest.approx(inv["Amount Due"].astype(float).iloc[1:].tolist())


def test_incremental_import_keeps_old_rows_once(world, tmp_path):
    ex = make_exports(world, tmp_path / "ex", "segment", 2)
    lines = (ex / "segment_tracks.jsonl").read_text().splitlines()
    stamp = [json.loads(x).get("timestamp", "") for x in lines]
    order = np.argsort(stamp, kind="stable")
    cut = len(lines) * 2 // 3
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    # Day one: the first two thirds; day two: the last half (overlapping the first export).
    (old / "segment_a.jsonl").write_text("\n".join(lines[i] for i in order[:cut]) + "\n")
    (new / "segment_b.jsonl").write_text(
        "\n".join(lines[i] for i in order[len(lines) // 2 :]) + "\n"
    )
    out = tmp_path / "out"
    _import_ok("--preset", "segment", "--from", old, "--out", out)
    _import_ok("--preset", "segment", "--from", new, "--out", out)
    full = tmp_path / "full"
    _import_ok("--preset", "segment", "--from", ex, "--out", full)
    for table in ("usage", "weekly_active_users"):
        a = _read(out, table)
        b = _read(full, table)
        key = [c for c in a.columns if c in ("account_id", "date", "feature", "week_start")]
        pd.testing.assert_frame_equal(
            a.sort_values(key).reset_index(drop=True),
            b.sort_values(key).reset_index(drop=True),
            check_dtype=False,
        )


def test_incremental_billing_export_adds_new_rows(world, event_log, tmp_path):
    ex = make_exports(world, tmp_path / "ex", "zendesk")
    tickets = (ex / "zendesk_tickets.jsonl").read_text().splitlines()
    first = tmp_path / "first"
    shutil.copytree(ex, first)
    (first / "zendesk_tickets.jsonl").write_text("\n".join(tickets[:200]) + "\n")
    out = tmp_path / "out"
    args = ["--preset", "zendesk", "--preset", "event_log", "--key", "crm_id", "--out", out]
    _import_ok(*args, "--from", first, "--from", event_log)
    assert len(_read(out, "support_tickets")) == 200
    _import_ok(*args, "--from", ex, "--from", event_log)
    assert len(_read(out, "support_tickets")) == len(tickets)


def test_a_users_own_mapping_and_mapping_errors(world, tmp_path):
    ex = tmp_path / "ex"
    ex.mkdir()
    pd.DataFrame(
        {
            "org": ["acme", "acme", "globex"],
            "who": ["u1", "u2", "u1"],
            "when": ["03/01/2025 23:30", "03/01/2025 08:00", "04/01/2025 10:00"],
            "what": ["Report Viewed", "Report Viewed", "Alert Set"],
        }
    ).to_csv(ex / "log.csv", index=False)
    spec = {
        "name": "ours",
        "title": "Our product log",
        "default_key": "org",
        "source_timezone": "Europe/Berlin",
        "timezone": "America/New_York",
        "sources": [
            {
                "name": "log",
                "files": "log.csv",
                "table": "events",
                "account": {"any": "org"},
                "columns": {
                    "user_id": "who",
                    "timestamp": {"source": "when", "format": "%d/%m/%Y %H:%M"},
                    "feature": {
                        "source": "what",
                        "values": {"report viewed": "reports", "alert set": "alerts"},
                    },
                },
            }
        ],
    }
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    _import_ok("--mapping", path, "--from", ex, "--out", out)
    usage = _read(out, "usage").sort_values(["account_id", "date"])
    # 23:30 in Berlin is 17:30 in New York: the same day; 08:00 Berlin is 02:00 New York.
    assert usage["date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-01-03", "2025-01-04"]
    assert usage["active_users"].tolist() == [2, 1]
    assert usage["feature"].tolist() == ["reports", "alerts"]
    spec["sources"][0]["columns"]["user"] = "who"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(MappingError, match="user"):
        load_mapping(path)
    with pytest.raises(MappingError, match="did you mean stripe"):
        load_preset("strpe")


def test_unmapped_value_names_row_and_value(tmp_path):
    ex = tmp_path / "ex"
    ex.mkdir()
    (ex / "freshdesk_companies.jsonl").write_text(
        '{"id": 1, "name": "A", "created_at": "2025-01-01T00:00:00Z"}\n'
    )
    (ex / "freshdesk_tickets.jsonl").write_text(
        '{"id": 1, "company_id": 1, "created_at": "2025-01-02T00:00:00Z", "priority": 2, '
        '"is_escalated": false, "stats": {"resolved_at": null}}\n'
        '{"id": 2, "company_id": 1, "created_at": "2025-01-02T00:00:00Z", "priority": 9, '
        '"is_escalated": false, "stats": {"resolved_at": null}}\n'
    )
    with pytest.raises(ImportFailedError, match=r"priority.*freshdesk_tickets.jsonl row 2 \('9'\)"):
        run_import([load_preset("freshdesk")], [ex], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_docs_show_every_presets_mapping_as_shipped():
    from features.imports.mapping import PRESET_ORDER, presets_markdown

    assert sorted(PRESET_ORDER) == preset_names()
    doc = (Path(__file__).parents[2] / "docs" / "sources.md").read_text()
    generated = doc.split("<!-- generated: start -->\n")[1].split("<!-- generated: end -->")[0]
    assert generated.strip() == presets_markdown().strip()


@pytest.mark.slow
def test_imported_folder_gives_the_same_snapshots_within_what_the_export_carries(tmp_path):
    """Stripe + Segment exports of a world -> the same labels and features, except named ones."""
    from features.catalogue import LABELS
    from features.config import FeatureConfig
    from features.pipeline import run_features

    world = tmp_path / "world"
    generate_dataset(world, accounts=30, months=12, seed=7)
    ref = tmp_path / "ref"  # the world's tables the two exports carry
    ref.mkdir()
    for table in ("accounts", "subscriptions", "invoices", "usage", "weekly_active_users"):
        shutil.copy(world / f"{table}.parquet", ref)
    ex = make_exports(world, tmp_path / "ex", "stripe")
    make_exports(world, ex, "segment")
    run_import([load_preset("stripe"), load_preset("segment")], [ex], tmp_path / "imp")
    a = run_features(ref, tmp_path / "fa", FeatureConfig()).snapshots
    b = run_features(tmp_path / "imp", tmp_path / "fb", FeatureConfig()).snapshots
    m = a.merge(b, on=["account_id", "as_of"], suffixes=("", "_imp"))
    assert len(m) == len(a) == len(b) > 150
    differ = set()
    for c in a.columns:
        if c in ("account_id", "as_of"):
            continue
        x, y = m[c], m[f"{c}_imp"]
        same = (x.isna() & y.isna()) | (x.astype(str) == y.astype(str))
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            nx, ny = x.astype(float), y.astype(float)
            same |= (nx - ny).abs() <= 1e-6 * nx.abs().clip(lower=1)
        if not same.all():
            differ.add(c)
    assert not differ & set(LABELS), differ  # every label identical
    # Not carried: weekly active users in part (seat utilisation and the health score built
    # on it), the segment (Stripe has none), multi-year terms (Stripe: month or year).
    carried_apart = {
        "seat_utilisation",
        "segment",
        "billing_term",
        "billing_term_months",
        "renewal_risk",
    }
    prefixes = ("health", "month_ago_health", "alert", "trigger")
    assert {c for c in differ if not c.startswith(prefixes)} <= carried_apart, differ


def test_two_billing_customers_of_one_crm_account_are_one_account(world, event_log, tmp_path):
    ex = make_exports(world, tmp_path / "ex", "stripe")
    cust = pd.read_csv(ex / "stripe_customers.csv", dtype=str)
    twin = cust.iloc[[0]].assign(id="cus_twin")  # a second Stripe customer of the same account
    pd.concat([cust, twin]).to_csv(ex / "stripe_customers.csv", index=False)
    subs = pd.read_csv(ex / "stripe_subscriptions.csv", dtype=str)
    subs.loc[subs["Customer ID"] == cust.loc[0, "id"], "Customer ID"] = "cus_twin"
    subs.to_csv(ex / "stripe_subscriptions.csv", index=False)
    out = tmp_path / "out"
    text = _import_ok(
        "--preset",
        "stripe",
        "--preset",
        "event_log",
        "--from",
        ex,
        "--from",
        event_log,
        "--out",
        out,
    )
    assert "1 row(s) name an account by crm_id another row names too" in text
    assert len(_read(out, "accounts")) == len(cust)
    got, want = _subscription_frame(out), _subscription_frame(world)
    key = ["account_id", "start_date", "change_type"]
    pd.testing.assert_frame_equal(got[key], want[key], check_dtype=False)


def test_incremental_stripe_export_restates_history_once(world, event_log, tmp_path):
    ex = make_exports(world, tmp_path / "ex", "stripe")
    first = tmp_path / "first"
    shutil.copytree(ex, first)
    subs = pd.read_csv(ex / "stripe_subscriptions.csv", dtype=str)
    early = subs["Start Date (UTC)"] < "2025-05-01"
    subs[early].assign(Status="active", **{"Ended At (UTC)": None}).to_csv(
        first / "stripe_subscriptions.csv", index=False
    )
    out = tmp_path / "out"
    args = ["--preset", "stripe", "--preset", "event_log", "--out", out]
    _import_ok(*args, "--from", first, "--from", event_log)
    assert len(_read(out, "subscriptions")) < len(_read(world, "subscriptions"))
    _import_ok(*args, "--from", ex, "--from", event_log)
    got, want = _subscription_frame(out), _subscription_frame(world)
    key = ["account_id", "start_date", "change_type"]
    pd.testing.assert_frame_equal(got[key], want[key], check_dtype=False)


def test_zendesk_subject_and_description_become_the_tickets_text(tmp_path):
    """Issue 31: a Zendesk export's subject and description are the contract's text columns.

    A ticket without a description, or whose export lacks the key, has no body (absent, not
    an empty string read as text); the imported folder's text is read by the text features.
    """
    ex = tmp_path / "ex"
    ex.mkdir()
    org = {"id": 1, "name": "Acme", "created_at": "2025-01-05T10:00:00Z"}
    (ex / "zendesk_organizations.jsonl").write_text(json.dumps(org) + "\n")
    base = {
        "organization_id": 1,
        "priority": "normal",
        "tags": [],
        "satisfaction_rating": {"score": "unoffered"},
        "metric_set": {"solved_at": None},
    }
    tickets = [
        {"id": 1, "created_at": "2025-03-01T09:00:00Z", "subject": "Invoice charged twice"}
        | {"description": "We were charged twice on the invoice and this is unacceptable."},
        {"id": 2, "created_at": "2025-03-02T09:00:00Z", "subject": "Export", "description": ""},
        {"id": 3, "created_at": "2025-03-03T09:00:00Z", "subject": "Hallo"},  # no description
    ]
    (ex / "zendesk_tickets.jsonl").write_text("".join(json.dumps(base | t) + "\n" for t in tickets))
    out = tmp_path / "out"
    run_import([load_preset("zendesk")], [ex], out)
    got = pd.read_parquet(out / "support_tickets.parquet").sort_values("created_date")
    assert got["subject"].tolist() == ["Invoice charged twice", "Export", "Hallo"]
    body = [None if pd.isna(b) else b for b in got["body"]]
    assert body[0] == "We were charged twice on the invoice and this is unacceptable."
    assert not body[1] and body[2] is None  # empty or absent: no text, never made up
    from features.text import TextConfig, ticket_signals

    signals = ticket_signals(got, TextConfig())
    assert signals["negative"].tolist() == [True, False, False]  # empty bodies never negative
    assert signals["topics"].iloc[0] & 1  # billing, from the subject and description
