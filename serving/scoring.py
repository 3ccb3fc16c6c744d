"""Score accounts: probabilities, drivers in words, segment, play and portfolio summary.

One implementation for ``radar score`` and the service: both call :func:`score_snapshots` on
snapshot rows (features and the rule-based columns of ``radar features``).
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

from features.catalogue import FEATURE_BY_NAME
from features.config import FeatureConfig
from features.contract import Dataset, load_dataset
from features.health import with_rules
from features.io import atomic_file
from features.pipeline import build_snapshots
from features.schema import TABLES
from features.snapshots import data_end, history_start
from serving.plays import (
    MATRIX,
    PLAYS,
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
    format_value,
    percent,
    sentence,
    take_per_row,
    top_drivers,
)
from training.model import ModelBundle

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]

DEFAULT_MODEL_URI = "models:/renewal-radar@champion"
DEFAULT_EXPANSION_UPLIFT = 0.2  # share of ARR a typical expansion adds, when history has none
# Per-account inputs whose absence is worth saying (no tickets or engagement is a real zero).
CHECKED_INPUTS = ("usage", "weekly_active_users", "contacts", "nps_responses", "milestones")
CHUNK = 20_000  # rows per explanation batch: bounds memory, drives the progress bar


@dataclass(frozen=True)
class ScoringModel:
    """A model bundle and where it came from."""

    bundle: ModelBundle
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None

    @property
    def label(self) -> str:
        """Display name: ``renewal-radar v3``, or the URI when not a registry version."""
        return f"{self.name} v{self.version}" if self.version else self.uri


def load_model(model_uri: str = DEFAULT_MODEL_URI, tracking: str | None = None) -> ScoringModel:
    """Load a registered bundle (``models:/name@alias`` or ``models:/name/version``)."""
    from mlflow.tracking import MlflowClient

    from training.tracking import load_bundle, tracking_uri

    tracking_uri(tracking)
    bundle = load_bundle(model_uri)
    name = version = run_id = None
    if model_uri.startswith("models:/"):
        ref = model_uri.removeprefix("models:/")
        client = MlflowClient()
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, number = ref.partition("/")
            mv = client.get_model_version(name, number)
        version, run_id = str(mv.version), mv.run_id
    return ScoringModel(bundle, model_uri, name, version, run_id)


@dataclass
class Scores:
    """Scored accounts, the portfolio summary, and what the scoring used."""

    records: pd.DataFrame
    summary: dict
    metadata: dict = field(default_factory=dict)


def expansion_uplift(subscriptions: pd.DataFrame, until: pd.Timestamp) -> float | None:
    """Median share of ARR that past expansions (started by ``until``) added, or None."""
    s = subscriptions[subscriptions["start_date"] <= until].sort_values(
        ["account_id", "start_date"]
    )
    before = s.groupby("account_id")["arr"].shift(1)
    ratio = (s["arr"] / before - 1)[(s["change_type"] == "expansion") & (before > 0)]
    return float(ratio.median()) if len(ratio) else None


def inputs_missing(ds: Dataset, accounts: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Per account, the inputs it has no rows in up to ``as_of`` (or whose table is absent)."""
    notes: list[list[str]] = [[] for _ in range(len(accounts))]
    ids = accounts.to_numpy()
    for name in CHECKED_INPUTS:
        if not ds.has(name):
            for n in notes:
                n.append(f"{name} (table not provided)")
            continue
        date_col = TABLES[name].event_date
        source = ds.file_table(name)
        if source is not None:  # a large log: ask DuckDB, never load it into pandas
            import duckdb

            where = f"WHERE {date_col} <= DATE '{as_of.date()}'" if date_col else ""
            sql = f"SELECT DISTINCT account_id FROM ({source.select_sql('DATE')}) {where}"
            seen = duckdb.connect().execute(sql).df()["account_id"]
        else:
            table = ds[name]
            before = table[date_col] <= as_of if date_col else slice(None)
            seen = table.loc[before, "account_id"]
        for i in np.flatnonzero(~pd.Series(ids).isin(seen.unique()).to_numpy()):
            notes[i].append(name)
    return pd.Series(notes, index=accounts.index)


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
    return _records(rows, p, drivers, model, cfg, missing, uplift, risk_cut)


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
    cut = risk_cut
    if cut is None:
        cut = float(np.nanquantile(pc90, 1 - cfg.top_risk_share)) if n else np.nan
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
    out["days_to_renewal"] = rows.col("days_to_renewal", numeric=True)
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


def score_dataset(
    data_dir: str | Path,
    as_of: str | pd.Timestamp | None,
    model: ScoringModel,
    cfg: ScoringConfig | None = None,
    feature_cfg: FeatureConfig | None = None,
    progress: ProgressFn | None = None,
) -> Scores:
    """Validate raw data, build the snapshot of every account active at ``as_of``, score it.

    ``as_of`` None means the last day the data covers.

    Raises:
        ContractError: When the data breaks the contract.
        ValueError: When ``as_of`` is outside the period the data covers.

    """
    feature_cfg = feature_cfg or FeatureConfig()
    ds = load_dataset(data_dir)
    first, last = history_start(ds, feature_cfg), data_end(ds, feature_cfg)
    t = last if as_of is None else pd.Timestamp(as_of)
    if not first <= t <= last:
        raise ValueError(
            f"--as-of {t.date()} is outside the data, which covers {first.date()} .. "
            f"{last.date()}: features after the last day would read missing activity as none"
        )
    # The previous month's snapshot too, for the health change and its alert.
    dates = pd.DatetimeIndex([t - pd.DateOffset(months=1), t])
    run = build_snapshots(ds, feature_cfg, progress, dates=dates)
    snaps = run.snapshots[run.snapshots["as_of"] == t].reset_index(drop=True)
    if snaps.empty:
        raise ValueError(f"no account is active at {t.date()}")
    uplift = expansion_uplift(ds["subscriptions"], t)
    scores = score_snapshots(
        snaps,
        model,
        cfg,
        missing=inputs_missing(ds, snaps["account_id"], t),
        uplift=DEFAULT_EXPANSION_UPLIFT if uplift is None else uplift,
        progress=progress,
    )
    scores.metadata |= {
        "data": str(Path(data_dir).resolve()),
        "missing_optional_tables": ds.report.missing_optional,
        "expansion_uplift_source": "history" if uplift is not None else "default",
    }
    return scores


def what_if(
    snapshots: pd.DataFrame,
    changes: dict[str, object],
    model: ScoringModel,
    feature_cfg: FeatureConfig | None = None,
    **options: object,
) -> Scores:
    """One account as it is and with ``changes`` to its latest features: two records.

    Args:
        snapshots: The account's snapshots (the latest is changed; the one before gives the
            health change).
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
    df = scores.records.assign(as_of=scores.records["as_of"].dt.strftime("%Y-%m-%d"))
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
