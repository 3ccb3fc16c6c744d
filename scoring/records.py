"""Score accounts: probabilities, drivers in words, segment, play and portfolio summary.

One implementation for ``radar score`` and the service: both score snapshot rows (features,
the rule-based columns of ``radar features`` and the accounts' context) with
:func:`score_rows`. Nothing here reads raw tables: :mod:`scoring.batch` builds the rows
``radar score`` needs, the service reads them from the snapshot store.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import (
    CONTEXT,
    FAMILIES,
    FEATURE_BY_NAME,
    HEADLINE_HORIZON,
    HORIZONS,
    RENEWAL_LABEL,
    RENEWAL_WINDOW_DAYS,
    TIMING,
)
from features.config import FeatureConfig
from features.health import PREVIOUS_HEALTH, with_rules
from features.io import atomic_file, check_record, clean_stale, file_record
from features.safe_output import csv_safe
from features.store import (
    ACCOUNT_INFO,
    DEFAULT_EXPANSION_UPLIFT,
    SnapshotStore,
    missing_inputs,
    with_context,
)
from features.words import (
    FAMILY_WORDS,
    PLAYS,
    context_sentence,
    disagreement_part_words,
    evidence_phrase,
    evidence_sentence,
    family_title,
    format_value,
    not_estimated_sentence,
    percent,
    points,
    reason_sentence,
    sentence,
    timing_sentence,
)
from scoring.alert_evidence import text_columns
from scoring.coherence import coherence_notes, renewal_risk_level
from scoring.outlook import (
    falls_before_renewal,
    forecast_columns,
    forecast_inputs_of,
    with_forecast_alert,
)
from scoring.plays import (
    MATRIX,
    STRATEGY,
    Leading,
    ScoringConfig,
    customer_type,
    growth_reasons,
    growth_tier,
    recommend,
    value_tier,
)
from training.explain import (
    GROUPS,
    SHOWN,
    Grouping,
    HeadExplanation,
    contributions,
    evidence,
    explain,
    take_per_row,
    top_drivers,
)
from training.model import ModelBundle
from training.registry import ScoringModel

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]

CHUNK = 20_000  # rows per explanation batch: bounds memory, drives the progress bar
# Per head, beside the drivers: the calendar's part, the profile's part, the family reasons.
PER_HEAD_EXPLAINED = ("timing", "context", "reasons")


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
    names = bundle.spec.names
    typical = np.array([bundle.metadata.get("typical", {}).get(c, np.nan) for c in names])
    probs: dict[str, list[np.ndarray]] = {f"p_{h}": [] for h in bundle.heads}
    drivers: dict[str, list[dict]] = {label: [] for label in bundle.heads}
    horizons = {label: bundle.horizon(label) for label in bundle.heads}  # for the sentences
    step("scoring accounts", 0, n)
    for start in range(0, n, CHUNK):
        part = rows.take(slice(start, start + CHUNK))
        # TreeSHAP contributions add up to the raw score: one pass per head gives both.
        contrib = {h: contributions(head.booster, part.x) for h, head in bundle.heads.items()}
        p = bundle.calibrated({h: c.sum(axis=1) for h, c in contrib.items()})
        for c, v in p.items():
            probs[c].append(v)
        window = renewal_within_window(part.col("days_to_renewal", numeric=True))
        for label, ex in explain(bundle, part.x, p, contrib).items():
            if label != RENEWAL_LABEL or window.all():
                drivers[label] += _explained(part, ex, label, names, typical, cfg, horizons[label])
                continue
            # Renewal likelihood answers only inside its window (blanked outside): the
            # words are made only for the rows that keep them.
            lists = [_blank(ex.baseline) for _ in range(len(part))]
            inside = np.flatnonzero(window)
            if not len(inside):
                drivers[label] += lists
                continue
            sub = HeadExplanation(
                ex.baseline, ex.effects[inside], ex.remainder_cap[inside], ex.probability[inside]
            )
            for i, row in zip(
                inside,
                _explained(part.take(inside), sub, label, names, typical, cfg, horizons[label]),
                strict=True,
            ):
                lists[i] = row
            drivers[label] += lists
        step("scoring accounts", min(start + CHUNK, n), n)
    p = {c: np.concatenate(v) if v else np.empty(0) for c, v in probs.items()}
    blank_renewal(p, drivers, rows.col("days_to_renewal", numeric=True))
    return _records(rows, p, drivers, model, cfg, missing, uplift, risk_cut)


def _explained(
    part: Rows, ex: HeadExplanation, label, names, typical, cfg, horizon: int
) -> list[dict]:
    """Per row of ``part``: one head's drivers, timing line, profile and family reasons.

    ``horizon``: the head's horizon in days (the bundle's, for the sentences).
    """
    grouping = _grouping(tuple(names))
    # Drivers: the strongest of the account's own signals and profile, never the calendar,
    # never a missing value, never under half a point, and a signal only where its value
    # sits on the side of typical its known direction makes it read.
    direction = _directions(names, label)
    side = np.sign(part.x - typical) * direction * np.sign(ex.effects)
    citable = ~grouping.timing & ~np.isnan(part.x) & (~grouping.signal | (side > 0))
    idx = top_drivers(np.where(citable, ex.effects, 0.0), cfg.top_drivers)
    eff = take_per_row(ex.effects, idx)
    eff = np.where(take_per_row(citable, idx) & (np.abs(eff) >= SHOWN), eff, np.nan)
    rest = ex.effects.sum(axis=1) - np.nansum(eff, axis=1) + ex.remainder_cap
    lists = _driver_lists(part, names, idx, eff, label, ex, rest.tolist(), horizon)
    groups = grouping.effects(ex)
    ev = evidence(ex.effects, part.x, grouping, typical, direction, groups)
    context = _RowContext.of(part)
    why_rows = _explanations(part, context, names, label, groups, ev, ex, typical, horizon)
    for row, why in zip(lists, why_rows, strict=True):
        row.update(why)
    return lists


def _blank(baseline: float) -> dict:
    """The renewal head's explanation where it does not answer: no parts, one sentence."""
    said = {"effect": 0.0, "sentence": not_estimated_sentence()}
    return {
        "baseline": baseline,
        "drivers": [],
        "remainder": 0.0,
        "timing": said,
        "context": said,
        "reasons": [],
    }


@functools.cache
def _grouping(names: tuple[str, ...]) -> Grouping:
    return Grouping.of(list(names))


@functools.cache
def _directions_cached(names: tuple[str, ...], label: str) -> np.ndarray:
    return np.array(
        [FEATURE_BY_NAME[c].effect_on(label) if c in FEATURE_BY_NAME else 0 for c in names]
    )


def _directions(names: list[str], label: str) -> np.ndarray:
    """Per feature, its known direction on head ``label`` (0: none)."""
    return _directions_cached(tuple(names), label)


@dataclass(frozen=True)
class _RowContext:
    """What the timing and profile sentences of a chunk of rows need, as plain lists."""

    renewal: list
    days: list
    monthly: list
    segment: list
    tier: list

    @classmethod
    def of(cls, part: Rows) -> _RowContext:
        days = part.col("days_to_renewal", numeric=True)
        when = part.col("as_of").astype("datetime64[D]")
        renewal = np.where(
            np.isnan(days),
            np.datetime64("NaT"),
            when + np.nan_to_num(days).astype("timedelta64[D]"),
        )
        term, stage = part.col("billing_term"), part.col("renewal_stage")
        monthly = [
            t == "monthly" or s == "monthly_rolling" for t, s in zip(term, stage, strict=True)
        ]
        return cls(
            renewal.tolist(),
            [None if np.isnan(d) else float(d) for d in days],
            monthly,
            list(part.col("segment")),
            list(part.col("plan_tier")),
        )


def _explanations(part, context, names, label, groups, ev, ex, typical, horizon) -> list[dict]:
    """Per row: the timing line, the profile, and the family reasons with their evidence."""
    first = GROUPS.index(FAMILIES[0])
    t_i, c_i = GROUPS.index(TIMING), GROUPS.index(CONTEXT)
    group = _grouping(tuple(names)).group
    present = [i for i in range(len(FAMILIES)) if (group == first + i).any()]
    used = np.unique(ev[ev >= 0])
    values = {j: part.x[:, j].tolist() for j in used}
    eff_rows = {j: ex.effects[:, j].tolist() for j in used}
    # A feature's typical value is the same on every row: its words once.
    typical_text = {
        j: None if np.isnan(typical[j]) else format_value(names[j], typical[j]) for j in used
    }
    g = groups.tolist()
    order = first + np.argsort(-groups[:, first : first + len(FAMILIES)], axis=1, kind="stable")
    order = order.tolist()
    keep = {first + i for i in present}
    ev_rows = ev.tolist()
    # The timing line's leading feature per row (the calendar's part may be tenure, not a
    # contract date): its name and value, for the sentence of an account without a contract.
    timing_cols = np.flatnonzero(_grouping(tuple(names)).timing)
    timing_lead = (
        timing_cols[np.argmax(np.abs(ex.effects[:, timing_cols]), axis=1)].tolist()
        if len(timing_cols)
        else [None] * len(g)
    )
    out = []
    for i in range(len(g)):
        row = g[i]
        reasons = []
        for gi in order[i]:
            if gi not in keep:
                continue
            fi = gi - first
            family, effect = FAMILIES[fi], row[gi]
            items = []
            for j in ev_rows[i][fi]:
                if j < 0:
                    continue
                feature, value, e = names[j], values[j][i], eff_rows[j][i]
                if e * effect <= 0:  # evidence against the family's direction does not add up
                    continue
                shown, usual = format_value(feature, value), typical_text[j]
                items.append(
                    {
                        "feature": feature,
                        "value": shown,
                        "typical": usual,
                        "effect": e,
                        "sentence": evidence_sentence(
                            feature, value, typical[j], e, label, shown, usual, horizon
                        ),
                    }
                )
            reasons.append(
                {
                    "family": family,
                    "title": family_title(family),
                    "effect": effect,
                    "sentence": reason_sentence(
                        family, effect, label, horizon, spread=not items and abs(effect) >= SHOWN
                    ),
                    "evidence": items,
                }
            )
        timing, profile = row[t_i], row[c_i]
        out.append(
            {
                "timing": {
                    "effect": timing,
                    "sentence": timing_sentence(
                        label,
                        timing,
                        context.renewal[i],
                        context.days[i],
                        context.monthly[i],
                        horizon,
                        lead=_timing_lead(names, timing_lead[i], part, i),
                    ),
                },
                "context": {
                    "effect": profile,
                    "sentence": context_sentence(
                        label, profile, context.segment[i], context.tier[i], horizon
                    ),
                },
                "reasons": reasons,
            }
        )
    return out


def _timing_lead(names, j: int | None, part: Rows, i: int) -> tuple[str, str] | None:
    """The timing feature moving this row's timing line most, with its value in words."""
    if j is None or names[j] in ("days_to_renewal", "renewal_stage"):
        return None
    return names[j], format_value(names[j], part.col(names[j])[i])


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
        drivers[RENEWAL_LABEL][i] = _blank(drivers[RENEWAL_LABEL][i]["baseline"])


def _driver_lists(part: Rows, names, idx, eff, label, ex, rest, horizon) -> list[dict]:
    """One dict per row: baseline, top drivers with values, effects and sentences, remainder.

    ``eff`` is NaN where a driver is not shown (under half a point, a missing value).
    """
    # Plain Python numbers and per-feature lookups once: this loop runs 20 times per account.
    values = {names[j]: part.col(names[j]).tolist() for j in np.unique(idx)}
    known = {f: FEATURE_BY_NAME.get(f) for f in values}
    out = []
    for i, (row_idx, row_eff) in enumerate(zip(idx.tolist(), eff.tolist(), strict=True)):
        items = []
        for j, effect in zip(row_idx, row_eff, strict=True):
            if effect != effect:  # NaN: not shown
                continue
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
                    "sentence": sentence(feature, value, effect, label, text, horizon)
                    if f
                    else f"{feature}: {value}",
                }
            )
        out.append({"baseline": ex.baseline, "drivers": items, "remainder": rest[i]})
    return out


def _records(rows: Rows, p, drivers, model, cfg, missing, uplift, risk_cut) -> dict:
    """Assemble the records column by column on plain arrays (cheap for one row or 100k)."""
    n = len(rows)
    weights = component_shares(health_scheme_name(model.bundle))
    out: dict[str, np.ndarray | list] = {"account_id": rows.col("account_id")}
    for c in ACCOUNT_INFO:
        out[c] = rows.col(c)
    out["as_of"] = rows.col("as_of")
    out.update(p)
    # Health ahead and satisfaction, when the bundle has forecasts (training/forecast.py).
    forecast = forecast_columns(model.bundle.forecasts, rows.x, *forecast_inputs_of(rows.col))
    out.update(forecast)
    for c in rows.names("health_"):
        out[c] = rows.col(c)
    arr = rows.col("arr", numeric=True)
    out["arr"] = arr
    nan = np.full(n, np.nan)
    pc90 = p.get(f"p_churn_{HEADLINE_HORIZON}d", nan)
    pe90 = p.get(f"p_expansion_{HEADLINE_HORIZON}d", nan)
    for h in HORIZONS:
        # Every record has the money fields, missing where the model lacks the head: the
        # pages, briefs and summaries read them without asking which heads there are.
        out[f"arr_at_risk_{h}d"] = p.get(f"p_churn_{h}d", nan) * arr
        out[f"expected_expansion_arr_{h}d"] = p.get(f"p_expansion_{h}d", nan) * arr * uplift
    # "Top decile" is relative to the portfolio: the rows scored, unless the caller knows it.
    cut = top_risk_cut(pc90, cfg) if risk_cut is None else risk_cut
    top = (pc90 >= cut) & (pc90 >= cfg.top_risk_min_p90)
    out["churn_risk_top_decile"] = top
    health = rows.col("health_score", numeric=True)

    value = value_tier(arr, cfg)
    growth = growth_tier(
        rows.col("arr_change_365d", numeric=True),
        rows.col("usage_trend_90d", numeric=True),
        pc90,
        pe90,
        cfg,
        health,
    )
    at_risk = np.nan_to_num(health, nan=np.inf) < cfg.poor_score
    at_risk |= (pc90 >= cfg.high_churn_p90) | top
    matrix = [MATRIX[(v, g)] for v, g in zip(value, growth, strict=True)]
    out["value_tier"], out["growth_tier"] = value, growth
    out["value_growth_segment"] = matrix
    out["segment_strategy"] = [STRATEGY[m] for m in matrix]
    out["customer_type"] = customer_type(value, growth, at_risk)
    out["growth_reason"] = growth_reasons(
        rows.col("arr_change_365d", numeric=True),
        rows.col("usage_trend_90d", numeric=True),
        pc90,
        pe90,
        health,
        cfg,
    )
    for c in ("segment", "plan_tier", "lifecycle_stage", "renewal_stage", "renewal_risk"):
        out[c] = rows.col(c)
    days = rows.col("days_to_renewal", numeric=True)
    out["days_to_renewal"] = days
    when = rows.col("as_of").astype("datetime64[D]")
    out["renewal_date"] = np.where(
        np.isnan(days), np.datetime64("NaT"), when + np.nan_to_num(days).astype("timedelta64[D]")
    )
    out["alerts"] = _flags(rows, "alert_")
    falls, fall_words = falls_before_renewal(health, forecast, days)
    out["alerts"] = with_forecast_alert(out["alerts"], falls)
    out["triggers"] = _flags(rows, "trigger_")
    # What this month's tickets say, with the counts (none without text: never "0 of 0").
    out.update(text_columns(rows.col))
    # One definition of renewal risk (docs/scoring.md), from the renewal likelihood: it
    # replaces the health-rule flag of the features, which called most of a book "high".
    p_renewal = p.get(f"p_{RENEWAL_LABEL}", nan)
    out["renewal_risk"] = renewal_risk_level(days, p_renewal, pc90, cfg)
    # The figures the labels are made from, on the record: the checker reads them back.
    for c in ("tenure_days", "arr_change_365d", "usage_trend_90d"):
        out[c] = rows.col(c, numeric=True)

    headline = f"churn_{HEADLINE_HORIZON}d"
    churn_key = headline if headline in drivers else next(iter(drivers), None)
    churn_reasons = [r["reasons"] for r in drivers[churn_key]] if churn_key else [[]] * n
    churn_parts = (
        [(r["timing"], r["context"]) for r in drivers[churn_key]] if churn_key else [None] * n
    )
    disagreement = _disagreement(health, pc90, top, churn_reasons, weights, cfg, churn_parts)
    out["disagreement"] = [
        d if w is None else w if d is None else f"{d}. {w}"
        for d, w in zip(disagreement, fall_words, strict=True)
    ]
    renewal_reasons = [r["reasons"] for r in drivers.get(RENEWAL_LABEL, [])] or [[]] * n
    out["coherence_note"] = coherence_notes(
        days,
        p_renewal,
        pc90,
        out["renewal_stage"],
        out["renewal_date"],
        churn_reasons,
        renewal_reasons,
        cfg,
    )
    tenure, tiers = out["tenure_days"], rows.col("plan_tier")
    expected = out.get(f"expected_expansion_arr_{HEADLINE_HORIZON}d", nan)
    bands, stages = rows.col("health_band"), rows.col("renewal_stage")
    nps = rows.col("nps_latest", numeric=True)
    plays, reasons = [], []
    for i in range(n):
        play, reason = recommend(
            health=None if np.isnan(health[i]) else float(health[i]),
            band=None if bands[i] is None else str(bands[i]),
            at_risk=bool(at_risk[i]),
            churn_p90=float(pc90[i]),
            expansion_p90=float(pe90[i]),
            renewal_stage=stages[i],
            alerts=out["alerts"][i],
            triggers=out["triggers"][i],
            nps_latest=None if np.isnan(nps[i]) else float(nps[i]),
            leading=_leading(churn_reasons[i]),
            cfg=cfg,
            tenure_days=None if np.isnan(tenure[i]) else float(tenure[i]),
            plan_tier=tiers[i],
            expected_expansion=float(expected[i]),
            top_decile=bool(top[i]),
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
        for part in PER_HEAD_EXPLAINED:
            out[f"{part}_{label}"] = [r[part] for r in items]
    out["missing_inputs"] = list(missing) if missing is not None else [[] for _ in range(n)]
    # Which model, on every record: the registry's name and version and the training run.
    out["model_name"] = [model.name] * n
    out["model_version"] = [model.version] * n
    out["training_run_id"] = [model.run_id] * n
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


def health_scheme_name(bundle: ModelBundle) -> str:
    """The health scheme of the feature configuration the bundle was trained on."""
    raw = bundle.metadata.get("feature_config") or {}
    return str(raw.get("health", FeatureConfig.model_fields["health"].default))


def _leading(reasons: list[dict]) -> Leading | None:
    """The most risk-raising family that has evidence to name (a play needs a signal to act on).

    A family whose effect comes from no citable signal (values near typical, many small
    pushes) cannot lead: its play would have nothing to point at.
    """
    for r in reasons:
        if r["effect"] <= 0:
            return None
        if r["evidence"]:
            e = r["evidence"][0]
            return Leading(
                r["family"],
                r["effect"],
                evidence_phrase(e["feature"], e["value"], e["typical"]),
                e["feature"],
            )
    return None


# Health-score components that weigh each family of signals (seed 001 and seed 002 names).
FAMILY_COMPONENTS = {
    "usage": ("usage",),
    "engagement": ("engagement", "business_outcomes"),
    "relationship": ("relationship",),
    "support": ("support",),
    "commercial": ("business", "business_outcomes"),
}


@functools.cache
def component_shares(scheme: str) -> dict[str, float]:
    """Share of the health score's weight of each family, for the scheme named ``scheme``."""
    from features.config import HealthScheme

    comps = HealthScheme.load(scheme).components
    total = sum(c.weight for c in comps.values()) or 1.0
    return {
        family: sum(comps[n].weight for n in names if n in comps) / total
        for family, names in FAMILY_COMPONENTS.items()
    }


def _evidence_words(reason: dict) -> str:
    """A family reason's strongest evidence as a short phrase: " (critical tickets ...: 2)"."""
    if not reason["evidence"]:
        return ""
    e = reason["evidence"][0]
    return f" ({evidence_phrase(e['feature'], e['value'], e['typical'])})"


def _disagreement(
    health, p90, top, reasons, weights, cfg: ScoringConfig, parts=None
) -> list[str | None]:
    """Where health score and model disagree: one sentence that says what explains it.

    ``parts``: per row, the churn head's (timing, context) parts; when one of them raises the
    risk more than the leading family, the sentence credits it (the renewal date, not a
    family worth a fraction of a point).
    """
    out: list[str | None] = []
    parts = parts if parts is not None else [None] * len(health)
    for h, p, t, rs, part in zip(health, p90, top, reasons, parts, strict=True):
        if h >= cfg.healthy_score and (t or p >= cfg.high_churn_p90):
            text = (
                f"Health score says healthy ({h:.0f}) but the model puts "
                f"{HEADLINE_HORIZON}-day churn risk at {percent(p)}"
                + (" (top decile)" if t else "")
            )
            lead = rs[0] if rs and rs[0]["effect"] > 0 else None
            other = max(part or (), key=lambda x: x["effect"], default=None)
            if other is not None and other["effect"] > (lead["effect"] if lead else 0.0):
                text += f": {disagreement_part_words(other['sentence'])}"
                lead = None
            if lead is not None:
                family = FAMILY_WORDS[lead["family"]]
                share = weights.get(lead["family"], 0.0)
                weighs = f"weighs {family} at {share:.0%}" if share else f"does not weigh {family}"
                text += (
                    f": the health score {weighs}; the model finds {family} adds "
                    f"{points(lead['effect'])} of churn risk{_evidence_words(lead)}"
                )
            out.append(text)
        elif h < cfg.poor_score and p < cfg.high_churn_p90 / 4 and not t:
            text = (
                f"Health score says poor ({h:.0f}) but the model puts "
                f"{HEADLINE_HORIZON}-day churn risk at only {percent(p)}"
            )
            low = rs[-1] if rs and rs[-1]["effect"] < 0 else None
            if low is not None:
                family = FAMILY_WORDS[low["family"]]
                text += (
                    f": the model finds {family} lowers it by {points(low['effect'])}"
                    f"{_evidence_words(low)}"
                )
            out.append(text)
        else:
            out.append(None)
    return out


# The record columns the portfolio summary reads (the Spark job collects only these).
SUMMARY_INPUTS = (
    "segment",
    "arr",
    *(f"arr_at_risk_{h}d" for h in HORIZONS),
    *(f"expected_expansion_arr_{h}d" for h in HORIZONS),
    "health_band",
    "play",
    "disagreement",
)


def portfolio_summary(records: pd.DataFrame) -> dict:
    """Health distribution, expected churned / expanded ARR, expected GRR and NRR by segment.

    Expected GRR over the next quarter = 1 - expected churned ARR (90 days) / ARR; expected
    NRR = GRR + expected expansion ARR (90 days) / ARR. Contractions are not modelled. Only
    the columns :data:`SUMMARY_INPUTS` are read.
    """
    records = records[[c for c in SUMMARY_INPUTS if c in records.columns]]

    q = HEADLINE_HORIZON  # a quarter ahead: the headline horizon

    def total(g: pd.DataFrame, column: str) -> float | None:
        # Absent is absent: no account with the figure (no ARR, or the model lacks the head)
        # sums to None, never to $0.
        if column not in g:
            return None
        s = g[column].sum(min_count=1)
        return None if pd.isna(s) else float(s)

    def block(g: pd.DataFrame) -> dict:
        arr = total(g, "arr")
        churn = {h: total(g, f"arr_at_risk_{h}d") if arr is not None else None for h in HORIZONS}
        grow = {
            h: total(g, f"expected_expansion_arr_{h}d") if arr is not None else None
            for h in HORIZONS
        }
        bands = g["health_band"].astype("object").fillna("no score").value_counts()
        c, e = churn[q], grow[q]
        return {
            "accounts": int(len(g)),
            "arr": arr,
            "health_distribution": {str(k): int(v) for k, v in bands.items()},
            **{f"expected_churned_arr_{h}d": churn[h] for h in HORIZONS},
            **{f"expected_expansion_arr_{h}d": grow[h] for h in HORIZONS},
            "expected_grr_next_quarter": 1 - c / arr if arr and c is not None else None,
            "expected_nrr_next_quarter": (
                1 - c / arr + e / arr if arr and c is not None and e is not None else None
            ),
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
    # A product-feature column fits a pattern of the catalogue: it must be one of the model's.
    own = {*snapshots.columns, *model.bundle.spec.names}
    foreign = [k for k in changes if k not in own]
    if foreign:
        raise ValueError(f"not features of this model's snapshots: {', '.join(foreign)}")
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
NESTED_PREFIXES = ("drivers_", *(f"{p}_" for p in PER_HEAD_EXPLAINED))


SUMMARY_SUFFIX = ".summary.json"


def write_scores(scores: Scores, path: str | Path) -> Path:
    """Write records by extension (.parquet, .csv, .jsonl/.json) atomically, with metadata.

    Parquet keeps drivers as nested lists and the summary in the file's metadata; CSV holds
    nested values as JSON text; every format gets ``<file>.summary.json`` beside it.
    """
    path = Path(path)
    ext = path.suffix.lower()
    summary_path = path.with_name(path.name + SUMMARY_SUFFIX)
    clean_stale(path.parent, [path.name, summary_path.name])
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
            if c.startswith(NESTED_PREFIXES) or c in NESTED:
                flat[c] = [json.dumps(v) for v in flat[c]]
        with atomic_file(path) as tmp:
            csv_safe(flat).to_csv(tmp, index=False)  # no cell a spreadsheet would run
    elif ext in (".jsonl", ".json"):
        with atomic_file(path) as tmp:
            df.to_json(tmp, orient="records", lines=True)
    else:
        raise ValueError(f"{path}: unknown output format {ext!r}; use .parquet, .csv or .jsonl")
    # Last, with the scores file's hash: a reader can tell a pair not written together.
    meta["file"] = {"name": path.name, **file_record(path)}
    with atomic_file(summary_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=str))
    return path


def read_summary(path: str | Path) -> dict:
    """The summary beside a scores file, refused unless the two were written together."""
    path = Path(path)
    summary_path = path.with_name(path.name + SUMMARY_SUFFIX)
    try:
        meta = json.loads(summary_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{summary_path}: cannot read it ({exc})") from exc
    if "file" in meta:
        check_record(path, meta["file"], "radar score")
    return meta
