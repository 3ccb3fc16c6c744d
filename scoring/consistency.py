"""The consistency checker: every label, play and sentence of a record against its own figures.

Pure functions over scored records (the columns of :func:`scoring.records.score_rows`, as
``radar score`` writes them). Each rule returns, per record, the contradiction it finds in
words, or None; :func:`check` counts them and :func:`contradictions` lists them. The rules
recompute every label from the record's figures with the same configuration the scoring used
(``ScoringConfig``), and read back every figure a sentence cites:

- labels: value tier from ARR, growth tier from its figures, the segment and strategy from
  the matrix, the customer type from value, growth and the at-risk figures, renewal risk
  from the renewal likelihood;
- plays: each within its preconditions (lifecycle, tier, health, alerts, renewal stage);
- sentences: the churn and expansion percents, the health score, the expected expansion ARR
  and the days a customer they cite equal the record's; "At risk" heads a reason only when
  the churn risk says so; a family reason shows evidence that adds up or says it has none;
  the disagreement banner credits the part that explains most;
- coherence: renewal likelihood and churn risk within the configured points for a renewal
  inside the churn horizon, or a stated reason;
- alerts' figures (scoring.alert_evidence): the ticket sentence quotes the record's counts
  and topics; the health-forecast alert is raised exactly where the record's forecast falls.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from features.catalogue import HEADLINE_HORIZON, RENEWAL_LABEL
from features.words import EXPECTED_EXPANSION, SPREAD, money, percent, points, signed_points
from scoring.alert_evidence import forecast_alert_rule, text_evidence_rule
from scoring.coherence import disagree, renewal_risk_level
from scoring.plays import (
    MATRIX,
    STRATEGY,
    ScoringConfig,
    customer_type,
    growth_reasons,
    growth_tier,
    value_tier,
)
from training.explain import SHOWN

CHURN = f"p_churn_{HEADLINE_HORIZON}d"
EXPANSION = f"p_expansion_{HEADLINE_HORIZON}d"
RENEWAL = f"p_{RENEWAL_LABEL}"
EXPANSION_PLAYS = ("expansion_conversation", "expansion_addons")
RENEWAL_PLAYS = {"renewal_launch": "launch_stages", "negotiation_prep": "negotiation_stages"}

# Record columns the rules read beside the labels (a file scored before them cannot be checked).
FIGURES = ("tenure_days", "arr_change_365d", "usage_trend_90d", "coherence_note")

Rule = Callable[[pd.DataFrame, ScoringConfig], list]


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column, all missing when the records do not have it."""
    if name not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype="float64")


def _at_risk(df: pd.DataFrame, cfg: ScoringConfig) -> np.ndarray:
    """The at-risk figures: poor health, high or top-decile churn risk."""
    health = _col(df, "health_score")
    at = np.nan_to_num(health, nan=np.inf) < cfg.poor_score
    at |= _col(df, CHURN) >= cfg.high_churn_p90
    return at | df["churn_risk_top_decile"].astype(bool).to_numpy()


def _growth(df: pd.DataFrame, cfg: ScoringConfig) -> np.ndarray:
    return growth_tier(
        _col(df, "arr_change_365d"),
        _col(df, "usage_trend_90d"),
        _col(df, CHURN),
        _col(df, EXPANSION),
        cfg,
        _col(df, "health_score"),
    )


def _differs(df: pd.DataFrame, column: str, expected: np.ndarray, what: str) -> list:
    got = df[column].to_numpy()
    return [
        None if g == e or (pd.isna(g) and pd.isna(e)) else f"{what} {g!r}, its figures say {e!r}"
        for g, e in zip(got, expected, strict=True)
    ]


# --- labels --------------------------------------------------------------------------------


def value_label(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """The value tier is the ARR's."""
    return _differs(df, "value_tier", value_tier(_col(df, "arr"), cfg), "value tier")


def growth_label(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """The growth tier is its figures' (ARR change, usage trend, churn, expansion, health)."""
    tier = _differs(df, "growth_tier", _growth(df, cfg), "growth tier")
    if "growth_reason" not in df:
        return tier
    said = growth_reasons(
        _col(df, "arr_change_365d"),
        _col(df, "usage_trend_90d"),
        _col(df, CHURN),
        _col(df, EXPANSION),
        _col(df, "health_score"),
        cfg,
    )
    reason = _differs(df, "growth_reason", np.array(said, dtype=object), "growth reason")
    return [a or b for a, b in zip(tier, reason, strict=True)]


def segment_label(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """The segment and strategy are the matrix cell of the value and growth figures."""
    cells = [
        MATRIX[(v, g)]
        for v, g in zip(value_tier(_col(df, "arr"), cfg), _growth(df, cfg), strict=True)
    ]
    seg = _differs(df, "value_growth_segment", np.array(cells, dtype=object), "segment")
    strategy = _differs(
        df, "segment_strategy", np.array([STRATEGY[c] for c in cells], dtype=object), "strategy"
    )
    return [a or b for a, b in zip(seg, strategy, strict=True)]


def type_label(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """The customer type is its figures' (value, growth, health and churn risk)."""
    kind = customer_type(value_tier(_col(df, "arr"), cfg), _growth(df, cfg), _at_risk(df, cfg))
    return _differs(df, "customer_type", kind, "customer type")


def renewal_risk_label(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """Renewal risk is the renewal likelihood's, and only for a renewal in the window."""
    level = renewal_risk_level(_col(df, "days_to_renewal"), _col(df, RENEWAL), _col(df, CHURN), cfg)
    return _differs(df, "renewal_risk", level, "renewal risk")


# --- plays ---------------------------------------------------------------------------------


def play_preconditions(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """Each play within its preconditions: lifecycle, tier, health, alerts, renewal stage."""
    health = _col(df, "health_score")
    tenure = _col(df, "tenure_days")
    at_risk = _at_risk(df, cfg)
    out: list = []
    rows = zip(
        df["play"],
        df["plan_tier"],
        df["alerts"],
        df["renewal_stage"],
        health,
        tenure,
        at_risk,
        strict=True,
    )
    for play, tier, alerts, stage, h, t, risky in rows:
        onboarding = t < cfg.onboarding_days  # NaN: no
        severe = set(alerts if alerts is not None else ()) & set(cfg.high_severity_alerts)
        why = None
        if onboarding and play not in ("onboarding_plan", *cfg.onboarding_alert_plays):
            why = f"{play} for an onboarding account ({t:.0f} days a customer)"
        elif play == "onboarding_plan" and not onboarding:
            why = f"onboarding plan for an account {t:.0f} days a customer"
        elif play in EXPANSION_PLAYS and (risky or not h >= cfg.healthy_score or severe):
            why = f"{play} for an account not healthy (health {h:.0f}) or at risk or alerted"
        elif play == "expansion_conversation" and tier in cfg.top_tiers:
            why = f"a higher tier offered on the top tier ({tier})"
        elif play in RENEWAL_PLAYS and stage not in getattr(cfg, RENEWAL_PLAYS[play]):
            why = f"{play} at renewal stage {stage}"
        elif play == "advocacy_ask" and (risky or not h >= cfg.healthy_score):
            why = f"an advocacy ask from an account not healthy (health {h:.0f}) or at risk"
        out.append(why)
    return out


def expansion_cited(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """An account that meets the expansion rules has its play cite the figure that earned it.

    Healthy, not at risk, past onboarding, no high-severity alert, an expansion likely or
    triggered, and no alert play before it: the expansion play, or the renewal motion with the
    expansion folded in, names the expected expansion ARR.
    """
    health, tenure = _col(df, "health_score"), _col(df, "tenure_days")
    expected = _col(df, f"expected_expansion_arr_{HEADLINE_HORIZON}d")
    likely = _col(df, EXPANSION) >= cfg.high_growth_expansion_p90
    alert_plays = {p for _, p in cfg.alert_plays}
    out = []
    rows = zip(
        df["play"],
        df["play_reason"],
        df["alerts"],
        df["triggers"],
        health,
        tenure,
        expected,
        likely,
        _at_risk(df, cfg),
        strict=True,
    )
    for play, reason, alerts, triggers, h, t, e, lk, risky in rows:
        alerts = list(alerts if alerts is not None else ())
        grows = (lk or len(triggers if triggers is not None else ())) and not (
            set(alerts) & set(cfg.high_severity_alerts)
        )
        meets = grows and h >= cfg.healthy_score and not risky and not t < cfg.onboarding_days
        if meets and play not in alert_plays and not np.isnan(e) and money(e) not in reason:
            out.append(
                f"meets the expansion rules ({money(e)} expected) but {play} does not say it"
            )
        else:
            out.append(None)
    return out


# --- sentences -----------------------------------------------------------------------------

_PERCENT = r"((?:under |over )?[\d.]+%)"  # as features.words.percent writes it
_CHURN_CITED = re.compile(rf"{HEADLINE_HORIZON}-day churn risk (?:at (?:only )?)?{_PERCENT}")
_HEALTH_CITED = re.compile(r"(?:health|healthy|poor) \((\d+)\)")
_EXPANSION_CITED = re.compile(rf"{_PERCENT} chance of expanding")
_EXPECTED_CITED = re.compile(rf"(\$[\d,]+) {EXPECTED_EXPANSION}")
_TENURE_CITED = re.compile(r"\(([\d,]+) days a customer\)")


def _cites(text: str | None, pattern: re.Pattern, expected: str, what: str) -> str | None:
    if not isinstance(text, str):  # none said (None, or NaN once through a frame)
        return None
    for got in pattern.findall(text):
        if got != expected:
            return f"cites {what} {got}, the record has {expected}"
    return None


def cited_figures(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """Every figure the play reason, disagreement and coherence note cite is the record's."""
    churn, exp = _col(df, CHURN), _col(df, EXPANSION)
    health, tenure = _col(df, "health_score"), _col(df, "tenure_days")
    expected = _col(df, f"expected_expansion_arr_{HEADLINE_HORIZON}d")
    notes = df.get("coherence_note", pd.Series([None] * len(df), index=df.index))
    out = []
    for i, texts in enumerate(zip(df["play_reason"], df["disagreement"], notes, strict=True)):
        found = None
        for text in texts:
            found = (
                found
                or _cites(text, _CHURN_CITED, percent(churn[i]), "churn risk")
                or (
                    None
                    if np.isnan(health[i])
                    else _cites(text, _HEALTH_CITED, f"{health[i]:.0f}", "health")
                )
                or _cites(text, _EXPANSION_CITED, percent(exp[i]), "expansion chance")
                or _cites(text, _EXPECTED_CITED, money(expected[i]), EXPECTED_EXPANSION)
                or _cites(text, _TENURE_CITED, f"{tenure[i]:,.0f}", "days a customer")
            )
        out.append(found)
    return out


def at_risk_words(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """A reason headed "At risk" only where the churn risk says so (not poor health alone)."""
    churn = _col(df, CHURN)
    top = df["churn_risk_top_decile"].astype(bool).to_numpy()
    return [
        f"'At risk' with a {percent(c)} churn risk, not top decile"
        if str(reason).startswith("At risk") and not (c >= cfg.high_churn_p90 or t)
        else None
        for reason, c, t in zip(df["play_reason"], churn, top, strict=True)
    ]


def _parts(df: pd.DataFrame, name: str) -> pd.Series:
    return df.get(name, pd.Series([None] * len(df), index=df.index))


def reason_evidence(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """A family reason's evidence adds up: same direction, or it says none stands out."""
    out = []
    for reasons in _parts(df, f"reasons_churn_{HEADLINE_HORIZON}d"):
        why = None
        for r in reasons if reasons is not None else ():  # lists, or arrays from Parquet
            against = [e for e in r["evidence"] if e["effect"] * r["effect"] <= 0]
            said = r["sentence"]
            if against:
                why = f"{r['title']} {signed_points(r['effect'])} shown with evidence against it"
            elif len(r["evidence"]) == 0 and abs(r["effect"]) >= SHOWN and SPREAD not in said:
                why = f"{r['title']} {signed_points(r['effect'])} with no evidence and no word why"
            if why:
                break
        out.append(why)
    return out


def disagreement_credit(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """The disagreement banner credits the part that explains most of the churn risk."""
    out = []
    rows = zip(
        df["disagreement"],
        _parts(df, f"reasons_churn_{HEADLINE_HORIZON}d"),
        _parts(df, f"timing_churn_{HEADLINE_HORIZON}d"),
        _parts(df, f"context_churn_{HEADLINE_HORIZON}d"),
        strict=True,
    )
    for text, reasons, timing, context in rows:
        why = None
        said = isinstance(text, str) and "the model finds" in text and "adds" in text
        if said and reasons is not None:
            lead = max((r["effect"] for r in reasons), default=0.0)
            other = max((p["effect"] for p in (timing, context) if p is not None), default=0.0)
            if other > lead:
                why = f"credits a family worth {points(lead)}; another part: {points(other)}"
        out.append(why)
    return out


def coherence(df: pd.DataFrame, cfg: ScoringConfig) -> list:
    """Renewal likelihood and churn risk agree on a renewal inside the horizon, or say why."""
    far = disagree(
        _col(df, "days_to_renewal"), _col(df, RENEWAL), _col(df, CHURN), df["renewal_stage"], cfg
    )
    notes = _parts(df, "coherence_note").to_numpy()
    return [
        "renewal likelihood and churn risk apart with no reason stated" if f and not n else None
        for f, n in zip(far, notes, strict=True)
    ]


RULES: dict[str, Rule] = {
    "value_tier": value_label,
    "growth_tier": growth_label,
    "segment": segment_label,
    "customer_type": type_label,
    "renewal_risk": renewal_risk_label,
    "play_preconditions": play_preconditions,
    "expansion_cited": expansion_cited,
    "cited_figures": cited_figures,
    "at_risk_words": at_risk_words,
    "reason_evidence": reason_evidence,
    "disagreement_credit": disagreement_credit,
    "renewal_coherence": coherence,
    "text_evidence": text_evidence_rule,
    "forecast_alert": forecast_alert_rule,
}


def contradictions(records: pd.DataFrame, cfg: ScoringConfig | None = None) -> pd.DataFrame:
    """Every contradiction found: ``account_id``, ``rule`` and ``detail`` (empty: none)."""
    cfg = cfg or ScoringConfig()
    df = records.reset_index(drop=True)
    found = []
    for name, rule in RULES.items():
        for i, why in enumerate(rule(df, cfg)):
            if why:
                found.append((df["account_id"].iloc[i], name, why))
    return pd.DataFrame(found, columns=["account_id", "rule", "detail"])


def check(records: pd.DataFrame, cfg: ScoringConfig | None = None) -> dict[str, int]:
    """Contradictions per rule (every rule listed, 0 included) and ``total``."""
    found = contradictions(records, cfg)
    counts = {name: int((found["rule"] == name).sum()) for name in RULES}
    return {**counts, "total": int(len(found))}
