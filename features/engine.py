"""The feature engine: ibis expressions, run in-process on DuckDB.

Every windowed feature reduces to running totals: each event log is aggregated per account
and day, cumulated over time, and read with an as-of join at T - a and T - b, so the sum
over (T - a, T - b] is ``total(T - b) - total(T - a)``. States at T ("open tickets",
"stakeholders in role") are totals of arrivals minus totals of departures, both dated, so a
resolution or departure after T is not counted. Nothing is read at a date after T, which is
what keeps every snapshot point in time. The same expressions run on any ibis backend.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from features.catalogue import FEATURE_NAMES
from features.config import FeatureConfig
from features.contract import Dataset
from features.schema import ENGAGEMENT_KINDS
from features.snapshots import CHANGE_ORDER

_K = ("account_id", "as_of")


def _days(n: int) -> ir.IntervalScalar:
    return ibis.interval(days=n)


def _running(t: ir.Table, date: ir.Column, **measures: ir.Value) -> ir.Table:
    """Per account and day: the day's totals, and running totals up to that day."""
    daily = t.group_by(account_id=t.account_id, date=date).aggregate(
        **{f"d_{m}": v for m, v in measures.items()}
    )
    w = ibis.window(group_by="account_id", order_by="date", rows=(None, 0))
    return daily.mutate(**{m: daily[f"d_{m}"].sum().over(w) for m in measures})


def _at(
    snaps: ir.Table,
    running: ir.Table,
    offsets: tuple[int, ...],
    measures: tuple[str, ...],
    keep: tuple[str, ...] = (),
) -> ir.Table:
    """Running totals at T - offset, as columns ``{measure}_{offset}`` (0 before any event).

    ``keep`` names daily columns read at T itself (offset 0), e.g. the last event's date.
    """
    look = ibis.union(
        *[
            snaps.mutate(off=ibis.literal(o, type="int32"), key=snaps.as_of - _days(o))
            for o in offsets
        ]
    )
    j = look.asof_join(running, on=look.key >= running.date, predicates="account_id")
    aggs = {f"{m}_{o}": j[m].fill_null(0).max(where=j.off == o) for m in measures for o in offsets}
    aggs.update({k: j[k].max(where=j.off == 0) for k in keep})
    return j.group_by(list(_K)).aggregate(**aggs)


def _win(t: ir.Table, m: str, a: int, b: int = 0) -> ir.Value:
    """Sum of measure m over (T - a, T - b]."""
    return (t[f"{m}_{b}"] - t[f"{m}_{a}"]).cast("float64")


def _ratio(num: ir.Value, den: ir.Value) -> ir.Value:
    return ibis.ifelse(den == 0, ibis.null(), num / den).cast("float64")


def _trend(cur: ir.Value, prev: ir.Value) -> ir.Value:
    return _ratio(cur, prev) - 1.0


def _flag(cond: ir.BooleanValue, valid: ir.Value) -> ir.Value:
    return ibis.ifelse(valid.isnull(), ibis.null(), cond.cast("float64")).cast("float64")


USAGE_OFFSETS = (0, 30, 60, 90, 180)


def lookup_calendar(
    as_of: pd.Series, offsets: tuple[int, ...], first: pd.Timestamp
) -> pd.DataFrame:
    """Map each day to the first lookup date (some T - offset) on or after it.

    Totals are only ever read at those lookup dates, so events can be summed per
    (account, bucket) before the running totals: exact, and far fewer rows than per day.
    Days after the last lookup date are never read and map to nothing.
    """
    keys = np.unique(
        np.concatenate(
            [(pd.DatetimeIndex(as_of.unique()) - pd.Timedelta(days=o)).to_numpy() for o in offsets]
        )
    )
    days = pd.date_range(min(pd.Timestamp(first), pd.Timestamp(keys[0])), keys[-1])
    bucket = keys[np.searchsorted(keys, days.to_numpy(), side="left")]
    return pd.DataFrame(
        {"day": days.astype("datetime64[s]"), "bucket": bucket.astype("datetime64[s]")}
    )


def _usage(con, snaps, cfg: FeatureConfig) -> ir.Table:
    u = con.table("usage")
    cal = con.table("usage_calendar")
    b = u.join(cal, u.date == cal.day)
    run = _running(
        b, b.bucket, users=b.active_users.sum(), events=b.events.sum(), days=b.date.nunique()
    )
    # The last active day on or before each bucket's end: a running max of dates.
    last_day = b.group_by(account_id=b.account_id, date=b.bucket).aggregate(d=b.date.max())
    w = ibis.window(group_by="account_id", order_by="date", rows=(None, 0))
    run = run.join(last_day, ["account_id", "date"]).mutate(last_use=lambda t: t.d.max().over(w))
    at = _at(snaps, run, USAGE_OFFSETS, ("users", "events", "days"), keep=("last_use",))
    # Distinct features in the last 30 days: each feature's last use on or before T (as-of
    # dates are lookup dates, so the last use per bucket is enough).
    per_feature = b.group_by(account_id=b.account_id, feature=b.feature, date=b.bucket).aggregate(
        last=b.date.max()
    )
    pairs = per_feature.select("account_id", "feature").distinct()
    look = snaps.join(pairs, "account_id")
    last = look.asof_join(
        per_feature, on=look.as_of >= per_feature.date, predicates=["account_id", "feature"]
    )
    used = last.group_by(list(_K)).aggregate(
        features_used_30d=(last["last"] > last.as_of - _days(30)).sum().cast("float64")
    )
    return at.left_join(used, list(_K)).select(
        *_K,
        active_user_days_30d=_win(at, "users", 30),
        events_30d=_win(at, "events", 30),
        active_days_30d=_win(at, "days", 30),
        features_used_30d=used.features_used_30d.fill_null(0.0),
        events_per_user_day_30d=_ratio(_win(at, "events", 30), _win(at, "users", 30)),
        usage_trend_30d=_trend(_win(at, "users", 30), _win(at, "users", 60, 30)),
        usage_trend_90d=_trend(_win(at, "users", 90), _win(at, "users", 180, 90)),
        events_trend_30d=_trend(_win(at, "events", 30), _win(at, "events", 60, 30)),
        events_trend_90d=_trend(_win(at, "events", 90), _win(at, "events", 180, 90)),
        days_since_last_activity=at.as_of.delta(at.last_use, unit="day").cast("float64"),
    )


def _seat_use(con, snaps) -> ir.Table:
    w = con.table("weekly_active_users")
    run = _running(w, w.week_start + _days(6), wau=w.active_users.sum())
    at = _at(snaps, run, (0, 28), ("wau",))
    return at.select(*_K, wau_28d=_win(at, "wau", 28))


def _engagement(con, snaps) -> ir.Table:
    e = con.table("engagement")
    measures = {k: (e.kind == k).cast("int64").sum() for k in ENGAGEMENT_KINDS}
    run = _running(e, e.date, total=e.count(), **measures)
    w = ibis.window(group_by="account_id", order_by="date", rows=(None, 0))
    run = run.mutate(last_qbr=ibis.ifelse(run.d_qbr > 0, run.date, ibis.null()).max().over(w))
    at = _at(snaps, run, (0, 30, 90, 180), ("total", *ENGAGEMENT_KINDS), keep=("last_qbr",))
    return at.select(
        *_K,
        **{f"{k}_{d}d": _win(at, k, d) for k in ENGAGEMENT_KINDS for d in (30, 90, 180)},
        engagement_trend_90d=_trend(_win(at, "total", 90), _win(at, "total", 180, 90)),
        days_since_last_qbr=at.as_of.delta(at.last_qbr, unit="day").cast("float64"),
    )


def _contacts(con, snaps) -> ir.Table:
    c = con.table("contacts")

    def roles(t):
        return {
            "all": t.count(),
            "sponsor": (t.role == "executive_sponsor").cast("int64").sum(),
            "champion": (t.role == "champion").cast("int64").sum(),
        }

    start = _at(snaps, _running(c, c.start_date, **roles(c)), (0,), ("all", "sponsor", "champion"))
    gone = c.filter(c.end_date.notnull())
    end = _at(
        snaps, _running(gone, gone.end_date, **roles(gone)), (0, 90), ("all", "sponsor", "champion")
    )
    j = start.join(end, list(_K))
    return j.select(
        *_K,
        active_stakeholders=(j.all_0 - j.all_0_right).cast("float64"),
        executive_sponsor_present=(j.sponsor_0 - j.sponsor_0_right > 0).cast("float64"),
        champion_present=(j.champion_0 - j.champion_0_right > 0).cast("float64"),
        stakeholders_lost_90d=_win(end, "all", 90),
        champion_lost_90d=_win(end, "champion", 90),
        sponsor_lost_90d=_win(end, "sponsor", 90),
    )


def _nps(con, snaps) -> ir.Table:
    n = con.table("nps_responses")
    run = _running(
        n,
        n.date,
        n=n.count(),
        score=n.score.sum(),
        promoters=(n.score >= 9).cast("int64").sum(),
        detractors=(n.score <= 6).cast("int64").sum(),
    )
    at = _at(snaps, run, (0, 180, 360), ("n", "promoters", "detractors"), keep=("d_score", "d_n"))

    def nps(a, b=0):
        return 100.0 * _ratio(
            _win(at, "promoters", a, b) - _win(at, "detractors", a, b), _win(at, "n", a, b)
        )

    return at.select(
        *_K,
        nps_latest=_ratio(at.d_score, at.d_n),
        nps_180d=nps(180),
        nps_trend_180d=nps(180) - nps(360, 180),
        nps_n_180d=_win(at, "n", 180),
    )


def _support(con, snaps) -> ir.Table:
    t = con.table("support_tickets")
    crit = (t.severity == "critical").cast("int64")
    esc = t.escalated.cast("int64")
    created = _at(
        snaps,
        _running(t, t.created_date, n=t.count(), crit=crit.sum(), esc=esc.sum()),
        (0, 30, 90, 180),
        ("n", "crit", "esc"),
    )
    r = t.filter(t.resolved_date.notnull())
    resolved = _at(
        snaps,
        _running(
            r,
            r.resolved_date,
            n=r.count(),
            crit=(r.severity == "critical").cast("int64").sum(),
            esc=r.escalated.cast("int64").sum(),
            days=r.resolved_date.delta(r.created_date, unit="day").sum(),
            csat=r.csat.sum(),
            csat_n=r.csat.notnull().cast("int64").sum(),
        ),
        (0, 90),
        ("n", "crit", "esc", "days", "csat", "csat_n"),
    )
    j = created.join(resolved, list(_K))
    baseline = _win(created, "n", 180, 30) * 30 / 150
    return j.select(
        *_K,
        tickets_30d=_win(created, "n", 30),
        tickets_90d=_win(created, "n", 90),
        ticket_spike_ratio=(_win(created, "n", 30) + 0.5) / (baseline + 0.5),
        critical_tickets_90d=_win(created, "crit", 90),
        open_tickets=(j.n_0 - j.n_0_right).cast("float64"),
        open_critical_tickets=(j.crit_0 - j.crit_0_right).cast("float64"),
        escalations_90d=_win(created, "esc", 90),
        open_escalations=(j.esc_0 - j.esc_0_right).cast("float64"),
        days_to_resolve_90d=_ratio(j.days_0 - j.days_90, j.n_0_right - j.n_90_right),
        csat_90d=_ratio(j.csat_0 - j.csat_90, j.csat_n_0 - j.csat_n_90),
    )


def _overdue(snaps: ir.Table, t: ir.Table, due: str, done: str) -> ir.Table:
    """Rows past ``due`` and not ``done`` at T, as ``overdue_0``.

    A row enters the day after it is due (unless done by then) and leaves the day it is
    done: arrivals minus departures, each counted on its own date.
    """
    late = t.filter(t[done].isnull() | (t[done] > t[due]))
    enter = late.select(
        "account_id", date=late[due] + _days(1), delta=ibis.literal(1, type="int64")
    )
    left = late.filter(late[done].notnull())
    leave = left.select("account_id", date=left[done], delta=ibis.literal(-1, type="int64"))
    moves = ibis.union(enter, leave)
    return _at(snaps, _running(moves, moves.date, overdue=moves.delta.sum()), (0,), ("overdue",))


def _invoices(con, snaps) -> ir.Table:
    i = con.table("invoices")
    paid = i.filter(i.paid_date.notnull())
    late = paid.paid_date.delta(paid.due_date, unit="day")
    pay = _at(
        snaps,
        # A payment is a fact from the later of its paid and due dates (rows are due-dated).
        _running(
            paid,
            ibis.greatest(paid.paid_date, paid.due_date),
            n=paid.count(),
            late=ibis.greatest(late, 0).sum(),
        ),
        (0, 180),
        ("n", "late"),
    )
    over = _overdue(snaps, i, "due_date", "paid_date")
    j = pay.join(over, list(_K))
    return j.select(
        *_K,
        payment_days_late_180d=_ratio(_win(pay, "late", 180), _win(pay, "n", 180)),
        overdue_invoices=j.overdue_0.cast("float64"),
    )


def _milestones(con, snaps) -> ir.Table:
    m = con.table("milestones")
    done = m.filter(m.achieved_date.notnull())
    achieved = _at(snaps, _running(done, done.achieved_date, n=done.count()), (0,), ("n",))
    on_time = (m.achieved_date.notnull() & (m.achieved_date <= m.target_date)).cast("int64")
    due = _at(
        snaps,
        _running(m, m.target_date, n=m.count(), on_time=on_time.sum()),
        (0,),
        ("n", "on_time"),
    )
    over = _overdue(snaps, m, "target_date", "achieved_date")
    j = achieved.join(due, list(_K)).join(over, list(_K))
    return j.select(
        *_K,
        milestones_achieved=j.n_0.cast("float64"),
        milestones_overdue=j.overdue_0.cast("float64"),
        milestones_on_time_rate=_ratio(j.on_time_0, j.n_0_right),
    )


def _subscription_state(con, snaps, offset: int, prefix: str) -> ir.Table:
    s = con.table("subscriptions")
    order = s.change_type.cases(*CHANGE_ORDER.items())
    w = ibis.window(group_by=["account_id", "start_date"], order_by=ibis.desc(order))
    s = s.mutate(_rank=ibis.row_number().over(w)).filter(lambda t: t._rank == 0)
    look = snaps.mutate(key=snaps.as_of - _days(offset))
    j = look.asof_join(s, on=look.key >= s.start_date, predicates="account_id")
    cols = ("arr", "seats", "plan_tier", "billing_term", "start_date", "end_date", "change_type")
    return j.select(*_K, **{f"{prefix}{c}": j[c] for c in cols})


def _commercial(con, snaps, cfg: FeatureConfig) -> ir.Table:
    s = con.table("subscriptions")
    counts = _at(
        snaps,
        _running(
            s,
            s.start_date,
            exp=(s.change_type == "expansion").cast("int64").sum(),
            con=(s.change_type == "contraction").cast("int64").sum(),
        ),
        (0, 365),
        ("exp", "con"),
    )
    now = _subscription_state(con, snaps, 0, "")
    ago = _subscription_state(con, snaps, 365, "ago_")
    prior = _subscription_state(con, snaps, 30, "prior_")
    acc = con.table("accounts").select("account_id", "segment", "customer_since")
    j = now.join(counts, list(_K)).join(ago, list(_K)).join(prior, list(_K)).join(acc, "account_id")
    T = j.as_of
    tenure = T.delta(j.customer_since, unit="day").cast("float64")
    # Monthly plans renew on the day of month their current row started.
    first = T.truncate("M")
    day = j.start_date.day()

    def anniversary(month_start):
        last = month_start + ibis.interval(months=1) - _days(1)
        return month_start + (ibis.least(day, last.day()) - 1).as_interval("D")

    this, nxt = anniversary(first), anniversary(first + ibis.interval(months=1))
    monthly = j.billing_term == "monthly"
    renewal_date = ibis.ifelse(monthly, ibis.ifelse(this > T, this, nxt), j.end_date + _days(1))
    to_renewal = renewal_date.delta(T, unit="day").cast("float64")
    prev_end = j.prior_end_date
    since = ibis.ifelse(prev_end < T, T.delta(prev_end + _days(1), unit="day"), ibis.null())
    renewal_stage = ibis.cases(
        (monthly, "monthly_rolling"),
        (to_renewal <= 30, "t_minus_30"),
        (to_renewal <= 60, "t_minus_60"),
        (to_renewal <= 90, "t_minus_90"),
        (to_renewal <= 120, "t_minus_120"),
        (to_renewal <= 180, "t_minus_180"),
        (since.fill_null(10**6) < 30, "t_plus_30"),
        else_="not_in_cycle",
    )
    lifecycle = ibis.cases(
        (~monthly & (to_renewal <= 90), "renewal"),
        (tenure < 90, "onboarding"),
        (tenure < 365, "adoption"),
        else_="value_realization",
    )
    arr_then = ibis.ifelse(j.ago_change_type == "churn", ibis.null(), j.ago_arr)
    tier_n = j.plan_tier.cases(*cfg.tier_features.items())
    return j.select(
        *_K,
        arr=j.arr.cast("float64"),
        seats=j.seats.cast("float64"),
        plan_tier=j.plan_tier,
        segment=j.segment,
        billing_term=j.billing_term,
        tenure_days=tenure,
        lifecycle_stage=lifecycle,
        days_to_renewal=to_renewal,
        renewal_stage=renewal_stage,
        expansions_365d=_win(counts, "exp", 365),
        contractions_365d=_win(counts, "con", 365),
        arr_change_365d=_trend(j.arr.cast("float64"), arr_then.cast("float64")),
        _tier_features=tier_n.cast("float64"),
    )


def compute_features(
    ds: Dataset,
    snaps: pd.DataFrame,
    cfg: FeatureConfig,
    threads: int | None = None,
    memory_limit: str = "4GB",
) -> pd.DataFrame:
    """All catalogue features for every (account_id, as_of) in ``snaps``.

    Args:
        ds: The validated raw tables.
        snaps: ``account_id`` and ``as_of`` of the snapshots to compute.
        cfg: Feature configuration (tier feature counts).
        threads: DuckDB threads (default: DuckDB's choice, all cores).
        memory_limit: DuckDB memory limit; past it DuckDB spills to temporary files.

    Returns:
        ``account_id``, ``as_of`` and every catalogue feature, in catalogue order, sorted by
        as_of then account_id.

    """
    # Bounded memory: DuckDB spills to disk past the limit instead of growing without end.
    settings = {"memory_limit": memory_limit, "preserve_insertion_order": False}
    con = ibis.duckdb.connect(**settings, **({"threads": threads} if threads else {}))
    for name, df in ds.tables.items():
        con.con.register(name, df)  # scanned in place: no copy of large tables
    s = con.create_table("snapshots", snaps[list(_K)])
    con.create_table(
        "usage_calendar", lookup_calendar(snaps["as_of"], USAGE_OFFSETS, ds["usage"]["date"].min())
    )
    parts = [
        _commercial(con, s, cfg),
        _usage(con, s, cfg),
        _engagement(con, s),
        _contacts(con, s),
        _nps(con, s),
        _support(con, s),
        _invoices(con, s),
    ]
    has_wau, has_ms = ds.has("weekly_active_users"), ds.has("milestones")
    if has_wau:
        parts.append(_seat_use(con, s))
    if has_ms:
        parts.append(_milestones(con, s))
    t = s
    for p in parts:
        t = t.left_join(p, list(_K)).drop(*(f"{k}_right" for k in _K))
    util = _ratio(t.wau_28d / 4, t.seats) if has_wau else ibis.null().cast("float64")
    trend = t.usage_trend_30d
    t = t.mutate(
        seat_utilisation=util,
        feature_adoption=ibis.least(t.features_used_30d / t._tier_features, 1.0),
        usage_decline_20=_flag(trend < -0.2, trend),
        usage_decline_50=_flag(trend < -0.5, trend),
        executive_engagement=t.executive_sponsor_present * (1.0 + (t.qbr_180d > 0).cast("float64")),
        nps_responses_per_contact_180d=_ratio(t.nps_n_180d, t.active_stakeholders),
        **(
            {}
            if has_ms
            else {
                c: ibis.null().cast("float64")
                for c in ("milestones_achieved", "milestones_overdue", "milestones_on_time_rate")
            }
        ),
    )
    out = t.select(*_K, *FEATURE_NAMES).order_by(["as_of", "account_id"]).to_pandas()
    con.disconnect()
    out["as_of"] = out["as_of"].astype("datetime64[s]")
    return out
