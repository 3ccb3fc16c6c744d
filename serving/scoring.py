"""Score accounts: probabilities, drivers in words, segment, play and portfolio summary.

One implementation for ``radar score`` and the service: both score snapshot rows (features,
the rule-based columns of ``radar features`` and the accounts' context) with
:func:`score_rows`. Nothing here reads raw tables: :mod:`serving.batch` builds the rows
``radar score`` needs, the service reads them from the snapshot store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import FEATURE_BY_NAME, RENEWAL_LABEL, RENEWAL_WINDOW_DAYS
from features.config import FeatureConfig
from features.health import PREVIOUS_HEALTH, with_rules
from features.io import atomic_file
from features.store import (
    ACCOUNT_INFO,
    DEFAULT_EXPANSION_UPLIFT,
    SnapshotStore,
    missing_inputs,
    with_context,
)
from features.words import PLAYS, format_value, percent, sentence
from serving.plays import (
    MATRIX,
    STRATEGY,
    ScoringConfig,
    customer_type,
    growth_tier,
    recommend,
    value_tier,
)
from training.explain import (
    contributions,
    explain,
    take_per_row,
    top_drivers,
)
from training.model import ModelBundle
from training.registry import ScoringModel

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]

CHUNK = 20_000  # rows per explanation batch: bounds memory, drives the progress bar


@dataclass
class Scores:
    """Scored accounts, the portfolio summary, and what the scoring used."""

    records: pd.DataFrame
    summary: dict
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rows:
    """Snapshot rows as plain arrays, with the model's feature matrix.

    Scoring reads only these, so a service can convert its snapshots once and then score any
    few of them without pandas on the request path.

    Attributes:
        columns: Column name to array: numbers and flags as float64 with NaN for missing,
            dates as datetime64, anything else as objects with None for missing.
        x: The feature matrix of the model's spec (:meth:`FeatureSpec.matrix`).

    """

    columns: dict[str, np.ndarray]
    x: np.ndarray
    # Positions of these rows in ``columns`` (None: all of them). Taking rows only records
    # the positions: a service call reads a handful of the ~150 columns of one row.
    positions: np.ndarray | None = None
    _taken: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    # Column names by prefix, shared with the rows taken from these (same columns).
    _names: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, bundle: ModelBundle) -> Rows:
        """Convert snapshot rows (``radar features`` columns) for ``bundle``."""
        cols: dict[str, np.ndarray] = {}
        for name in df.columns:
            s = df[name]
            if pd.api.types.is_datetime64_any_dtype(s):
                cols[name] = s.to_numpy()
            elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                cols[name] = s.to_numpy(dtype="float64", na_value=np.nan)
            else:
                cols[name] = s.astype(object).where(s.notna(), None).to_numpy()
        return cls(cols, bundle.spec.matrix(df))

    def __len__(self) -> int:
        return len(self.x)

    def names(self, prefix: str = "") -> list[str]:
        """Column names starting with ``prefix``."""
        if prefix not in self._names:
            self._names[prefix] = [c for c in self.columns if c.startswith(prefix)]
        return self._names[prefix]

    def take(self, idx: np.ndarray | list[int] | slice) -> Rows:
        """The rows at positions ``idx``."""
        here = np.arange(len(self))[idx] if isinstance(idx, slice) else np.asarray(idx, int)
        where = here if self.positions is None else self.positions[here]
        return Rows(self.columns, self.x[here], where, _names=self._names)

    def col(self, name: str, numeric: bool = False) -> np.ndarray:
        """Column ``name`` of these rows; all missing when absent."""
        if name not in self.columns:
            return np.full(
                len(self), np.nan if numeric else None, dtype=None if numeric else object
            )
        if self.positions is None:
            return self.columns[name]
        if name not in self._taken:
            self._taken[name] = self.columns[name][self.positions]
        return self._taken[name]


def score_snapshots(
    snapshots: pd.DataFrame,
    model: ScoringModel,
    cfg: ScoringConfig | None = None,
    *,
    missing: pd.Series | list | None = None,
    uplift: float = DEFAULT_EXPANSION_UPLIFT,
    risk_cut: float | None = None,
    progress: ProgressFn | None = None,
) -> Scores:
    """Score snapshot rows: one record per row, and the portfolio summary.

    Args:
        snapshots: Rows of ``radar features`` output (features and rule-based columns).
        model: The model to score with.
        cfg: Segment, type and play thresholds.
        missing: Per row, inputs the account has no data in (listed in the record).
        uplift: Share of ARR an expansion adds, for the expected expansion ARR.
        risk_cut: 90-day churn probability where the portfolio's top decile starts; by
            default that of the rows scored (pass the portfolio's when scoring a few).
        progress: Callback ``(description, done, total)``.

    """
    cfg = cfg or ScoringConfig()
    df = snapshots.reset_index(drop=True)
    rows = Rows.from_frame(df, model.bundle)
    columns = score_rows(
        rows, model, cfg, missing=missing, uplift=uplift, risk_cut=risk_cut, progress=progress
    )
    out = pd.DataFrame(columns)
    meta = {
        "model_uri": model.uri,
        "model": model.label,
        "model_run_id": model.run_id,
        "as_of": sorted({str(pd.Timestamp(t).date()) for t in df["as_of"]}),
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "expansion_uplift": uplift,
        "config": cfg.model_dump(),
    }
    return Scores(out, portfolio_summary(out), meta)


def score_store_rows(
    store: SnapshotStore,
    snapshots: pd.DataFrame,
    model: ScoringModel,
    cfg: ScoringConfig | None = None,
) -> Scores:
    """Score rows of the snapshot store at one date with their context, as the service does.

    ``snapshots`` should be the whole portfolio at that date: the top decile is its own.
    """
    as_of = pd.Timestamp(snapshots["as_of"].max())
    context, ids = store.context(), snapshots["account_id"]
    return score_snapshots(
        with_context(snapshots, context),
        model,
        cfg,
        missing=missing_inputs(context, store.absent_tables, ids, as_of),
        uplift=store.expansion_uplift(as_of),
    )


def score_rows(
    rows: Rows,
    model: ScoringModel,
    cfg: ScoringConfig,
    *,
    missing: Sequence[list[str]] | pd.Series | None = None,
    uplift: float = DEFAULT_EXPANSION_UPLIFT,
    risk_cut: float | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, np.ndarray | list]:
    """The scoring records of ``rows``, column by column (arguments as :func:`score_snapshots`)."""
    step = progress or (lambda *_: None)
    bundle = model.bundle
    n = len(rows)
    probs: dict[str, list[np.ndarray]] = {f"p_{h}": [] for h in bundle.heads}
    drivers: dict[str, list[dict]] = {label: [] for label in bundle.heads}
    step("scoring accounts", 0, n)
    for start in range(0, n, CHUNK):
        part = rows.take(slice(start, start + CHUNK))
        # TreeSHAP contributions add up to the raw score: one pass per head gives both.
        contrib = {h: contributions(head.booster, part.x) for h, head in bundle.heads.items()}
        p = bundle.calibrated({h: c.sum(axis=1) for h, c in contrib.items()})
        for c, v in p.items():
            probs[c].append(v)
        for label, ex in explain(bundle, part.x, p, contrib).items():
            idx = top_drivers(ex.effects, cfg.top_drivers)
            eff = take_per_row(ex.effects, idx)
            rest = ex.effects.sum(axis=1) - eff.sum(axis=1) + ex.remainder_cap
            drivers[label] += _driver_lists(
                part, bundle.spec.names, idx, eff, label, ex, rest.tolist()
            )
        step("scoring accounts", min(start + CHUNK, n), n)
    p = {c: np.concatenate(v) if v else np.empty(0) for c, v in probs.items()}
    blank_renewal(p, drivers, rows.col("days_to_renewal", numeric=True))
    return _records(rows, p, drivers, model, cfg, missing, uplift, risk_cut)


def renewal_within_window(days_to_renewal) -> np.ndarray:
    """Whether the next renewal falls within ``RENEWAL_WINDOW_DAYS`` (missing: no)."""
    days = np.asarray(days_to_renewal, dtype="float64")
    return (days > 0) & (days <= RENEWAL_WINDOW_DAYS)  # NaN compares False


def blank_renewal(p: dict[str, np.ndarray], drivers: dict[str, list[dict]], days) -> None:
    """Blank renewal likelihood (NaN, no drivers) where no renewal falls within 180 days.

    The head is computed for every row, but it answers a question only about accounts whose
    next renewal decision is within ``RENEWAL_WINDOW_DAYS`` (the rows it was trained on).
    """
    key = f"p_{RENEWAL_LABEL}"
    if key not in p:
        return
    out = ~renewal_within_window(days)
    p[key] = np.where(out, np.nan, p[key])
    for i in np.flatnonzero(out):
        drivers[RENEWAL_LABEL][i] = drivers[RENEWAL_LABEL][i] | {"drivers": []}


def _driver_lists(part: Rows, names, idx, eff, label, ex, rest) -> list[dict]:
    """One dict per row: baseline, top drivers with values, effects and sentences, remainder."""
    # Plain Python numbers and per-feature lookups once: this loop runs 20 times per account.
    values = {names[j]: part.col(names[j]).tolist() for j in np.unique(idx)}
    known = {f: FEATURE_BY_NAME.get(f) for f in values}
    out = []
    for i, (row_idx, row_eff) in enumerate(zip(idx.tolist(), eff.tolist(), strict=True)):
        items = []
        for j, effect in zip(row_idx, row_eff, strict=True):
            feature = names[j]
            value, f = values[feature][i], known[feature]
            text = format_value(feature, value) if f else str(value)
            items.append(
                {
                    "feature": feature,
                    "family": f.family if f else "",
                    "value": text,
                    "effect": effect,
                    "direction": "raises" if effect > 0 else "lowers",
                    "sentence": sentence(feature, value, effect, label, text)
                    if f
                    else f"{feature}: {value}",
                }
            )
        out.append({"baseline": ex.baseline, "drivers": items, "remainder": rest[i]})
    return out


def _records(rows: Rows, p, drivers, model, cfg, missing, uplift, risk_cut) -> dict:
    """Assemble the records column by column on plain arrays (cheap for one row or 100k)."""
    n = len(rows)
    out: dict[str, np.ndarray | list] = {"account_id": rows.col("account_id")}
    for c in ACCOUNT_INFO:
        out[c] = rows.col(c)
    out["as_of"] = rows.col("as_of")
    out.update(p)
    for c in rows.names("health_"):
        out[c] = rows.col(c)
    arr = rows.col("arr", numeric=True)
    out["arr"] = arr
    nan = np.full(n, np.nan)
    pc90, pe90 = p.get("p_churn_90d", nan), p.get("p_expansion_90d", nan)
    for h in (30, 90):
        if f"p_churn_{h}d" in p:
            out[f"arr_at_risk_{h}d"] = p[f"p_churn_{h}d"] * arr
        if f"p_expansion_{h}d" in p:
            out[f"expected_expansion_arr_{h}d"] = p[f"p_expansion_{h}d"] * arr * uplift
    # "Top decile" is relative to the portfolio: the rows scored, unless the caller knows it.
    cut = top_risk_cut(pc90, cfg) if risk_cut is None else risk_cut
    top = (pc90 >= cut) & (pc90 >= cfg.top_risk_min_p90)
    out["churn_risk_top_decile"] = top
    health = rows.col("health_score", numeric=True)
    out["disagreement"] = _disagreement(health, pc90, top, cfg)

    value = value_tier(arr, cfg)
    growth = growth_tier(
        rows.col("arr_change_365d", numeric=True),
        rows.col("usage_trend_90d", numeric=True),
        pc90,
        pe90,
        cfg,
    )
    at_risk = np.nan_to_num(health, nan=np.inf) < cfg.poor_score
    at_risk |= (pc90 >= cfg.high_churn_p90) | top
    matrix = [MATRIX[(v, g)] for v, g in zip(value, growth, strict=True)]
    out["value_tier"], out["growth_tier"] = value, growth
    out["value_growth_segment"] = matrix
    out["segment_strategy"] = [STRATEGY[m] for m in matrix]
    out["customer_type"] = customer_type(value, growth, at_risk)
    for c in ("segment", "plan_tier", "lifecycle_stage", "renewal_stage", "renewal_risk"):
        out[c] = rows.col(c)
    days = rows.col("days_to_renewal", numeric=True)
    out["days_to_renewal"] = days
    when = rows.col("as_of").astype("datetime64[D]")
    out["renewal_date"] = np.where(
        np.isnan(days), np.datetime64("NaT"), when + np.nan_to_num(days).astype("timedelta64[D]")
    )
    out["alerts"] = _flags(rows, "alert_")
    out["triggers"] = _flags(rows, "trigger_")

    churn_key = "churn_90d" if "churn_90d" in drivers else next(iter(drivers), None)
    bands, stages = rows.col("health_band"), rows.col("renewal_stage")
    nps = rows.col("nps_latest", numeric=True)
    plays, reasons = [], []
    for i in range(n):
        top_churn = None
        if churn_key:
            raising = [d for d in drivers[churn_key][i]["drivers"] if d["effect"] > 0]
            top_churn = raising[0]["feature"] if raising else None
        play, reason = recommend(
            health=None if np.isnan(health[i]) else float(health[i]),
            band=None if bands[i] is None else str(bands[i]),
            at_risk=bool(at_risk[i]),
            churn_p90=float(pc90[i]),
            expansion_p90=float(pe90[i]),
            renewal_stage=stages[i],
            triggers=out["triggers"][i],
            nps_latest=None if np.isnan(nps[i]) else float(nps[i]),
            churn_driver=top_churn if top_churn in FEATURE_BY_NAME else None,
            cfg=cfg,
        )
        plays.append(play)
        reasons.append(reason)
    out["play"] = plays
    out["play_title"] = [PLAYS[pl] for pl in plays]
    out["play_reason"] = reasons
    for label, items in drivers.items():
        out[f"drivers_{label}"] = [r["drivers"] for r in items]
        out[f"baseline_{label}"] = [r["baseline"] for r in items]
        out[f"remainder_{label}"] = [r["remainder"] for r in items]
    out["missing_inputs"] = list(missing) if missing is not None else [[] for _ in range(n)]
    out["model_version"] = [model.label] * n
    return out


def top_risk_cut(p_churn_90d: np.ndarray, cfg: ScoringConfig) -> float:
    """The 90-day churn probability where the portfolio's top decile (``top_risk_share``) starts."""
    p = np.asarray(p_churn_90d, dtype="float64")
    return float(np.nanquantile(p, 1 - cfg.top_risk_share)) if len(p) else float("nan")


def _flags(rows: Rows, prefix: str) -> list[list[str]]:
    """Per row, the names (without ``prefix``) of the flag columns that are on."""
    cols = rows.names(prefix)
    if not cols:
        return [[] for _ in range(len(rows))]
    on = np.column_stack([rows.col(c).astype("float64") for c in cols]) > 0.5
    names = np.array([c.removeprefix(prefix) for c in cols])
    return [names[row].tolist() for row in on]


def _disagreement(health, p90, top, cfg: ScoringConfig) -> list[str | None]:
    """Where health score and model disagree, in one phrase (None when they agree)."""
    out: list[str | None] = []
    for h, p, t in zip(health, p90, top, strict=True):
        if h >= cfg.healthy_score and (t or p >= cfg.high_churn_p90):
            out.append(
                f"Health score says healthy ({h:.0f}) but the model puts 90-day churn risk at "
                f"{percent(p)}" + (" (top decile)" if t else "")
            )
        elif h < cfg.poor_score and p < cfg.high_churn_p90 / 4 and not t:
            out.append(
                f"Health score says poor ({h:.0f}) but the model puts 90-day churn risk at "
                f"only {percent(p)}"
            )
        else:
            out.append(None)
    return out


def portfolio_summary(records: pd.DataFrame) -> dict:
    """Health distribution, expected churned / expanded ARR, expected GRR and NRR by segment.

    Expected GRR over the next quarter = 1 - expected churned ARR (90 days) / ARR; expected
    NRR = GRR + expected expansion ARR (90 days) / ARR. Contractions are not modelled.
    """

    def block(g: pd.DataFrame) -> dict:
        arr = float(g["arr"].sum())
        churn = {h: float(g.get(f"arr_at_risk_{h}d", pd.Series(0.0)).sum()) for h in (30, 90)}
        grow = {
            h: float(g.get(f"expected_expansion_arr_{h}d", pd.Series(0.0)).sum()) for h in (30, 90)
        }
        bands = g["health_band"].astype("object").fillna("no score").value_counts()
        return {
            "accounts": int(len(g)),
            "arr": arr,
            "health_distribution": {str(k): int(v) for k, v in bands.items()},
            "expected_churned_arr_30d": churn[30],
            "expected_churned_arr_90d": churn[90],
            "expected_expansion_arr_30d": grow[30],
            "expected_expansion_arr_90d": grow[90],
            "expected_grr_next_quarter": 1 - churn[90] / arr if arr else None,
            "expected_nrr_next_quarter": 1 - churn[90] / arr + grow[90] / arr if arr else None,
        }

    out = {"all": block(records)}
    for seg, g in records.groupby("segment", sort=True):
        out[str(seg)] = block(g)
    out["plays"] = {str(k): int(v) for k, v in records["play"].value_counts().items()}
    out["disagreements"] = int(records["disagreement"].notna().sum())
    return out


def what_if(
    snapshots: pd.DataFrame,
    changes: dict[str, object],
    model: ScoringModel,
    feature_cfg: FeatureConfig | None = None,
    **options: object,
) -> Scores:
    """One account as it is and with ``changes`` to its latest features: two records.

    Args:
        snapshots: The account's snapshots (the latest is changed; its health change is
            against the score a calendar month before, as in the store).
        changes: Feature name to the value to try, e.g. ``{"seat_utilisation": 0.3}``.
        model: The model to score with.
        feature_cfg: Health scheme and alert thresholds (recomputed from the changed values).
        **options: Passed to :func:`score_snapshots` (``risk_cut``, ``uplift``, ``cfg``).

    Raises:
        ValueError: For a name that is not a feature of the catalogue.

    """
    unknown = [k for k in changes if k not in FEATURE_BY_NAME]
    if unknown:
        raise ValueError(f"not features of the catalogue: {', '.join(unknown)}")
    cfg = feature_cfg or FeatureConfig()
    keep = ["account_id", "as_of", *(c for c in snapshots.columns if c in FEATURE_BY_NAME)]
    keep += [c for c in (PREVIOUS_HEALTH, *ACCOUNT_INFO) if c in snapshots]
    base = snapshots.sort_values("as_of")[keep].reset_index(drop=True)
    changed = base.copy()
    for name, value in changes.items():
        numeric = not FEATURE_BY_NAME[name].categorical
        changed[name] = changed[name].astype("float64" if numeric else object)
        changed.loc[changed.index[-1], name] = float(value) if numeric else value
    rows = [with_rules(f, cfg).iloc[[-1]] for f in (base, changed)]
    return score_snapshots(pd.concat(rows, ignore_index=True), model, **options)


NESTED = ("alerts", "triggers", "missing_inputs")


def write_scores(scores: Scores, path: str | Path) -> Path:
    """Write records by extension (.parquet, .csv, .jsonl/.json) atomically, with metadata.

    Parquet keeps drivers as nested lists and the summary in the file's metadata; CSV holds
    nested values as JSON text; every format gets ``<file>.summary.json`` beside it.
    """
    path = Path(path)
    ext = path.suffix.lower()
    dates = [c for c in ("as_of", "renewal_date") if c in scores.records]
    df = scores.records.assign(**{c: scores.records[c].dt.strftime("%Y-%m-%d") for c in dates})
    meta = {"metadata": scores.metadata, "summary": scores.summary}
    if ext == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"renewal_radar": json.dumps(meta).encode()}
        )
        with atomic_file(path) as tmp:
            pq.write_table(table, tmp)
    elif ext == ".csv":
        flat = df.copy()
        for c in flat.columns:
            if c.startswith("drivers_") or c in NESTED:
                flat[c] = [json.dumps(v) for v in flat[c]]
        with atomic_file(path) as tmp:
            flat.to_csv(tmp, index=False)
    elif ext in (".jsonl", ".json"):
        with atomic_file(path) as tmp:
            df.to_json(tmp, orient="records", lines=True)
    else:
        raise ValueError(f"{path}: unknown output format {ext!r}; use .parquet, .csv or .jsonl")
    with atomic_file(path.with_name(path.name + ".summary.json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=str))
    return path
