"""The feature engine: ibis expressions, run in-process on DuckDB.

Every feature family is one join and one grouped pass. Windowed sums join the events with a
small window table (each as-of date T, each day in the longest window before it and its age
T - day), so all windows of a family ((T - 30, T], (T - 60, T - 30], ...) are filtered sums of
one aggregation. States at T (open tickets, people in role, the subscription in effect) join
the snapshots with the account's rows known at T, so a resolution or departure after T is not
counted. The dense usage log is first summed per (account, lookup bucket): the lookup dates
are window ends, so a bucket lies wholly inside or outside every window. Nothing is read at
a date after T, which is what keeps every snapshot point in time. The expressions are plain
ibis; the tables come from DuckDB views over the raw files or registered frames.
"""

from __future__ import annotations

import logging
import tempfile

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from features.catalogue import FEATURE_NAMES
from features.config import FeatureConfig
from features.contract import Dataset
from features.schema import ENGAGEMENT_KINDS, TABLES, Kind
from features.snapshots import CHANGE_ORDER

log = logging.getLogger(__name__)

# Inside the engine accounts are numbered (aid): joins and as-of joins on an integer key are
# several times faster than on the text id.
_K = ("aid", "as_of")
USAGE_OFFSETS = (0, 30, 60, 90, 180)
MAX_WINDOW = 365  # longest window of any feature (subscription changes over 365 days)
# A bucket's active days are kept as one bit per day in a 64-bit mask (see _usage).
MAX_BUCKET_DAYS = 60


@ibis.udf.scalar.builtin(signature=((dt.int64,), dt.int64))
def bit_count(x: int) -> int:  # type: ignore[empty-body]
    """Number of set bits (DuckDB and Spark ``bit_count``)."""


def _days(n: int) -> ir.IntervalScalar:
    return ibis.interval(days=n)


def _ratio(num: ir.Value, den: ir.Value) -> ir.Value:
    return ibis.ifelse(den == 0, ibis.null(), num / den).cast("float64")


def _trend(cur: ir.Value, prev: ir.Value) -> ir.Value:
    return _ratio(cur, prev) - 1.0


def _flag(cond: ir.BooleanValue, valid: ir.Value) -> ir.Value:
    return ibis.ifelse(valid.isnull(), ibis.null(), cond.cast("float64")).cast("float64")


def _in(age: ir.IntegerValue, a: int, b: int = 0) -> ir.BooleanValue:
    """Whether a day aged ``age`` days at T lies in (T - a, T - b]."""
    return (age >= b) & (age < a)


def lookup_calendar(
    as_of: pd.Series, offsets: tuple[int, ...], first: pd.Timestamp
) -> pd.DataFrame:
    """Map each day to the first lookup date (some T - offset) on or after it.

    Every window of the usage features starts and ends at lookup dates, so events can be
    summed per (account, bucket) first: exact, and far fewer rows than per day. Extra lookup
    dates keep every bucket at most ``MAX_BUCKET_DAYS`` long. Days after the last lookup date
    are never read and map to nothing.
    """
    ends = np.concatenate(
        [(pd.DatetimeIndex(as_of.unique()) - pd.Timedelta(days=o)).to_numpy() for o in offsets]
    )
    start = min(pd.Timestamp(first), pd.Timestamp(ends.min()))
    grid = pd.date_range(start, ends.max(), freq=f"{MAX_BUCKET_DAYS}D").to_numpy()
    keys = np.unique(np.concatenate([ends, grid]).astype("datetime64[ns]"))
    days = pd.date_range(start, keys[-1])
    bucket = keys[np.searchsorted(keys, days.to_numpy(), side="left")]
    return pd.DataFrame({"day": days.date, "bucket": pd.DatetimeIndex(bucket).date})


def window_table(as_of: pd.Series, horizon: int = MAX_WINDOW) -> pd.DataFrame:
    """(day, as_of, age) for every as-of date T and every day in (T - horizon, T]."""
    dates = pd.DatetimeIndex(np.unique(as_of.to_numpy()))
    age = np.arange(horizon)
    t = np.repeat(dates.to_numpy(), horizon)
    ages = np.tile(age, len(dates))
    day = t - ages.astype("timedelta64[D]")
    return pd.DataFrame(
        {
            "day": pd.DatetimeIndex(day).date,
            "as_of": pd.DatetimeIndex(t).date,
            "age": ages.astype("int32"),
        }
    )


def _table(con, name: str) -> ir.Table:
    """Raw table ``name`` keyed by ``aid``, dates as DATE (registered frames hold timestamps)."""
    t = con.table(name)
    dates = [c.name for c in TABLES[name].columns if c.kind is Kind.DATE and c.name in t.columns]
    t = t.mutate(**{c: t[c].cast("date") for c in dates})
    ids = con.table("account_ids")
    return t.join(ids, t.account_id == ids.account_id).drop("account_id")


def _known(snaps: ir.Table, t: ir.Table, date: str) -> ir.Table:
    """Each snapshot joined with its account's rows dated on or before T."""
    return snaps.join(t, [snaps.aid == t.aid, t[date] <= snaps.as_of])


def _windowed(t: ir.Table, date: ir.DateValue, win: ir.Table, horizon: int) -> ir.Table:
    """Rows of ``t`` paired with each as-of date T whose last ``horizon`` days hold them."""
    w = win.filter(win.age < horizon)
    return t.join(w, date == w.day)


def _per_snapshot(
    snaps: ir.Table, agg: ir.Table, zero: tuple[str, ...] = (), on: tuple[str, ...] = _K
) -> ir.Table:
    """The snapshots with the columns of ``agg`` (keyed by ``on``).

    ``zero`` columns are 0 where no row of ``agg`` matched (nothing happened), the others null.
    """
    j = snaps.left_join(agg, list(on))
    return j.select(
        *snaps.columns,
        **{
            c: (j[c].fill_null(0) if c in zero else j[c])
            for c in agg.columns
            if c not in snaps.columns
        },
    )


def _usage(con, snaps: ir.Table, win: ir.Table) -> ir.Table:
    u = _table(con, "usage")
    # Product features numbered, 64 to a 64-bit word: the distinct features used in a window
    # are the set bits of the OR of the buckets' masks.
    names = u.select("feature").distinct()
    feats = con.create_table("usage_features", names.mutate(fid=ibis.row_number()), temp=True)
    cal = con.table("usage_calendar")
    b = u.join(cal, u.date == cal.day).join(feats, "feature")
    one = ibis.literal(1).cast("uint64")
    # The one pass over the raw log. Active days cannot be added up across rows either, so
    # each bucket also keeps a bit per day (buckets are at most MAX_BUCKET_DAYS long).
    per_word = con.create_table(
        "usage_words",
        b.group_by("aid", "bucket", word=b.fid // 64).aggregate(
            users=b.active_users.sum().cast("int64"),
            events=b.events.sum().cast("int64"),
            last=b.date.max(),
            days=(one << b.bucket.delta(b.date, unit="day")).bit_or(),
            features=(one << (b.fid % 64)).bit_or(),
        ),
        temp=True,
    )
    w = per_word
    per_bucket = con.create_table(
        "usage_buckets",
        w.group_by("aid", "bucket").aggregate(
            users=w.users.sum().cast("int64"),
            events=w.events.sum().cast("int64"),
            last=w["last"].max(),
            days=bit_count(w.days.bit_or()),
        ),
        temp=True,
    )
    w = _windowed(per_bucket, per_bucket.bucket, win, max(USAGE_OFFSETS))
    sums = w.group_by(*_K).aggregate(
        users_30=w.users.sum(where=_in(w.age, 30)),
        users_60_30=w.users.sum(where=_in(w.age, 60, 30)),
        users_90=w.users.sum(where=_in(w.age, 90)),
        users_180_90=w.users.sum(where=_in(w.age, 180, 90)),
        events_30=w.events.sum(where=_in(w.age, 30)),
        events_60_30=w.events.sum(where=_in(w.age, 60, 30)),
        events_90=w.events.sum(where=_in(w.age, 90)),
        events_180_90=w.events.sum(where=_in(w.age, 180, 90)),
        days_30=w.days.sum(where=_in(w.age, 30)),
    )
    fw = _windowed(per_word, per_word.bucket, win, 30)
    masks = fw.group_by(*_K, "word").aggregate(mask=fw.features.bit_or())
    used = masks.group_by(*_K).aggregate(features_used_30d=bit_count(masks.mask).sum())
    # The last active day is monotonic in the bucket: the latest bucket on or before T has it.
    last = snaps.asof_join(
        per_bucket, on=snaps.as_of >= per_bucket.bucket, predicates="aid"
    ).select("sid", "last")
    t = _per_snapshot(snaps, sums, zero=tuple(c for c in sums.columns if c not in _K))
    t = _per_snapshot(t, used, zero=("features_used_30d",))
    t = t.join(last, "sid")

    def f64(c: str) -> ir.Value:
        return t[c].cast("float64")

    return t.select(
        "sid",
        active_user_days_30d=f64("users_30"),
        events_30d=f64("events_30"),
        active_days_30d=f64("days_30"),
        features_used_30d=f64("features_used_30d"),
        events_per_user_day_30d=_ratio(f64("events_30"), f64("users_30")),
        usage_trend_30d=_trend(f64("users_30"), f64("users_60_30")),
        usage_trend_90d=_trend(f64("users_90"), f64("users_180_90")),
        events_trend_30d=_trend(f64("events_30"), f64("events_60_30")),
        events_trend_90d=_trend(f64("events_90"), f64("events_180_90")),
        days_since_last_activity=t.as_of.delta(t["last"], unit="day").cast("float64"),
    )


def _seat_use(con, snaps: ir.Table, win: ir.Table) -> ir.Table:
    w = _table(con, "weekly_active_users")
    # A week's row is known after the Sunday that ends it.
    w = w.mutate(week_end=(w.week_start + _days(6)).cast("date"))
    j = _windowed(w, w.week_end, win, 28)
    agg = j.group_by(*_K).aggregate(wau_28d=j.active_users.sum().cast("float64"))
    return _per_snapshot(snaps, agg, zero=("wau_28d",)).select("sid", "wau_28d")


def _engagement(con, snaps: ir.Table, win: ir.Table) -> ir.Table:
    e = _table(con, "engagement")
    j = _windowed(e, e.date, win, 180)
    counts = {
        f"{k}_{d}d": j.count(where=(j.kind == k) & _in(j.age, d)).cast("float64")
        for k in ENGAGEMENT_KINDS
        for d in (30, 90, 180)
    }
    agg = j.group_by(*_K).aggregate(
        **counts,
        _n_90=j.count(where=_in(j.age, 90)).cast("float64"),
        _n_180_90=j.count(where=_in(j.age, 180, 90)).cast("float64"),
    )
    t = _per_snapshot(snaps, agg, zero=tuple(c for c in agg.columns if c not in _K))
    qbr = e.filter(e.kind == "qbr").select("aid", qbr_date="date").distinct()
    last = snaps.asof_join(qbr, on=snaps.as_of >= qbr.qbr_date, predicates="aid")
    t = t.join(last.select("sid", "qbr_date"), "sid")
    return t.select(
        "sid",
        *counts,
        engagement_trend_90d=_trend(t._n_90, t._n_180_90),
        days_since_last_qbr=t.as_of.delta(t.qbr_date, unit="day").cast("float64"),
    )


def _contacts(con, snaps: ir.Table) -> ir.Table:
    c = _table(con, "contacts")
    j = _known(snaps, c, "start_date")
    active = j.end_date.isnull() | (j.end_date > j.as_of)
    left = j.end_date.notnull() & _in(j.as_of.delta(j.end_date, unit="day"), 90)
    sponsor, champion = j.role == "executive_sponsor", j.role == "champion"
    agg = j.group_by("sid").aggregate(
        active_stakeholders=j.count(where=active).cast("float64"),
        _sponsors=j.count(where=active & sponsor),
        _champions=j.count(where=active & champion),
        stakeholders_lost_90d=j.count(where=left).cast("float64"),
        champion_lost_90d=j.count(where=left & champion).cast("float64"),
        sponsor_lost_90d=j.count(where=left & sponsor).cast("float64"),
    )
    t = _per_snapshot(snaps, agg, zero=tuple(c for c in agg.columns if c != "sid"), on=("sid",))
    return t.select(
        "sid",
        "active_stakeholders",
        executive_sponsor_present=(t._sponsors > 0).cast("float64"),
        champion_present=(t._champions > 0).cast("float64"),
        stakeholders_lost_90d=t.stakeholders_lost_90d,
        champion_lost_90d=t.champion_lost_90d,
        sponsor_lost_90d=t.sponsor_lost_90d,
    )


def _nps(con, snaps: ir.Table) -> ir.Table:
    n = _table(con, "nps_responses")
    daily = n.group_by("aid", "date").aggregate(
        n=n.count(),
        score=n.score.sum(),
        promoters=n.count(where=n.score >= 9),
        detractors=n.count(where=n.score <= 6),
    )
    j = _known(snaps, daily, "date")
    age = j.as_of.delta(j.date, unit="day")
    agg = j.group_by("sid").aggregate(
        # The mean score of the latest day with answers.
        nps_latest=(j.score.cast("float64") / j.n).argmax(j.date),
        **{
            f"_{m}_{a}_{b}": j[m].sum(where=_in(age, a, b))
            for m in ("n", "promoters", "detractors")
            for a, b in ((180, 0), (360, 180))
        },
    )
    zero = tuple(c for c in agg.columns if c not in ("sid", "nps_latest"))
    t = _per_snapshot(snaps, agg, zero=zero, on=("sid",))

    def nps(a: int, b: int) -> ir.Value:
        num = (t[f"_promoters_{a}_{b}"] - t[f"_detractors_{a}_{b}"]).cast("float64")
        return 100.0 * _ratio(num, t[f"_n_{a}_{b}"].cast("float64"))

    return t.select(
        "sid",
        nps_latest=t.nps_latest.cast("float64"),
        nps_180d=nps(180, 0),
        nps_trend_180d=nps(180, 0) - nps(360, 180),
        nps_n_180d=t._n_180_0.cast("float64"),
    )


def _support(con, snaps: ir.Table) -> ir.Table:
    t = _table(con, "support_tickets")
    j = _known(snaps, t, "created_date")
    age = j.as_of.delta(j.created_date, unit="day")
    is_open = j.resolved_date.isnull() | (j.resolved_date > j.as_of)
    crit, esc = j.severity == "critical", j.escalated
    closed = j.resolved_date.notnull() & _in(j.as_of.delta(j.resolved_date, unit="day"), 90)
    agg = j.group_by("sid").aggregate(
        tickets_30d=j.count(where=_in(age, 30)).cast("float64"),
        tickets_90d=j.count(where=_in(age, 90)).cast("float64"),
        _baseline=j.count(where=_in(age, 180, 30)).cast("float64"),
        critical_tickets_90d=j.count(where=crit & _in(age, 90)).cast("float64"),
        open_tickets=j.count(where=is_open).cast("float64"),
        open_critical_tickets=j.count(where=is_open & crit).cast("float64"),
        escalations_90d=j.count(where=esc & _in(age, 90)).cast("float64"),
        open_escalations=j.count(where=esc & is_open).cast("float64"),
        days_to_resolve_90d=j.resolved_date.delta(j.created_date, unit="day")
        .mean(where=closed)
        .cast("float64"),
        csat_90d=j.csat.mean(where=closed).cast("float64"),
    )
    counts = tuple(c for c in agg.columns if c not in ("sid", "days_to_resolve_90d", "csat_90d"))
    s = _per_snapshot(snaps, agg, zero=counts, on=("sid",))
    baseline = s._baseline * 30 / 150
    return s.select(
        "sid",
        *(c for c in agg.columns if c not in ("sid", "_baseline")),
        ticket_spike_ratio=(s.tickets_30d + 0.5) / (baseline + 0.5),
    )


def _invoices(con, snaps: ir.Table) -> ir.Table:
    i = _table(con, "invoices")
    j = _known(snaps, i, "due_date")
    # A payment is a fact from the later of its paid and due dates (rows are due-dated).
    settled = ibis.greatest(j.paid_date, j.due_date)
    paid = j.paid_date.notnull() & _in(j.as_of.delta(settled, unit="day"), 180)
    late = ibis.greatest(j.paid_date.delta(j.due_date, unit="day"), 0)
    unpaid = j.paid_date.isnull() | (j.paid_date > j.as_of)
    agg = j.group_by("sid").aggregate(
        payment_days_late_180d=late.mean(where=paid).cast("float64"),
        overdue_invoices=j.count(where=(j.due_date < j.as_of) & unpaid).cast("float64"),
    )
    t = _per_snapshot(snaps, agg, zero=("overdue_invoices",), on=("sid",))
    return t.select("sid", "payment_days_late_180d", "overdue_invoices")


def _milestones(con, snaps: ir.Table) -> ir.Table:
    m = _table(con, "milestones")
    j = _known(snaps, m, "created_date")
    achieved = j.achieved_date.notnull() & (j.achieved_date <= j.as_of)
    due = j.target_date <= j.as_of
    agg = j.group_by("sid").aggregate(
        milestones_achieved=j.count(where=achieved).cast("float64"),
        milestones_overdue=j.count(where=(j.target_date < j.as_of) & ~achieved).cast("float64"),
        _on_time=j.count(where=due & achieved & (j.achieved_date <= j.target_date)),
        _due=j.count(where=due),
    )
    t = _per_snapshot(snaps, agg, zero=tuple(c for c in agg.columns if c != "sid"), on=("sid",))
    return t.select(
        "sid",
        "milestones_achieved",
        "milestones_overdue",
        milestones_on_time_rate=_ratio(t._on_time, t._due),
    )


def _commercial(con, snaps: ir.Table, cfg: FeatureConfig) -> ir.Table:
    s = _table(con, "subscriptions")
    # The row in effect at a date: latest start on or before it; among rows starting the
    # same day, the last in CHANGE_ORDER. One sort key orders both.
    order = s.change_type.cases(*CHANGE_ORDER.items())
    s = s.mutate(_key=s.start_date.delta(ibis.date(1970, 1, 1), unit="day") * 8 + order)
    j = _known(snaps, s, "start_date")
    age = j.as_of.delta(j.start_date, unit="day")
    now = ("arr", "seats", "plan_tier", "billing_term", "start_date", "end_date")
    agg = j.group_by("sid").aggregate(
        **{c: j[c].argmax(j._key) for c in now},
        prior_end_date=j.end_date.argmax(j._key, where=age >= 30),
        ago_arr=j.arr.argmax(j._key, where=age >= 365),
        ago_change_type=j.change_type.argmax(j._key, where=age >= 365),
        _exp=j.count(where=(j.change_type == "expansion") & _in(age, 365)),
        _con=j.count(where=(j.change_type == "contraction") & _in(age, 365)),
    )
    acc = _table(con, "accounts").select("aid", "segment", "customer_since")
    j = snaps.join(agg, "sid").join(acc, "aid")
    T = j.as_of
    tenure = T.delta(j.customer_since, unit="day").cast("float64")
    # Monthly plans renew on the day of month their current row started.
    first = T.truncate("M")
    day = j.start_date.day()

    def anniversary(month_start: ir.DateValue) -> ir.DateValue:
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
        "sid",
        arr=j.arr.cast("float64"),
        seats=j.seats.cast("float64"),
        plan_tier=j.plan_tier,
        segment=j.segment,
        billing_term=j.billing_term,
        tenure_days=tenure,
        lifecycle_stage=lifecycle,
        days_to_renewal=to_renewal,
        renewal_stage=renewal_stage,
        expansions_365d=j._exp.cast("float64"),
        contractions_365d=j._con.cast("float64"),
        arr_change_365d=_trend(j.arr.cast("float64"), arr_then.cast("float64")),
        _tier_features=tier_n.cast("float64"),
    )


def _register(con, ds: Dataset) -> None:
    """Make every raw table a DuckDB relation without copying it."""
    for name in ds.tables:
        source = ds.file_table(name)
        if source is not None:  # large log: a view over its file, validated on load
            con.con.execute(f'CREATE VIEW "{name}" AS {source.select_sql()}')
        else:
            con.con.register(name, ds[name])


def compute_features(
    ds: Dataset,
    snaps: pd.DataFrame,
    cfg: FeatureConfig,
    threads: int | None = None,
    memory_limit: str = "3GB",
) -> pd.DataFrame:
    """All catalogue features for every (account_id, as_of) in ``snaps``.

    Args:
        ds: The validated raw tables.
        snaps: ``account_id`` and ``as_of`` of the snapshots to compute.
        cfg: Feature configuration (tier feature counts).
        threads: DuckDB threads (default: DuckDB's choice, all cores).
        memory_limit: DuckDB memory limit; past it DuckDB spills to a temporary directory.

    Returns:
        ``account_id``, ``as_of`` and every catalogue feature, in catalogue order, sorted by
        as_of then account_id.

    """
    with tempfile.TemporaryDirectory(prefix="radar-duckdb-") as spill:
        # Bounded memory: DuckDB spills to disk past the limit instead of growing without end.
        settings = {
            "memory_limit": memory_limit,
            "temp_directory": spill,
            "preserve_insertion_order": False,
        }
        con = ibis.duckdb.connect(**settings, **({"threads": threads} if threads else {}))
        try:
            out = _compute(con, ds, snaps, cfg)
        finally:
            con.disconnect()
    out["as_of"] = out["as_of"].astype("datetime64[s]")
    return out


def _compute(con, ds: Dataset, snaps: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    _register(con, ds)
    accounts = ds["accounts"]["account_id"]
    con.create_table(
        "account_ids",
        pd.DataFrame({"account_id": accounts, "aid": np.arange(len(accounts), dtype="int32")}),
        temp=True,
    )
    keys = snaps[["account_id", "as_of"]].sort_values(["as_of", "account_id"], ignore_index=True)
    s = con.create_table(
        "snapshots",
        pd.DataFrame(
            {
                "sid": np.arange(len(keys), dtype="int64"),  # the output row
                "aid": pd.Categorical(keys["account_id"], categories=accounts).codes,
                "as_of": keys["as_of"].dt.date,
            }
        ).astype({"aid": "int32"}),
        temp=True,
    )
    s = s.mutate(as_of=s.as_of.cast("date"))
    first, _ = ds.date_range("usage", "date")
    con.create_table(
        "usage_calendar", lookup_calendar(snaps["as_of"], USAGE_OFFSETS, first), temp=True
    )
    win = con.create_table("windows", window_table(snaps["as_of"]), temp=True)
    families = {
        "commercial": lambda: _commercial(con, s, cfg),
        "usage": lambda: _usage(con, s, win),
        "engagement": lambda: _engagement(con, s, win),
        "contacts": lambda: _contacts(con, s),
        "nps": lambda: _nps(con, s),
        "support": lambda: _support(con, s),
        "invoices": lambda: _invoices(con, s),
    }
    has_wau, has_ms = ds.has("weekly_active_users"), ds.has("milestones")
    if has_wau:
        families["seat_use"] = lambda: _seat_use(con, s, win)
    if has_ms:
        families["milestones"] = lambda: _milestones(con, s)
    t = s.select("sid")
    for name, family in families.items():
        # One query per family: small plans DuckDB runs well, and a short compile.
        part = con.create_table(f"features_{name}", family(), temp=True)
        t = t.join(part, "sid")
        log.debug("computed the %s features", name)
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
    # Arrow to pandas directly: much faster than ibis's column-by-column conversion.
    got = t.select("sid", *FEATURE_NAMES).to_pyarrow()
    # Rows back in snapshot order: a take in Arrow is cheaper than sorting wide rows in SQL.
    got = got.take(np.argsort(got.column("sid").to_numpy())).drop_columns("sid")
    out = got.to_pandas()
    out.insert(0, "account_id", keys["account_id"].to_numpy())
    out.insert(1, "as_of", keys["as_of"].to_numpy())
    return out
