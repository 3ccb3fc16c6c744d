"""Reference implementation of the features in plain pandas, one as-of date at a time.

It is slow and obviously correct: every feature filters the raw rows known at T and
computes the value directly from the definitions in ``docs/features.md``. A test checks the
DuckDB/ibis engine against it value for value; the benchmark uses it as the baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import FEATURE_NAMES, TEXT_FEATURES, WINDOWS, product_feature_slugs
from features.config import FeatureConfig
from features.contract import Dataset
from features.plans import term_months
from features.schema import ENGAGEMENT_KINDS
from features.snapshots import subscription_state
from features.text import text_table

DAY = pd.Timedelta(days=1)


def _between(dates: pd.Series, T: pd.Timestamp, a: int, b: int = 0) -> pd.Series:
    """Rows dated in (T - a days, T - b days]."""
    return (dates > T - a * DAY) & (dates <= T - b * DAY)


def _count(df: pd.DataFrame, ids: pd.Index, mask: pd.Series | None = None) -> pd.Series:
    rows = df if mask is None else df[mask]
    return rows.groupby("account_id").size().reindex(ids, fill_value=0).astype(float)


def _sum(df, col, ids, mask=None) -> pd.Series:
    rows = df if mask is None else df[mask]
    return rows.groupby("account_id")[col].sum().astype(float).reindex(ids, fill_value=0.0)


def _mean(df, col, ids, mask=None) -> pd.Series:
    rows = df if mask is None else df[mask]
    return rows.groupby("account_id")[col].mean().astype(float).reindex(ids)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den != 0)).astype(float)


def _trend(cur: pd.Series, prev: pd.Series) -> pd.Series:
    return _ratio(cur, prev) - 1.0


def _flag(cond: pd.Series, valid: pd.Series) -> pd.Series:
    return cond.astype(float).where(valid.notna())


def product_features(ds: Dataset, last: pd.Timestamp, n: int) -> tuple[str, ...]:
    """The ``n`` product features with the most events on or before ``last``; ties by name."""
    u = ds["usage"][ds["usage"]["date"] <= last]
    totals = u.groupby("feature")["events"].sum()
    totals = totals[totals > 0].reset_index()
    ranked = totals.sort_values(["events", "feature"], ascending=[False, True], kind="stable")
    return tuple(str(v) for v in ranked["feature"].head(max(n, 0)))


def features_at(
    ds: Dataset,
    ids: pd.Index,
    T: pd.Timestamp,
    cfg: FeatureConfig,
    chosen: tuple[str, ...] = (),
    signals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """All catalogue features for accounts ``ids`` at as-of date ``T``.

    ``chosen``: the product features that get their own usage columns. ``signals``: each
    text's reading (:func:`features.engine.text_table`; None: no text).
    """
    f = pd.DataFrame(index=ids)
    acc = ds["accounts"].set_index("account_id").loc[ids]
    state = subscription_state(
        ds["subscriptions"], pd.Series(T, index=ids), pd.Series(ids, index=ids)
    ).set_index(ids)

    # ---- usage
    u = ds["usage"][ds["usage"]["date"] <= T]
    user_days = {w: _sum(u, "active_users", ids, _between(u["date"], T, w)) for w in WINDOWS}
    prev = {w: _sum(u, "active_users", ids, _between(u["date"], T, 2 * w, w)) for w in WINDOWS}
    events = {w: _sum(u, "events", ids, _between(u["date"], T, w)) for w in WINDOWS}
    events_prev = {w: _sum(u, "events", ids, _between(u["date"], T, 2 * w, w)) for w in WINDOWS}
    last30 = u[_between(u["date"], T, 30)]
    f["active_user_days_30d"] = user_days[30]
    f["events_30d"] = events[30]
    f["active_days_30d"] = (
        last30.groupby("account_id")["date"].nunique().reindex(ids, fill_value=0).astype(float)
    )
    f["features_used_30d"] = (
        last30.groupby("account_id")["feature"].nunique().reindex(ids, fill_value=0).astype(float)
    )
    tier_n = state["plan_tier"].map(cfg.tier_features).astype(float)
    f["feature_adoption"] = (f["features_used_30d"] / tier_n).clip(upper=1.0)
    f["events_per_user_day_30d"] = _ratio(events[30], user_days[30])
    f["usage_trend_30d"] = _trend(user_days[30], prev[30])
    f["usage_trend_90d"] = _trend(user_days[90], prev[90])
    f["events_trend_30d"] = _trend(events[30], events_prev[30])
    f["events_trend_90d"] = _trend(events[90], events_prev[90])
    f["usage_decline_20"] = _flag(f["usage_trend_30d"] < -0.2, f["usage_trend_30d"])
    f["usage_decline_50"] = _flag(f["usage_trend_30d"] < -0.5, f["usage_trend_30d"])
    f["days_since_last_activity"] = (
        (T - u.groupby("account_id")["date"].max()).dt.days.reindex(ids).astype(float)
    )
    seats = state["seats"].astype(float).where(state["seats"] > 0)
    # Product-feature use: per seat, or per account where no seats are sold (missing or 0).
    product_seats = seats.reindex(ids).fillna(1.0)
    product = {}
    for name, slug in product_feature_slugs(chosen).items():
        mine = u[u["feature"] == name]
        now = _sum(mine, "events", ids, _between(mine["date"], T, 30))
        before = _sum(mine, "events", ids, _between(mine["date"], T, 60, 30))
        product[f"usage_{slug}_per_seat_30d"] = now / product_seats
        product[f"usage_{slug}_per_seat_90d"] = (
            _sum(mine, "events", ids, _between(mine["date"], T, 90)) / product_seats
        )
        product[f"usage_{slug}_trend_30d"] = _trend(now, before)
    if ds.has("weekly_active_users"):
        wau = ds["weekly_active_users"]
        week_end = wau["week_start"] + 6 * DAY
        f["seat_utilisation"] = (
            _sum(wau, "active_users", ids, _between(week_end, T, 28)) / 4 / seats
        )
    else:
        f["seat_utilisation"] = np.nan

    # ---- engagement
    e = ds["engagement"][ds["engagement"]["date"] <= T]
    for kind in ENGAGEMENT_KINDS:
        for w in (30, 90, 180):
            f[f"{kind}_{w}d"] = _count(e, ids, (e["kind"] == kind) & _between(e["date"], T, w))
    f["engagement_trend_90d"] = _trend(
        _count(e, ids, _between(e["date"], T, 90)), _count(e, ids, _between(e["date"], T, 180, 90))
    )
    qbr = e[e["kind"] == "qbr"]
    f["days_since_last_qbr"] = (
        (T - qbr.groupby("account_id")["date"].max()).dt.days.reindex(ids).astype(float)
    )

    # ---- relationship
    c = ds["contacts"][ds["contacts"]["start_date"] <= T]
    active = c["end_date"].isna() | (c["end_date"] > T)
    f["active_stakeholders"] = _count(c, ids, active)
    f["executive_sponsor_present"] = (
        _count(c, ids, active & (c["role"] == "executive_sponsor")) > 0
    ).astype(float)
    f["champion_present"] = (_count(c, ids, active & (c["role"] == "champion")) > 0).astype(float)
    f["executive_engagement"] = f["executive_sponsor_present"] * (
        1.0 + (f["qbr_180d"] > 0).astype(float)
    )
    left = _between(c["end_date"], T, 90)
    f["stakeholders_lost_90d"] = _count(c, ids, left)
    f["champion_lost_90d"] = _count(c, ids, left & (c["role"] == "champion"))
    f["sponsor_lost_90d"] = _count(c, ids, left & (c["role"] == "executive_sponsor"))
    n = ds["nps_responses"][ds["nps_responses"]["date"] <= T]
    latest = n.groupby("account_id")["date"].transform("max")
    f["nps_latest"] = _mean(n, "score", ids, n["date"] == latest)

    def nps(mask: pd.Series) -> pd.Series:
        total = _count(n, ids, mask)
        promoters = _count(n, ids, mask & (n["score"] >= 9))
        detractors = _count(n, ids, mask & (n["score"] <= 6))
        return 100.0 * _ratio(promoters - detractors, total)

    f["nps_180d"] = nps(_between(n["date"], T, 180))
    f["nps_trend_180d"] = f["nps_180d"] - nps(_between(n["date"], T, 360, 180))
    f["nps_responses_per_contact_180d"] = _ratio(
        _count(n, ids, _between(n["date"], T, 180)), f["active_stakeholders"]
    )

    # ---- support (a resolution after T is unknown at T)
    t = ds["support_tickets"][ds["support_tickets"]["created_date"] <= T]
    is_open = t["resolved_date"].isna() | (t["resolved_date"] > T)
    crit = t["severity"] == "critical"
    esc = t["escalated"].astype(bool)
    f["tickets_30d"] = _count(t, ids, _between(t["created_date"], T, 30))
    f["tickets_90d"] = _count(t, ids, _between(t["created_date"], T, 90))
    baseline = _count(t, ids, _between(t["created_date"], T, 180, 30)) * 30 / 150
    f["ticket_spike_ratio"] = (f["tickets_30d"] + 0.5) / (baseline + 0.5)
    f["critical_tickets_90d"] = _count(t, ids, crit & _between(t["created_date"], T, 90))
    f["open_tickets"] = _count(t, ids, is_open)
    f["open_critical_tickets"] = _count(t, ids, is_open & crit)
    f["escalations_90d"] = _count(t, ids, esc & _between(t["created_date"], T, 90))
    f["open_escalations"] = _count(t, ids, esc & is_open)
    closed = t[_between(t["resolved_date"], T, 90)].assign(
        days=lambda d: (d["resolved_date"] - d["created_date"]).dt.days
    )
    f["days_to_resolve_90d"] = _mean(closed, "days", ids)
    f["csat_90d"] = _mean(closed, "csat", ids)

    # ---- commercial and lifecycle
    f["arr"] = state["arr"].astype(float)
    f["seats"] = state["seats"].astype(float)
    f["plan_tier"] = state["plan_tier"]
    f["segment"] = acc["segment"]
    f["billing_term"] = state["billing_term"]
    f["billing_term_months"] = term_months(state["billing_term"], state.get("billing_term_months"))
    f["tenure_days"] = (T - acc["customer_since"]).dt.days.astype(float)
    monthly = state["billing_term"] == "monthly"
    term_end = state["end_date"] + DAY
    # Monthly plans renew on the day of month their current row started.
    day = state["start_date"].dt.day
    this_month = _day_in_month(T.year, T.month, day)
    next_month = _day_in_month(
        (T + pd.offsets.MonthBegin(1)).year, (T + pd.offsets.MonthBegin(1)).month, day
    )
    next_monthly = this_month.where(this_month > T, next_month)
    f["days_to_renewal"] = (next_monthly.where(monthly, term_end) - T).dt.days.astype(float)
    subs = ds["subscriptions"]
    known = subs[(subs["start_date"] <= T)]
    # Renewed in the last 30 days: the term in effect 30 days ago has ended since.
    prior = subscription_state(
        subs, pd.Series(T - 30 * DAY, index=ids), pd.Series(ids, index=ids)
    ).set_index(ids)
    prev_end = prior["end_date"].where(prior["end_date"] < T)
    since_renewal = (T - (prev_end + DAY)).dt.days
    f["renewal_stage"] = _renewal_stage(f["days_to_renewal"], since_renewal, monthly)
    f["lifecycle_stage"] = np.select(
        [~monthly & (f["days_to_renewal"] <= 90), f["tenure_days"] < 90, f["tenure_days"] < 365],
        ["renewal", "onboarding", "adoption"],
        "value_realization",
    )
    inv = ds["invoices"]
    # A payment is a fact from the later of its paid and due dates (the row is due-dated).
    settled = inv[["paid_date", "due_date"]].max(axis=1).where(inv["paid_date"].notna())
    paid = inv[_between(settled, T, 180)].assign(
        late=lambda d: (d["paid_date"] - d["due_date"]).dt.days.clip(lower=0)
    )
    f["payment_days_late_180d"] = _mean(paid, "late", ids)
    f["overdue_invoices"] = _count(
        inv, ids, (inv["due_date"] < T) & (inv["paid_date"].isna() | (inv["paid_date"] > T))
    )
    known_inv = inv[inv["due_date"] <= T]
    for w in (30, 90, 365):
        f[f"spend_{w}d"] = _sum(known_inv, "amount", ids, _between(known_inv["due_date"], T, w))
    prev = _sum(known_inv, "amount", ids, _between(known_inv["due_date"], T, 180, 90))
    f["spend_trend_90d"] = _trend(f["spend_90d"], prev)
    by_account = known_inv.groupby("account_id")["due_date"]
    f["days_since_first_invoice"] = (T - by_account.min().reindex(ids)).dt.days.astype(float)
    f["days_since_last_invoice"] = (T - by_account.max().reindex(ids)).dt.days.astype(float)
    months = np.maximum(f["days_since_first_invoice"] / 30.4375, 1.0)
    f["invoices_per_month"] = (_count(known_inv, ids) / months).where(months.notna())
    f["expansions_365d"] = _count(
        known, ids, (known["change_type"] == "expansion") & _between(known["start_date"], T, 365)
    )
    f["contractions_365d"] = _count(
        known, ids, (known["change_type"] == "contraction") & _between(known["start_date"], T, 365)
    )
    year_ago = subscription_state(
        subs, pd.Series(T - 365 * DAY, index=ids), pd.Series(ids, index=ids)
    ).set_index(ids)
    arr_then = year_ago["arr"].astype(float)
    f["arr_change_365d"] = _trend(f["arr"], arr_then.where(year_ago["change_type"] != "churn"))
    if ds.has("milestones"):
        m = ds["milestones"][ds["milestones"]["created_date"] <= T]
        achieved = m["achieved_date"].notna() & (m["achieved_date"] <= T)
        due = m["target_date"] <= T
        f["milestones_achieved"] = _count(m, ids, achieved)
        f["milestones_overdue"] = _count(m, ids, (m["target_date"] < T) & ~achieved)
        f["milestones_on_time_rate"] = _ratio(
            _count(m, ids, due & achieved & (m["achieved_date"] <= m["target_date"])),
            _count(m, ids, due),
        )
    else:
        f["milestones_achieved"] = f["milestones_overdue"] = f["milestones_on_time_rate"] = np.nan
    _text_features(f, ids, T, signals)
    return pd.concat([f[list(FEATURE_NAMES)], pd.DataFrame(product, index=ids)], axis=1)


def _text_features(f: pd.DataFrame, ids: pd.Index, T: pd.Timestamp, sig: pd.DataFrame | None):
    """The text features from each text's reading (missing without text)."""
    if sig is None:
        f[list(TEXT_FEATURES)] = np.nan
        return
    sig = sig[sig["date"] <= T]
    ticket = sig["kind"] == "ticket"

    def n(mask: pd.Series, a: int, b: int = 0) -> pd.Series:
        return _count(sig, ids, mask & _between(sig["date"], T, a, b))

    tk_neg, tk_read = ticket & sig["negative"], ticket & sig["read"]
    for w in WINDOWS:
        f[f"negative_ticket_share_{w}d"] = _ratio(n(tk_neg, w), n(tk_read, w))
    prev = _ratio(n(tk_neg, 180, 90), n(tk_read, 180, 90))
    f["negative_ticket_trend_90d"] = f["negative_ticket_share_90d"] - prev
    f["positive_ticket_share_90d"] = _ratio(n(ticket & sig["positive"], 90), n(tk_read, 90))
    f["negative_tickets_30d"] = n(tk_neg, 30)
    f["read_tickets_30d"] = n(tk_read, 30)

    def topics(mask: pd.Series) -> pd.Series:
        rows = sig[mask]
        got = rows.groupby("account_id")["topics"].agg(np.bitwise_or.reduce)
        return got.reindex(ids).fillna(0).astype(float)

    f["negative_topics_30d"] = topics(tk_neg & _between(sig["date"], T, 30))
    mentioned = topics(_between(sig["date"], T, 90))
    f["topics_mentioned_90d"] = mentioned.map(lambda m: float(int(m).bit_count()))
    f["competitor_mentions_90d"] = n(sig["competitor"], 90)
    f["pricing_mentions_90d"] = n(sig["pricing"], 90)
    f["negative_comment_share_180d"] = _ratio(
        n(~ticket & sig["negative"], 180), n(~ticket & sig["read"], 180)
    )


def _day_in_month(year: int, month: int, day: pd.Series) -> pd.Series:
    """Date with the given day in (year, month), clamped to the month's last day."""
    first = pd.Timestamp(year=year, month=month, day=1)
    last_day = (first + pd.offsets.MonthEnd(0)).day
    return first + pd.to_timedelta(day.clip(upper=last_day) - 1, unit="D")


def _renewal_stage(days_to: pd.Series, since: pd.Series, monthly: pd.Series) -> pd.Series:
    stage = np.select(
        [
            monthly,
            days_to <= 30,
            days_to <= 60,
            days_to <= 90,
            days_to <= 120,
            days_to <= 180,
            since.fillna(10**6) < 30,
        ],
        [
            "monthly_rolling",
            "t_minus_30",
            "t_minus_60",
            "t_minus_90",
            "t_minus_120",
            "t_minus_180",
            "t_plus_30",
        ],
        "not_in_cycle",
    )
    return pd.Series(stage, index=days_to.index)


def reference_features(ds: Dataset, snaps: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """Features for every (account_id, as_of) in ``snaps``, one date at a time.

    The product features with columns are ``cfg.product_features``, else the most used up to
    the last as-of date (:func:`product_features`).
    """
    chosen = cfg.product_features
    if chosen is None:
        last = pd.Timestamp(snaps["as_of"].max())
        chosen = product_features(ds, last, cfg.product_feature_columns)
    parts = []
    signals = text_table(ds, cfg.text_features, cfg.text)
    for T, group in snaps.groupby("as_of", sort=True):
        ids = pd.Index(group["account_id"], name="account_id")
        part = features_at(ds, ids, pd.Timestamp(T), cfg, tuple(chosen), signals).reset_index()
        part.insert(1, "as_of", T)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
