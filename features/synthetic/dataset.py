"""Generate a synthetic dataset on disk: contract tables, ground truth, oracle and figures."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from sklearn.metrics import roc_auc_score

from features.catalogue import HORIZONS, RENEWAL_LABEL, RENEWAL_WINDOW_DAYS
from features.io import atomic_dir
from features.schema import SEGMENTS
from features.synthetic.calendar import month_end, month_index
from features.synthetic.generator import Simulator, World
from features.synthetic.intent import intent_frame, onset_from_frame
from features.synthetic.oracle import Oracle, next_renewal
from features.synthetic.plays import PlayRecord
from features.synthetic.process import PRODUCT_FEATURES, SHOCKS, SyntheticConfig, seat_utilisation

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]

GROUND_TRUTH = "ground_truth"
TARGET_RANGES = {  # from the foundation issue; the generator reports against them
    "logo_churn_enterprise": (0.05, 0.10),
    "logo_churn_smb": (0.20, 0.35),
    "expanding_share": (0.25, 0.45),
    "grr": (0.85, 0.95),
    "nrr": (1.00, 1.20),
    "oracle_auc_churn_90d": (0.75, 0.92),
    "oracle_auc_expansion_90d": (0.70, 0.90),
}


@dataclass
class GeneratedDataset:
    """What :func:`generate_dataset` produced."""

    path: Path
    world: World
    oracle: pd.DataFrame
    summary: dict


def month_end_dates(world: World) -> np.ndarray:
    """Every month end of the window (the monthly as-of dates the oracle is written for)."""
    return month_end(np.arange(world.first_month, world.first_month + world.n_months))


def oracle_table(
    world: World, as_of_dates: np.ndarray | None = None, progress: ProgressFn | None = None
) -> pd.DataFrame:
    """Oracle probabilities for every customer at each as-of date (default: month ends)."""
    oracle = Oracle(world)
    return _per_date(world, as_of_dates, oracle.probabilities, "oracle probabilities", progress)


def play_effects_table(
    world: World, as_of_dates: np.ndarray | None = None, progress: ProgressFn | None = None
) -> pd.DataFrame:
    """The true effect of each play: 90-day churn / expansion probability with none and each.

    One row per customer and as-of date (default: month ends); see
    :meth:`Oracle.play_probabilities`.
    """
    oracle = Oracle(world)
    return _per_date(world, as_of_dates, oracle.play_probabilities, "true play effects", progress)


def _per_date(world, as_of_dates, table_at, what: str, progress) -> pd.DataFrame:
    """``table_at(T)`` (rows by ``account_index``) for each as-of date, keyed by account id."""
    dates = month_end_dates(world) if as_of_dates is None else as_of_dates
    ids = world.account_ids()
    parts = []
    for i, T in enumerate(dates):
        df = table_at(T)
        if progress:
            progress(what, i + 1, len(dates))
        df.insert(0, "as_of", np.datetime64(T, "D"))
        df.insert(0, "account_id", ids[df.pop("account_index").to_numpy()])
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    out["as_of"] = out["as_of"].astype("datetime64[s]")
    return out


def realised_labels(world: World, as_of: pd.Series, account_index: np.ndarray) -> pd.DataFrame:
    """Whether each (account, T) churned / expanded in (T, T + H], from the simulation.

    ``renewal_likelihood``: 1 if still a customer after the next renewal decision D, 0 if it
    churned in (T, D]; NaN when D is more than ``RENEWAL_WINDOW_DAYS`` ahead or after the data.
    """
    T = as_of.to_numpy().astype("datetime64[D]")
    churn = world.churn_date[account_index]
    out = {}
    decision = np.full(len(T), np.datetime64("NaT"), dtype="datetime64[D]")
    for t in np.unique(T):
        rows = t == T
        decision[rows] = next_renewal(world, account_index[rows], t)
    renewed = np.where((~np.isnat(churn)) & (churn > T) & (churn <= decision), 0.0, 1.0)
    unknown = (decision > T + np.timedelta64(RENEWAL_WINDOW_DAYS, "D")) | (
        decision > world.window_end
    )
    out[RENEWAL_LABEL] = np.where(unknown, np.nan, renewed)
    exp_acct = np.repeat(np.arange(world.n), [len(e) for e in world.expansion_dates])
    exp_date = (
        np.concatenate(world.expansion_dates)
        if len(exp_acct)
        else np.array([], dtype="datetime64[D]")
    )
    for H in HORIZONS:
        end = T + np.timedelta64(H, "D")
        out[f"churn_{H}d"] = (~np.isnat(churn)) & (churn > T) & (churn <= end)
        e = pd.DataFrame({"a": exp_acct, "d": exp_date})
        q = pd.DataFrame({"a": account_index, "t": T, "e": end, "row": np.arange(len(T))})
        hits = q.merge(e, on="a")
        hits = hits[(hits["d"] > hits["t"]) & (hits["d"] <= hits["e"])]
        flag = np.zeros(len(T), bool)
        flag[hits["row"].unique()] = True
        out[f"expansion_{H}d"] = flag
    return pd.DataFrame(out)


def _arr_at(subs: pd.DataFrame, date: np.datetime64) -> pd.Series:
    """ARR in effect at ``date`` per account (latest row starting on or before it)."""
    s = subs[subs["start_date"] <= pd.Timestamp(date)].sort_values("start_date")
    return s.groupby("account_id")["arr"].last()


def portfolio_summary(world: World, tables: dict[str, pa.Table], oracle: pd.DataFrame) -> dict:
    """Portfolio figures of the trailing year and the oracle's own ROC-AUC."""
    end = world.window_end
    y0 = (
        month_end(world.first_month + max(world.n_months - 13, 0))
        if world.n_months > 1
        else world.window_start
    )
    years = max((end - y0).astype(int), 1) / 365.0
    cohort = (world.customer_since <= y0) & (np.isnat(world.churn_date) | (world.churn_date > y0))
    churned = cohort & ~np.isnat(world.churn_date) & (world.churn_date <= end)
    expanded = np.array([((e > y0) & (e <= end)).any() for e in world.expansion_dates])
    summary: dict = {
        "window": [str(world.window_start), str(end)],
        "trailing_year": [str(y0), str(end)],
        "accounts": int(world.n),
        "customers_at_end": int((np.isnat(world.churn_date) & (world.customer_since <= end)).sum()),
    }

    def annual(rate: float) -> float:
        return float(1 - (1 - rate) ** (1 / years)) if years < 0.99 else float(rate)

    for i, seg in enumerate(SEGMENTS):
        c = cohort & (world.segment == i)
        summary[f"logo_churn_{seg}"] = annual(churned[c].mean()) if c.any() else float("nan")
    summary["logo_churn_all"] = annual(churned[cohort].mean()) if cohort.any() else float("nan")
    summary["expanding_share"] = float(expanded[cohort].mean()) if cohort.any() else float("nan")
    subs = tables["subscriptions"].to_pandas()
    ids = world.account_ids()[cohort]
    a0 = _arr_at(subs, y0).reindex(ids).fillna(0.0)
    a1 = _arr_at(subs, end).reindex(ids).fillna(0.0)
    summary["grr"] = float(np.minimum(a0, a1).sum() / a0.sum()) if a0.sum() else float("nan")
    summary["nrr"] = float(a1.sum() / a0.sum()) if a0.sum() else float("nan")
    summary["arr_at_end"] = float(_arr_at(subs, end).sum())

    # Observed variety across segments.
    acc = tables["accounts"].to_pandas()[["account_id", "segment"]]
    nps = tables["nps_responses"].to_pandas().merge(acc, on="account_id")
    tickets = tables["support_tickets"].to_pandas().merge(acc, on="account_id")
    h = world.mu[:, None] + world.x
    util = seat_utilisation(world.cfg, h, world.growth[:, None])
    by_seg = {}
    for i, seg in enumerate(SEGMENTS):
        u = util[world.segment == i]
        by_seg[seg] = {
            "accounts": int((world.segment == i).sum()),
            "mean_seat_utilisation": float(np.nanmean(u)) if np.isfinite(u).any() else None,
            "mean_nps": float(nps.loc[nps["segment"] == seg, "score"].mean()),
            "tickets": int((tickets["segment"] == seg).sum()),
            "critical_ticket_share": float(
                (tickets.loc[tickets["segment"] == seg, "severity"] == "critical").mean()
            ),
        }
    summary["by_segment"] = json.loads(json.dumps(by_seg, default=float).replace("NaN", "null"))

    # The oracle's ROC-AUC over monthly snapshots whose label window is inside the data.
    idx = pd.Series(np.arange(world.n), index=world.account_ids())
    for H in HORIZONS:
        ok = oracle["as_of"] + pd.Timedelta(days=H) <= pd.Timestamp(end)
        o = oracle[ok]
        if o.empty:
            continue
        labels = realised_labels(world, o["as_of"], idx[o["account_id"]].to_numpy())
        for kind in ("churn", "expansion"):
            y = labels[f"{kind}_{H}d"].to_numpy()
            key = f"oracle_auc_{kind}_{H}d"
            summary[key] = (
                float(roc_auc_score(y, o[f"p_{kind}_{H}d"])) if 0 < y.sum() < len(y) else None
            )
            summary[f"label_rate_{kind}_{H}d"] = float(y.mean())
    labels = realised_labels(world, oracle["as_of"], idx[oracle["account_id"]].to_numpy())
    known = labels[RENEWAL_LABEL].notna().to_numpy()
    y, p = labels[RENEWAL_LABEL].to_numpy()[known], oracle[f"p_{RENEWAL_LABEL}"].to_numpy()[known]
    if 0 < y.sum() < len(y):
        summary[f"oracle_auc_{RENEWAL_LABEL}"] = float(roc_auc_score(y, p))
        summary[f"label_rate_{RENEWAL_LABEL}"] = float(y.mean())
    return summary


def _usage_table(world: World, usage: pa.Table | None) -> pa.Table:
    ids = pa.array(world.account_ids())
    feats = pa.array(list(PRODUCT_FEATURES))
    if usage is None:
        usage = pa.table(
            {
                "account_id": pa.array([], pa.int32()),
                "date": pa.array([], pa.date32()),
                "feature": pa.array([], pa.int8()),
                "active_users": pa.array([], pa.int32()),
                "events": pa.array([], pa.int32()),
            }
        )
    return pa.table(
        {
            "account_id": pa.DictionaryArray.from_arrays(usage["account_id"].combine_chunks(), ids),
            "date": usage["date"].cast(pa.date32()),
            "feature": pa.DictionaryArray.from_arrays(
                usage["feature"].combine_chunks().cast(pa.int32()), feats
            ),
            "active_users": usage["active_users"],
            "events": usage["events"],
        }
    )


def _ground_truth_tables(world: World) -> dict[str, pd.DataFrame]:
    ids = world.account_ids()
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "segment": np.asarray(SEGMENTS)[world.segment],
            "term": world.term,
            "term_months": world.term_months,
            "customer_since": world.customer_since.astype("datetime64[s]"),
            "mu": world.mu,
            "growth": world.growth,
            "onboarding": world.onboarding,
            "churn_date": world.churn_date.astype("datetime64[s]"),
        }
    )
    n, M = world.x.shape
    months = np.arange(world.first_month, world.first_month + M)
    lat = pd.DataFrame(
        {
            "account_id": np.repeat(ids, M),
            "month": np.tile(months, n).astype("datetime64[M]").astype("datetime64[s]"),
            "x": world.x.ravel(),
        }
    )
    for s, name in enumerate(SHOCKS):
        lat[f"shock_{name}"] = world.shocks[:, :, s].ravel()
    lat = lat[lat["x"].notna()].reset_index(drop=True)
    mu = pd.Series(world.mu, index=ids)
    lat.insert(3, "health", lat["x"] + mu[lat["account_id"]].to_numpy())
    exp_rows = [(ids[i], d) for i, e in enumerate(world.expansion_dates) for d in e]
    expansions = pd.DataFrame(exp_rows, columns=["account_id", "date"]).astype(
        {"date": "datetime64[s]"}
    )
    out = {"accounts": accounts, "latent_monthly": lat, "expansions": expansions}
    if world.intent_onset is not None:  # every intent to leave: decision and onset month
        out["intent"] = intent_frame(world.intent_onset, ids, world.first_month)
    return out


def load_world(data_dir: str | Path) -> World:
    """Rebuild the simulated :class:`World` from ``DIR/ground_truth`` (for the oracle)."""
    gt = Path(data_dir) / GROUND_TRUTH
    meta = yaml.safe_load((gt / "process.yaml").read_text())
    cfg = SyntheticConfig.model_validate(meta["config"])
    acc = pd.read_parquet(gt / "accounts.parquet")
    lat = pd.read_parquet(
        gt / "latent_monthly.parquet",
        columns=["account_id", "month", "x"] + [f"shock_{s}" for s in SHOCKS],
    )
    exp = pd.read_parquet(gt / "expansions.parquet")
    plays = (
        PlayRecord.from_frame(pd.read_parquet(gt / "plays.parquet"))
        if (gt / "plays.parquet").exists()
        else None
    )
    n, M, first = len(acc), int(meta["months"]), int(meta["first_month"])
    pos = pd.Series(np.arange(n), index=acc["account_id"])
    onset = None
    if cfg.intent.enabled:
        width = M + cfg.intent.lead_months
        onset = onset_from_frame(pd.read_parquet(gt / "intent.parquet"), pos, first, width, n)
    row = pos[lat["account_id"]].to_numpy()
    col = month_index(lat["month"].to_numpy().astype("datetime64[D]")) - first
    x = np.full((n, M), np.nan)
    x[row, col] = lat["x"].to_numpy()
    shocks = np.zeros((n, M, len(SHOCKS)), bool)
    for s, name in enumerate(SHOCKS):
        shocks[row, col, s] = lat[f"shock_{name}"].to_numpy()
    exp_idx = pos[exp["account_id"]].to_numpy()
    exp_dates = exp["date"].to_numpy().astype("datetime64[D]")
    return World(
        cfg,
        first,
        M,
        acc["segment"].map({s: i for i, s in enumerate(SEGMENTS)}).to_numpy(),
        acc["term"].to_numpy(),
        acc["term_months"].to_numpy(),
        acc["customer_since"].to_numpy().astype("datetime64[D]"),
        acc["mu"].to_numpy(),
        acc["growth"].to_numpy(),
        acc["onboarding"].to_numpy(),
        x,
        shocks,
        acc["churn_date"].to_numpy().astype("datetime64[D]"),
        [exp_dates[exp_idx == i] for i in range(n)],
        plays,
        onset,
    )


def generate_dataset(
    out: str | Path,
    accounts: int,
    months: int,
    seed: int,
    cfg: SyntheticConfig | None = None,
    progress: ProgressFn | None = None,
) -> GeneratedDataset:
    """Simulate and write a complete dataset with its ground truth to ``out``.

    The directory is written under a temporary name and renamed at the end, so a failure
    leaves nothing half-written.
    """
    cfg = cfg or SyntheticConfig()
    sim = Simulator(accounts, months, seed, cfg)
    world, tables, usage = sim.run(progress)
    oracle = oracle_table(world, progress=progress)
    truth = play_effects_table(world, progress=progress) if cfg.plays.enabled else None
    summary = portfolio_summary(world, tables, oracle)
    summary.update({"seed": seed, "months": months})
    out = Path(out)
    with atomic_dir(out) as tmp:
        for name, table in tables.items():
            pq.write_table(table, tmp / f"{name}.parquet")
        pq.write_table(_usage_table(world, usage), tmp / "usage.parquet", row_group_size=2_000_000)
        gt = tmp / GROUND_TRUTH
        gt.mkdir()
        for name, df in _ground_truth_tables(world).items():
            df.to_parquet(gt / f"{name}.parquet", index=False)
        oracle.to_parquet(gt / "oracle.parquet", index=False)
        if sim.text_truth is not None:  # the true tone and topic of every text written
            sim.text_truth.to_parquet(gt / "text_truth.parquet", index=False)
        if truth is not None:
            truth.to_parquet(gt / "play_effects.parquet", index=False)
            world.plays.frame().to_parquet(gt / "plays.parquet", index=False)
        meta = {
            "seed": seed,
            "accounts": accounts,
            "months": months,
            "first_month": world.first_month,
            "config": cfg.model_dump(mode="json"),
        }
        (gt / "process.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        (gt / "summary.json").write_text(json.dumps(summary, indent=2))
    return GeneratedDataset(out, world, oracle, summary)
