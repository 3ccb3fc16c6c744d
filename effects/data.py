"""The effect table: point-in-time snapshots with the play started after each as-of date.

Treated at as-of T means a play started in the decision window (T, T + window]; the outcome is
the snapshot's label (churn within the horizon after T); the covariates are the snapshot's
features at T, plus the plays already run before T (history, not treatment).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from effects.config import EffectsConfig
from features.catalogue import horizon_days
from features.words import PLAYS

NONE = "none"  # the control arm
LAST_PLAY = "days_since_last_play"  # history at T (effect_table), a covariate like plays_before
PILOT = "pilot"  # csm_actions reason of a play given at random, its chance in ``propensity``
NO_PLAY_RECORDS = "no play records: effects cannot be estimated"
POLICY_SHARE = 0.6  # as-of dates the worklist's estimate learns from; the rest evaluate it
CAUSES = ("relationship", "support", "adoption")  # the order the rule play looks at them
# The play a team runs for each cause, the rule the worklist falls back on ("no evidence yet").
RULE_PLAY = {
    "relationship": "executive_outreach",
    "support": "support_escalation",
    "adoption": "adoption_plan",
    None: "value_review",
}


class EffectsError(ValueError):
    """Bad or insufficient input: the message is one line naming what is wrong."""


def check_actions(actions: pd.DataFrame | None, first: pd.Timestamp, last: pd.Timestamp) -> None:
    """Raise :class:`EffectsError` unless ``actions`` holds usable play records.

    Args:
        actions: The ``csm_actions`` table (None or empty: no records).
        first: First day plays can be placed against (the first as-of date).
        last: Last day of the data.

    """
    if actions is None or actions.empty or not (actions["action"] == "play_started").any():
        raise EffectsError(NO_PLAY_RECORDS)
    started = actions[actions["action"] == "play_started"]
    bad = started[~started["play"].isin(list(PLAYS))]
    if len(bad):
        row = bad.index[0]
        raise EffectsError(
            f"csm_actions row {row}: unknown play {bad['play'].iloc[0]!r} "
            f"(known: {', '.join(PLAYS)})"
        )
    if "reason" in started and (started["reason"] == PILOT).any():
        pilot = started[started["reason"] == PILOT]
        q = pd.to_numeric(pilot.get("propensity", pd.Series(np.nan, pilot.index)), errors="coerce")
        bad = ~((q > 0) & (q <= 1))
        if bad.any():
            row = pilot.index[np.flatnonzero(bad.to_numpy())[0]]
            raise EffectsError(
                f"csm_actions row {row}: a pilot play needs its chance in column 'propensity' "
                f"(above 0, at most 1), got {q[row]!r}"
            )
    dates = pd.to_datetime(actions["date"])
    out = (dates < first - pd.Timedelta(days=365)) | (dates > last)
    if out.any():
        row = actions.index[np.flatnonzero(out.to_numpy())[0]]
        raise EffectsError(
            f"csm_actions row {row}: date {dates[row].date()} is outside the data's range "
            f"({(first - pd.Timedelta(days=365)).date()} .. {last.date()})"
        )


def causes(snaps: pd.DataFrame, cfg: EffectsConfig) -> pd.DataFrame:
    """The problems a play can address, as the signals show them at T (bool columns)."""

    def col(name: str) -> pd.Series:
        return snaps[name] if name in snaps else pd.Series(np.nan, index=snaps.index)

    return pd.DataFrame(
        {
            "relationship": (col("champion_lost_90d").fillna(0) > 0)
            | (col("sponsor_lost_90d").fillna(0) > 0),
            "support": (col("open_critical_tickets").fillna(0) > 0)
            | (col("critical_tickets_90d").fillna(0) > 1),
            "adoption": col("seat_utilisation").fillna(1.0) < cfg.adoption_threshold,
        },
        index=snaps.index,
    )


def rule_play(cause_flags: pd.DataFrame) -> pd.Series:
    """The rule play per row: that of the first cause present, else a value review."""
    out = pd.Series(RULE_PLAY[None], index=cause_flags.index, dtype=object)
    for cause in reversed(CAUSES):  # the first cause in order wins
        out[cause_flags[cause].to_numpy()] = RULE_PLAY[cause]
    return out


def effect_table(snaps: pd.DataFrame, actions: pd.DataFrame, cfg: EffectsConfig) -> pd.DataFrame:
    """Snapshots with the play started after each as-of date, history and causes.

    Adds ``treatment`` (the first play started in the window, or ``none``),
    ``pilot_propensity`` (its recorded chance where it was a randomised pilot play), ``holdout``
    (kept as randomised control in the window), ``plays_before_180d``, ``cause_*``,
    ``rule_play`` and ``outcome`` (NaN where the label's window reaches past the data: those
    rows are not estimated from, but the latest are the accounts a worklist is for).
    """
    df = snaps.reset_index(drop=True).copy()
    acts = actions.assign(date=pd.to_datetime(actions["date"]).astype("datetime64[s]"))
    started = acts[acts["action"] == "play_started"]
    q = pd.Series(np.nan, index=started.index)
    if "reason" in started and "propensity" in started:
        pilot = (started["reason"] == PILOT).to_numpy()
        q[pilot] = pd.to_numeric(started["propensity"], errors="coerce")[pilot]
    started = started[["account_id", "date", "play"]].assign(pilot_propensity=q)
    held = acts[(acts["action"] == "opened") & (acts["reason"] == "holdout")]
    window = pd.Timedelta(days=cfg.decision_window_days)
    keys = df[["account_id", "as_of"]].assign(row=np.arange(len(df)))
    as_of = keys["as_of"].astype("datetime64[s]")
    keys = keys.assign(as_of=as_of)

    def joined(events: pd.DataFrame) -> pd.DataFrame:
        return keys.merge(events, on="account_id")

    j = joined(started)
    after = j[(j["date"] > j["as_of"]) & (j["date"] <= j["as_of"] + window)]
    first = after.sort_values(["row", "date"]).drop_duplicates("row")
    df["treatment"] = NONE
    df.loc[first["row"].to_numpy(), "treatment"] = first["play"].to_numpy()
    df["pilot_propensity"] = np.nan  # the recorded chance of a randomised (pilot) play
    df.loc[first["row"].to_numpy(), "pilot_propensity"] = first["pilot_propensity"].to_numpy()
    before = j[(j["date"] <= j["as_of"]) & (j["date"] > j["as_of"] - pd.Timedelta(days=180))]
    df["plays_before_180d"] = np.bincount(before["row"], minlength=len(df))
    df[LAST_PLAY] = days_since_last_play(j, len(df))
    h = joined(held[["account_id", "date"]])
    h = h[(h["date"] > h["as_of"]) & (h["date"] <= h["as_of"] + window)]
    df["holdout"] = False
    df.loc[h["row"].unique(), "holdout"] = True
    flags = causes(df, cfg)
    for c in CAUSES:
        df[f"cause_{c}"] = flags[c].to_numpy()
    df["rule_play"] = rule_play(flags).to_numpy()
    df["outcome"] = df[cfg.outcome].astype(float)
    return df


def days_since_last_play(joined: pd.DataFrame, n: int) -> np.ndarray:
    """Days from each row's last play started on or before its as-of date (NaN: none).

    ``joined``: the rows' keys (``row``, ``as_of``) joined with the plays started (``date``).
    A play's effect ramps up and fades over months, and a team rests an account it just
    worked: when, not only how many, tells both the outcome and who gets the next play.
    """
    past = joined[joined["date"] <= joined["as_of"]]
    last = past.groupby("row")["date"].max()
    out = np.full(n, np.nan)
    gap = past.drop_duplicates("row").set_index("row")["as_of"].loc[last.index] - last
    out[last.index.to_numpy()] = gap.dt.days.to_numpy(float)
    return out


def policy_split(
    dates: np.ndarray, cfg: EffectsConfig, share: float = POLICY_SHARE
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first evaluated as-of date, and the end (exclusive) of the dates learned from.

    The first ``share`` of the dates are the earlier ones; the evaluation starts after them.
    A gap as long as the outcome's horizon lies between them: a row at T - 30 days and one
    at T share the churn event of the next months, so without it the worklist's models would
    have learned from the outcomes they are judged on.
    """
    cut = pd.Timestamp(dates[int(len(dates) * share)])
    return cut, cut - pd.Timedelta(days=horizon_days(cfg.outcome))
