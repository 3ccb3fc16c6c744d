"""Raw data as teams have it: no churn yet, tables they do not keep, header-only files.

Each shape is built from a synthetic dataset and run through validate -> features -> train
with the ``radar`` command in fresh processes; the tests read what the commands print.
"""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from features.contract import load_dataset
from tests.cli import clean_env
from tests.cli import radar as run_radar
from tests.training.test_own_data import figures, rows_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """1,500 accounts over 15 months: 13 monthly as-of dates."""
    from features.synthetic.dataset import generate_dataset

    out = tmp_path_factory.mktemp("partial") / "data"
    generate_dataset(out, accounts=1500, months=15, seed=21)
    shutil.rmtree(out / "ground_truth")  # a team's own data has no oracle
    return out


@pytest.fixture
def radar(tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")

    def run(*args):
        out = run_radar(*args, cwd=tmp_path, env=env)
        assert "Traceback" not in out.stderr, out.stderr[-3000:]
        return out

    return run


def test_no_account_has_churned_yet(dataset, tmp_path, radar):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    subs = pd.read_parquet(data / "subscriptions.parquet")
    subs[subs["change_type"] != "churn"].to_parquet(data / "subscriptions.parquet")

    out = radar("validate", "--data", str(data))
    assert out.returncode == 0, out.stderr[-3000:]
    out = radar("features", "--data", str(data), "--out", str(tmp_path / "features"))
    assert out.returncode == 0, out.stderr[-3000:]
    text = " ".join(out.stdout.split())
    assert "churn_30d 0.000" in text and "churn_90d 0.000" in text
    for head in ("churn_30d", "churn_90d"):
        assert f"label {head} is constant: every known value is 0" in text

    out = radar("train", "--features", str(tmp_path / "features"), "--max-trees", "100")
    assert out.returncode == 0, out.stderr[-3000:]
    err = " ".join(out.stderr.split())
    for head in ("churn_30d", "churn_90d"):
        assert f"{head}: skipped, the label has no positives" in err
    assert "(heads: expansion_30d, expansion_90d)" in " ".join(out.stdout.split())
    for head in ("expansion_30d", "expansion_90d"):
        assert all(rows >= 500 and pos >= 30 for rows, pos, _ in rows_of(out.stdout, head).values())
        auc = figures(out.stdout, head)
        assert auc["model"] > 0.65 and auc["logistic"] > 0.6, (head, auc)


def test_tables_a_team_does_not_keep_are_missing_not_zero(dataset, tmp_path, radar):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    for name in ("contacts", "nps_responses", "weekly_active_users"):  # header only
        pd.read_parquet(data / f"{name}.parquet").head(0).to_csv(data / f"{name}.csv", index=False)
        (data / f"{name}.parquet").unlink()
    (data / "milestones.parquet").unlink()
    (data / "invoices.parquet").unlink()  # absent altogether
    (data / "engagement.parquet").unlink()
    (data / "engagement.csv").write_text("")  # not even a header

    out = radar("validate", "--data", str(data))
    assert out.returncode == 0, out.stderr[-3000:]
    err = " ".join(out.stderr.split())
    for name in ("contacts", "nps_responses", "weekly_active_users"):
        assert f"{name}.csv has no data rows: treated as absent" in err
    assert "engagement.csv has no data rows" in err

    features = tmp_path / "features"
    out = radar("features", "--data", str(data), "--out", str(features))
    assert out.returncode == 0, out.stderr[-3000:]
    text = " ".join(out.stdout.split())
    assert "contacts absent: not computed: active_stakeholders, executive_sponsor_present" in text
    snaps = pd.read_parquet(features / "snapshots.parquet")
    for col in ("active_stakeholders", "nps_latest", "seat_utilisation", "overdue_invoices"):
        assert snaps[col].isna().all(), col  # missing, never zero
    assert snaps["health_relationship"].isna().all()
    bands = snaps["health_band"].value_counts(normalize=True)
    assert bands.get("green", 0) > 0.1 and bands.get("red", 0) < 0.5  # not all red
    assert snaps["tickets_90d"].notna().any()  # what is there is still computed

    out = radar("train", "--features", str(features), "--max-trees", "100")
    assert out.returncode == 0, out.stderr[-3000:]
    for head in ("churn_90d", "expansion_90d"):
        auc = figures(out.stdout, head)
        # (small data, monotone directions on every head: the 20,000-account figures are
        # in the README)
        assert auc["model"] > 0.65 and auc["logistic"] > 0.65, (head, auc)


def test_an_empty_required_table_is_an_error(dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    pd.read_parquet(data / "accounts.parquet").head(0).to_parquet(data / "accounts.parquet")
    report = load_dataset(data, strict=False).report
    assert any("accounts.parquet has no data rows" in str(f) for f in report.errors)


def test_empty_seats_are_allowed_and_make_seat_features_missing(dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    subs = pd.read_parquet(data / "subscriptions.parquet")
    subs["seats"] = subs["seats"].astype("Float64").where(subs["account_id"] > "A000750")
    subs.to_parquet(data / "subscriptions.parquet")
    ds = load_dataset(data)
    assert ds["subscriptions"]["seats"].isna().any()
    from features.config import FeatureConfig
    from features.pipeline import build_snapshots

    snaps = build_snapshots(ds, FeatureConfig()).snapshots
    no_seats = snaps["account_id"] <= "A000750"
    assert snaps.loc[no_seats, "seat_utilisation"].isna().all()
    assert snaps.loc[~no_seats, "seat_utilisation"].notna().mean() > 0.5


def test_plan_names_and_term_months_as_billing_systems_have_them(dataset, tmp_path):
    from features.config import FeatureConfig
    from features.pipeline import build_snapshots

    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    subs = pd.read_parquet(data / "subscriptions.parquet")
    names = {"starter": "Basic", "professional": "Team Plus", "enterprise": "Enterprise"}
    subs["plan_tier"] = subs["plan_tier"].map(names)
    months = subs["billing_term"].map({"monthly": 1, "annual": 12, "multi_year": 36})
    subs["billing_term_months"] = months.astype("Int64")
    subs.loc[subs.index[::5], "billing_term_months"] = 6  # semi-annual: no named term
    subs["billing_term"] = None
    subs.to_parquet(data / "subscriptions.parquet")

    before = build_snapshots(load_dataset(dataset), FeatureConfig()).snapshots
    cfg = FeatureConfig(plan_tiers={"basic": "starter", "Team Plus": "professional"})
    after = build_snapshots(load_dataset(data), cfg).snapshots
    pd.testing.assert_series_equal(after["plan_tier"], before["plan_tier"])
    pd.testing.assert_series_equal(after["feature_adoption"], before["feature_adoption"])
    named = after["billing_term"].notna()
    assert 0.5 < named.mean() < 1
    assert (after.loc[named, "billing_term"] == before.loc[named, "billing_term"]).all()

    unmapped = build_snapshots(load_dataset(data), FeatureConfig()).snapshots
    assert set(unmapped["plan_tier"].dropna()) == {"enterprise"}  # Basic, Team Plus: no tier
    assert unmapped.loc[unmapped["plan_tier"].isna(), "feature_adoption"].isna().all()


def purchases_log(src, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A consumption business's exports: an order log and a CRM list, no contracts.

    Orders are a sample of the synthetic product log (about 3 in 10 of its rows), each a
    product bought in some quantity at its unit price.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    u = pd.read_parquet(src / "usage.parquet")
    u = u[rng.random(len(u)) < 0.3].reset_index(drop=True)
    u["feature"] = u["feature"].astype("str")
    price = {f: 5.0 + 3 * i for i, f in enumerate(sorted(u["feature"].unique()))}
    orders = pd.DataFrame(
        {
            "order_id": [f"O{i:08d}" for i in range(len(u))],
            "customer": u["account_id"],
            "order_date": pd.to_datetime(u["date"]).dt.strftime("%Y-%m-%d"),
            "product": u["feature"],
            "quantity": u["events"],
            "unit_price": u["feature"].map(price),
        }
    )
    crm = pd.read_parquet(src / "accounts.parquet")[["account_id", "name", "segment"]]
    return orders, crm.rename(columns={"account_id": "customer"})


def purchases_to_contract(orders: pd.DataFrame, crm: pd.DataFrame, out) -> None:
    """Map the exports to the contract as a team would: accounts, usage and invoices only."""
    out.mkdir(parents=True, exist_ok=True)
    first = orders.groupby("customer")["order_date"].min()
    accounts = crm[crm["customer"].isin(first.index)].rename(columns={"customer": "account_id"})
    accounts["customer_since"] = accounts["account_id"].map(first)  # first order
    accounts.to_csv(out / "accounts.csv", index=False)
    usage = orders.groupby(["customer", "order_date", "product"], as_index=False).agg(
        active_users=("order_id", "size"), events=("quantity", "sum")
    )
    usage.columns = ["account_id", "date", "feature", "active_users", "events"]
    usage.to_csv(out / "usage.csv", index=False)
    invoices = pd.DataFrame(
        {
            "invoice_id": orders["order_id"],
            "account_id": orders["customer"],
            "due_date": orders["order_date"],
            "paid_date": orders["order_date"],
            "amount": orders["quantity"] * orders["unit_price"],
        }
    )
    invoices.to_csv(out / "invoices.csv", index=False)


def test_a_purchases_log_without_contracts_trains_on_activity_labels(dataset, tmp_path, radar):
    data = tmp_path / "data"
    purchases_to_contract(*purchases_log(dataset), data)
    out = radar("validate", "--data", str(data))
    assert out.returncode == 0, out.stderr[-3000:]
    said = " ".join((out.stdout + out.stderr).split())
    assert "optional tables absent: subscriptions" in said
    assert "no contracts: `radar features` then needs --activity-churn-days N" in said

    features = tmp_path / "features"
    out = radar("features", "--data", str(data), "--out", str(features))
    assert out.returncode == 1
    assert "--activity-churn-days N" in " ".join(out.stderr.split())
    assert not features.exists()  # nothing half-written

    out = radar(
        "features", "--data", str(data), "--out", str(features), "--activity-churn-days", "30"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = " ".join(out.stdout.split())
    assert "labels from activity for 1,4" in text and "churn = 30 days without any" in text
    assert "subscriptions absent: not computed: seat_utilisation, feature_adoption, arr" in text
    assert "label renewal_likelihood is constant: no known value" in text
    rates = dict(re.findall(r"(churn_\d+d|expansion_\d+d) ([0-9.]+)", text))
    assert 0.01 < float(rates["churn_30d"]) < float(rates["churn_90d"]) < 0.2, rates
    assert 0.05 < float(rates["expansion_90d"]) < 0.4, rates
    snaps = pd.read_parquet(features / "snapshots.parquet")
    for col in ("arr", "seats", "plan_tier", "billing_term", "days_to_renewal"):
        assert snaps[col].isna().all(), col  # missing, not invented
    assert snaps["payment_days_late_180d"].notna().any()  # the invoices still count

    out = radar("train", "--features", str(features), "--max-trees", "100")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "renewal_likelihood: no snapshot has known labels" in " ".join(out.stderr.split())
    heads = ("churn_30d", "churn_90d", "expansion_30d", "expansion_90d")
    assert f"(heads: {', '.join(heads)})" in " ".join(out.stdout.split())
    for head in heads:
        parts = rows_of(out.stdout, head)
        assert set(parts) == {"train", "validation", "test"}, head
        assert all(rows >= 500 and pos >= 30 for rows, pos, _ in parts.values()), (head, parts)
    for head in ("churn_30d", "churn_90d"):
        auc = figures(out.stdout, head)
        assert auc["model"] > 0.72 and auc["logistic"] > 0.7, (head, auc)
    for head in ("expansion_30d", "expansion_90d"):
        auc = figures(out.stdout, head)
        assert auc["model"] > 0.6 and auc["logistic"] > 0.6, (head, auc)

    # The bundle carries the activity setting: `radar score` finds the same customers.
    last = json.loads((features / "manifest.json").read_text())["as_of_dates"][-1]
    scores = tmp_path / "scores.csv"
    out = radar(
        "score", "--data", str(data), "--as-of", last, "--out", str(scores),
        "--model-uri", "models:/renewal-radar@challenger",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    got = pd.read_csv(scores)
    at_last = snaps[snaps["as_of"] == pd.Timestamp(last)]
    assert sorted(got["account_id"]) == sorted(at_last["account_id"])
    assert got["arr"].isna().all() and got["p_churn_90d"].between(0, 1).all()
    assert "renewal_likelihood" not in " ".join(got.columns)


def test_many_unmapped_plans_are_counted_and_listed_with_how_many_more(dataset, tmp_path, caplog):
    import logging

    from features import plans
    from features.words import name_list

    assert name_list(["a", "b"]) == "a, b"
    assert name_list([f"p{i}" for i in range(15)]) == (
        "p0, p1, p2, p3, p4, p5, p6, p7, p8, p9 and 5 more"
    )
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    subs = pd.read_parquet(data / "subscriptions.parquet")
    subs["plan_tier"] = [f"Plan {i % 15:02d}" for i in range(len(subs))]
    subs.to_parquet(data / "subscriptions.parquet")
    with caplog.at_level(logging.WARNING, logger=plans.__name__):
        plans.with_tiers_and_terms(load_dataset(data), {})
    assert "15 plan(s) with no tier" in caplog.text
    assert "Plan 00, Plan 01" in caplog.text and "Plan 09 and 5 more" in caplog.text
