"""As-of dates, the accounts active at each, and the labels (from contracts, or activity)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.activity import activity_accounts, activity_labels, lapsed, quiet_spells
from features.catalogue import HORIZONS, RENEWAL_LABEL, RENEWAL_WINDOW_DAYS
from features.config import FeatureConfig
from features.contract import Dataset

# Among rows starting the same day, the one listed last here is the state that day.
CHANGE_ORDER = {"new": 0, "renewal": 1, "contraction": 2, "expansion": 3, "churn": 4}
# Activity logs only cover the period of the export; the other tables carry full history.
ACTIVITY_LOGS = (
    "usage",
    "weekly_active_users",
    "engagement",
    "support_tickets",
    "nps_responses",
    "invoices",
)


def history_start(ds: Dataset, cfg: FeatureConfig) -> pd.Timestamp:
    """First day the activity logs cover (configured, or the first usage date)."""
    if cfg.history_start is not None:
        return pd.Timestamp(cfg.history_start)
    return ds.date_range("usage", "date")[0]


def data_end(ds: Dataset, cfg: FeatureConfig) -> pd.Timestamp:
    """Last day the data covers (configured, or the latest activity date)."""
    if cfg.data_end is not None:
        return pd.Timestamp(cfg.data_end)
    dates = [
        ds.date_range(t, c)[1]
        for t, c in (("usage", "date"), ("engagement", "date"), ("support_tickets", "created_date"))
        if ds.has(t)
    ]
    return max(d for d in dates if pd.notna(d))


def as_of_dates(ds: Dataset, cfg: FeatureConfig) -> pd.DatetimeIndex:
    """Snapshot dates: month ends or Sundays between ``start`` and ``end``."""
    end = pd.Timestamp(cfg.end) if cfg.end else data_end(ds, cfg)
    default_start = history_start(ds, cfg) + pd.Timedelta(days=90)
    start = pd.Timestamp(cfg.start) if cfg.start else default_start
    freq = "ME" if cfg.freq == "monthly" else "W-SUN"
    dates = pd.date_range(start, end, freq=freq)
    if len(dates) == 0:
        raise ValueError(f"no {cfg.freq} as-of date between {start.date()} and {end.date()}")
    return dates.astype("datetime64[s]")


def subscription_state(subs: pd.DataFrame, at: pd.Series, accounts: pd.Series) -> pd.DataFrame:
    """The subscriptions row in effect at ``at`` for each account (latest start on or before).

    Returns a frame aligned with ``accounts`` (NaN where no row has started yet).
    """
    s = subs.assign(_order=subs["change_type"].map(CHANGE_ORDER)).sort_values(
        ["start_date", "_order"]
    )
    left = pd.DataFrame(
        {
            "account_id": accounts.to_numpy(),
            "at": at.to_numpy().astype(s["start_date"].dtype),
            "_pos": np.arange(len(accounts)),
        }
    ).sort_values("at")
    merged = pd.merge_asof(
        left,
        s.drop(columns="_order"),
        left_on="at",
        right_on="start_date",
        by="account_id",
        direction="backward",
    )
    return merged.sort_values("_pos").reset_index(drop=True)


def active_snapshots(
    ds: Dataset, dates: pd.DatetimeIndex, cfg: FeatureConfig | None = None
) -> pd.DataFrame:
    """(account_id, as_of) for every account that is a customer at each date.

    A customer by its contracts (the subscription row in effect is not a churn), or, for an
    account without contract rows when ``cfg.activity_churn_days`` is set, by its activity
    (:mod:`features.activity`).
    """
    cfg = cfg or FeatureConfig()
    acc = ds["accounts"][["account_id", "customer_since"]]
    grid = acc.merge(pd.DataFrame({"as_of": dates}), how="cross")
    grid = grid[grid["customer_since"] <= grid["as_of"]].reset_index(drop=True)
    subs = ds["subscriptions"] if ds.has("subscriptions") else None
    if subs is None or subs.empty:
        keep = np.zeros(len(grid), dtype=bool)
    else:
        state = subscription_state(subs, grid["as_of"], grid["account_id"])
        change = state["change_type"]
        keep = change.notna().to_numpy() & (change != "churn").to_numpy()
    by_activity = grid["account_id"].isin(activity_accounts(ds, cfg)).to_numpy()
    if by_activity.any():
        days = int(cfg.activity_churn_days or 0)
        rows = grid[by_activity]
        spells = quiet_spells(ds, days)
        keep[by_activity] = ~lapsed(rows, spells, days, history_start(ds, cfg))
    out = grid.loc[keep, ["account_id", "as_of"]].reset_index(drop=True)
    return out.sort_values(["as_of", "account_id"], ignore_index=True)


def labels(
    ds: Dataset, snaps: pd.DataFrame, end: pd.Timestamp, cfg: FeatureConfig | None = None
) -> pd.DataFrame:
    """Churn and expansion within (T, T + H], and renewal at the next decision, from subscriptions.

    A label whose window reaches past ``end`` is null (unknown), never 0. The renewal label
    needs ``snaps["days_to_renewal"]`` (the feature); see :func:`renewal_label`. Accounts
    without contract rows, when ``cfg.activity_churn_days`` is set, get churn and expansion
    from their activity instead (:func:`features.activity.activity_labels`); they have no
    renewal date, so no renewal label.
    """
    cfg = cfg or FeatureConfig()
    subs = ds["subscriptions"]
    out = snaps[["account_id", "as_of"]].copy()
    churn_delta = None
    for kind, change in (("churn", "churn"), ("expansion", "expansion")):
        ev = subs.loc[subs["change_type"] == change, ["account_id", "start_date"]]
        pairs = snaps[["account_id", "as_of"]].reset_index().merge(ev, on="account_id")
        delta = (pairs["start_date"] - pairs["as_of"]).dt.days
        if kind == "churn":
            churn_delta = pd.DataFrame({"index": pairs["index"], "delta": delta})
        for h in HORIZONS:
            hit = pairs.loc[(delta > 0) & (delta <= h), "index"].unique()
            col = pd.Series(0.0, index=snaps.index)
            col[hit] = 1.0
            col[snaps["as_of"] + pd.Timedelta(days=h) > end] = np.nan
            out[f"{kind}_{h}d"] = col.astype("Float64")
    # The renewal label needs the feature; callers that only want the fixed windows (the
    # monitor's realised outcomes) pass the keys alone.
    out[RENEWAL_LABEL] = (
        renewal_label(snaps, churn_delta, end) if "days_to_renewal" in snaps else np.nan
    )
    by_activity = snaps["account_id"].isin(activity_accounts(ds, cfg)).to_numpy()
    if by_activity.any():
        keys = snaps.loc[by_activity, ["account_id", "as_of"]]
        start = history_start(ds, cfg)
        for name, col in activity_labels(ds, keys, end, cfg, start).items():
            out.loc[by_activity, name] = col.astype("Float64").to_numpy()
    return out


def renewal_label(snaps: pd.DataFrame, churn_delta: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """1 if the account is still a customer after its next renewal decision, 0 if it churned.

    The decision is at T + ``days_to_renewal`` (the day after the contract term ends; the next
    monthly renewal date for monthly plans): D. The label is 0 when a ``churn`` row starts in
    (T, D] (at the decision or before it), 1 otherwise; null when D is more than
    ``RENEWAL_WINDOW_DAYS`` after T, unknown (no term end), or after ``end`` (outcome not seen).

    Args:
        snaps: ``account_id``, ``as_of`` and ``days_to_renewal`` per snapshot.
        churn_delta: Per churn row of a snapshot's account: the snapshot's ``index`` and the
            days from T to the churn row's start (``delta``).
        end: Last day the data covers.

    """
    days = snaps["days_to_renewal"].astype("float64")
    hit = churn_delta["delta"].to_numpy() > 0
    hit &= churn_delta["delta"].to_numpy() <= days.reindex(churn_delta["index"]).to_numpy()
    col = pd.Series(1.0, index=snaps.index)
    col[churn_delta.loc[hit, "index"].unique()] = 0.0
    decision = snaps["as_of"] + pd.to_timedelta(days.fillna(0), unit="D")
    unknown = days.isna() | (days > RENEWAL_WINDOW_DAYS) | (days <= 0) | (decision > end)
    col[unknown.to_numpy()] = np.nan
    return col.astype("Float64")
