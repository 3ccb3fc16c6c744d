"""The feature engine: ibis expressions, run on DuckDB in-process or on Spark.

Every feature family is one join and one grouped pass. Windowed sums join the events with a
small window table (each as-of date T, each day in the longest window before it and its age
T - day), so all windows of a family ((T - 30, T], (T - 60, T - 30], ...) are filtered sums of
one aggregation. States at T (open tickets, people in role, the subscription in effect) join
the snapshots with the account's rows known at T, so a resolution or departure after T is not
counted. The dense usage log is first summed per (account, lookup bucket): the lookup dates
are window ends, so a bucket lies wholly inside or outside every window. Nothing is read at
a date after T, which is what keeps every snapshot point in time. The expressions are plain
ibis; where their tables come from and how they run is the backend's
(:mod:`features.backends`: DuckDB views over the raw files, queries side by side, one DuckDB
thread each; or Spark). Each family gives one row per snapshot, so the result is put
together by position rather than joined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from features.backends import Backend, make_backend
from features.catalogue import FEATURE_NAMES, product_feature_columns, product_feature_slugs
from features.config import FeatureConfig
from features.contract import Dataset
from features.plans import TERM_MONTHS
from features.schema import ENGAGEMENT_KINDS, TABLES, Kind
from features.snapshots import CHANGE_ORDER
from features.text import LOOK_BACK_DAYS, text_table

log = logging.getLogger(__name__)

# Inside the engine accounts are numbered (aid): joins and as-of joins on an integer key are
# several times faster than on the text id.
_K = ("aid", "as_of")
USAGE_OFFSETS = (0, 30, 60, 90, 180)
MAX_WINDOW = 180  # longest window read through the window table (usage, engagement)
# A bucket's active days are kept as one bit per day in a 64-bit mask (see _usage).
MAX_BUCKET_DAYS = 60


@ibis.udf.scalar.builtin(name="bit_count", signature=((dt.uint64,), dt.int64))
def _bit_count_unsigned(x: int) -> int:  # type: ignore[empty-body]
    """Number of set bits of an unsigned mask (DuckDB ``bit_count``)."""


@ibis.udf.scalar.builtin(name="bit_count", signature=((dt.int64,), dt.int64))
def _bit_count_signed(x: int) -> int:  # type: ignore[empty-body]
    """Number of set bits of a signed 64-bit mask (Spark ``bit_count``: two's complement)."""


@ibis.udf.agg.builtin(name="bit_or", signature=((dt.int64,), dt.int64))
def _bit_or_signed(x: int) -> int:  # type: ignore[empty-body]
    """Bitwise OR of the group's signed masks (Spark ``bit_or``; ibis has no rule for it)."""


def bit_or(mask: ir.IntegerColumn) -> ir.IntegerScalar:
    """Bitwise OR of a group's 64-bit masks of either engine's mask type."""
    if mask.type().is_unsigned_integer():
        return mask.bit_or()
    return _bit_or_signed(mask)


def bit_count(mask: ir.IntegerValue) -> ir.IntegerValue:
    """Number of set bits of a 64-bit mask of either engine's mask type."""
    if mask.type().is_unsigned_integer():
        return _bit_count_unsigned(mask)
    return _bit_count_signed(mask)


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


def _known(
    snaps: ir.Table,
    t: ir.Table,
    date: str,
    relevant: Callable[[ir.Table, ir.Table], ir.Value] | None = None,
) -> ir.Table:
    """Each snapshot joined with its account's rows dated on or before T.

    ``relevant(snaps, t)`` keeps only the rows that can still count at T (in a window, or
    still open): fewer rows to aggregate, the same result.
    """
    on = [snaps.aid == t.aid, t[date] <= snaps.as_of]
    return snaps.join(t, on if relevant is None else [*on, relevant(snaps, t)])


def _age(snaps: ir.Table, d: ir.DateValue) -> ir.IntegerValue:
    """Days from ``d`` to T (negative when ``d`` is after T)."""
    return snaps.as_of.delta(d, unit="day")


def _latest(
    con: ibis.BaseBackend, snaps: ir.Table, at: str, t: ir.Table, key: str, cols: tuple[str, ...]
) -> ir.Table:
    """``sid`` and ``cols`` of the row of ``t`` with the greatest ``key`` <= ``at``, per account.

    Null where the account has no such row; ``key`` is unique per account in ``t``. DuckDB
    has as-of joins; Spark SQL does not, so there the key is the running maximum over the
    account's rows and snapshots in key order (rows before snapshots on a tie), and the row
    is joined back on it: one sort per account, no snapshot x row product.
    """
    if con.name != "pyspark":
        j = snaps.asof_join(t, on=snaps[at] >= t[key], predicates="aid")
        return j.select("sid", *cols)
    typ = t[key].type()
    left = snaps.select("aid", "sid", _k=snaps[at], _v=ibis.null(typ), _side=1)
    right = t.select("aid", sid=ibis.null("int64"), _k=t[key], _v=t[key], _side=0)
    u = left.union(right)
    w = ibis.window(group_by="aid", order_by=["_k", "_side"], preceding=None, following=0)
    found = u.mutate(_found=u._v.max().over(w)).filter(u._side == 1).select("sid", "aid", "_found")
    rows = t.select("aid", _found=t[key], **{c: t[c] for c in cols})
    j = found.left_join(rows, ["aid", "_found"])
    return j.select("sid", *cols)


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


def _usage_words(backend: Backend, part: int, parts: int) -> ir.Table:
    """The one pass over the raw usage log: per account, lookup bucket and feature word.

    Product features are numbered, 64 to a 64-bit word: the distinct features used in a
    window are the set bits of the OR of its buckets' masks. Active days cannot be added up
    across rows either, so each row also keeps a bit per day of its bucket (buckets are at
    most MAX_BUCKET_DAYS long). The accounts are split into ``parts`` by their number, so
    that the parts of this, the largest query, run side by side.
    """
    con = backend.con
    raw = con.table("usage")
    u = _table(con, "usage")
    u = u.filter(u.aid % parts == part)
    # Numbered over the whole log, in name order: the same numbers in every part.
    names = raw.select("feature").distinct()
    feats = names.mutate(fid=ibis.row_number().over(order_by="feature"))
    cal = con.table("usage_calendar")
    b = u.join(cal, u.date == cal.day).join(feats, "feature")
    mask = backend.mask_type  # Spark has no unsigned types: a signed BIGINT, the same bits
    one = ibis.literal(1).cast(mask)
    return b.group_by("aid", "bucket", word=b.fid // 64).aggregate(
        users=b.active_users.sum().cast("int64"),
        events=b.events.sum().cast("int64"),
        last=b.date.max(),
        # Unsigned shift amounts: DuckDB makes UBIGINT << BIGINT a HUGEINT.
        days=bit_or(one << b.bucket.delta(b.date, unit="day").cast(mask)),
        features=bit_or(one << (b.fid % 64).cast(mask)),
    )


def _usage(con, snaps: ir.Table, win: ir.Table, com: ir.Table, words: ir.Table) -> ir.Table:
    """Usage features of the snapshots ``snaps`` of the accounts in ``part``.

    ``words`` is their :func:`_usage_words`.
    """
    per_word = w = words
    per_bucket = w.group_by("aid", "bucket").aggregate(
        users=w.users.sum().cast("int64"),
        events=w.events.sum().cast("int64"),
        last=w["last"].max(),
        days=bit_count(bit_or(w.days)),
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
    masks = fw.group_by(*_K, "word").aggregate(mask=bit_or(fw.features))
    used = masks.group_by(*_K).aggregate(features_used_30d=bit_count(masks.mask).sum())
    # The last active day is monotonic in the bucket: the latest bucket on or before T has it.
    last = _latest(con, snaps, "as_of", per_bucket, "bucket", ("last",))
    t = _per_snapshot(snaps, sums, zero=tuple(c for c in sums.columns if c not in _K))
    t = _per_snapshot(t, used, zero=("features_used_30d",))
    t = t.join(last, "sid").join(com.select("sid", "_tier_features"), "sid")

    def f64(c: str) -> ir.Value:
        return t[c].cast("float64")

    trend = _trend(f64("users_30"), f64("users_60_30"))
    return t.select(
        "sid",
        active_user_days_30d=f64("users_30"),
        events_30d=f64("events_30"),
        active_days_30d=f64("days_30"),
        features_used_30d=f64("features_used_30d"),
        # LEAST skips NULLs: a plan with no tier would read as full adoption, not unknown.
        feature_adoption=ibis.ifelse(
            t._tier_features.isnull(),
            ibis.null("float64"),
            ibis.least(f64("features_used_30d") / t._tier_features, 1.0),
        ),
        events_per_user_day_30d=_ratio(f64("events_30"), f64("users_30")),
        usage_trend_30d=trend,
        usage_decline_20=_flag(trend < -0.2, trend),
        usage_decline_50=_flag(trend < -0.5, trend),
        usage_trend_90d=_trend(f64("users_90"), f64("users_180_90")),
        events_trend_30d=_trend(f64("events_30"), f64("events_60_30")),
        events_trend_90d=_trend(f64("events_90"), f64("events_180_90")),
        days_since_last_activity=t.as_of.delta(t["last"], unit="day").cast("float64"),
    )


def choose_product_features(backend: Backend, last: pd.Timestamp, n: int) -> tuple[str, ...]:
    """The ``n`` product features with the most events on or before ``last``; ties by name.

    Runs on the backend the families run on (DuckDB, DuckDB on PostgreSQL, Spark), over the
    raw usage log it registered. Features with no events then get no columns.
    """
    if n <= 0:
        return ()
    u = backend.con.table("usage")
    u = u.filter(u.date.cast("date") <= ibis.date(pd.Timestamp(last).date()))
    totals = u.group_by("feature").aggregate(total=u.events.sum().cast("int64"))
    totals = totals.filter(totals.total > 0)
    # ``sid``: the rank, which the backend orders its results by.
    rank = ibis.row_number().over(order_by=[ibis.desc("total"), "feature"])
    ranked = totals.mutate(sid=rank.cast("int64"))
    got = backend.fetch("product_features", ranked.filter(ranked.sid < n)).result()
    return tuple(str(v) for v in got.column("feature").to_pylist())


def _product_usage(
    con, snaps: ir.Table, win: ir.Table, names: list[str], part: int, parts: int
) -> ir.Table:
    """Events of each chosen product feature per snapshot: (sid, feature, 30, 60-30, 90 days).

    Long, one row per snapshot and feature used in its last 90 days (the columns are put
    together by :func:`_product_columns`): 30 conditional sums over the windowed rows cost
    several times the rest of the engine. Events are summed per (account, lookup bucket,
    feature) first, as in :func:`_usage_words`; windows start and end at lookup dates, so the
    bucket sums are exact.
    """
    u = _part(_table(con, "usage"), part, parts)
    u = u.filter(u.feature.isin(names))
    cal = con.table("usage_calendar")
    b = u.join(cal, u.date == cal.day)
    per = b.group_by("aid", "bucket", "feature").aggregate(events=b.events.sum().cast("int64"))
    w = _windowed(per, per.bucket, win, 90)
    agg = w.group_by(*_K, "feature").aggregate(
        e30=w.events.sum(where=_in(w.age, 30)).fill_null(0).cast("float64"),
        e60_30=w.events.sum(where=_in(w.age, 60, 30)).fill_null(0).cast("float64"),
        e90=w.events.sum(where=_in(w.age, 90)).fill_null(0).cast("float64"),
    )
    j = snaps.join(agg, list(_K))
    return j.select("sid", "feature", "e30", "e60_30", "e90")


def _product_columns(
    long: pa.Table, slugs: dict[str, str], seats: pa.ChunkedArray, n: int
) -> dict[str, pa.Array]:
    """The product features' columns from :func:`_product_usage`'s rows (absent rows: 0).

    Per seat, or per account where no seats are sold (seats missing or 0: usage-only
    accounts, plans not sold by seat), so the accounts that most need activity signals keep
    them; the trend: missing where the 30 days before had no events (as ``usage_trend_30d``).
    """
    k = {name: i for i, name in enumerate(slugs)}
    sums = {c: np.zeros((n, len(k))) for c in ("e30", "e60_30", "e90")}
    sid = long.column("sid").to_numpy()
    col = np.array([k[v] for v in long.column("feature").to_pylist()], dtype=int)
    for c, out in sums.items():
        out[sid, col] = long.column(c).to_numpy(zero_copy_only=False)
    per = seats.to_numpy(zero_copy_only=False).astype("float64")
    per = np.where(per > 0, per, 1.0)[:, None]  # NaN > 0 is False: no seats, per account
    prev = sums["e60_30"]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = {
            "per_seat_30d": sums["e30"] / per,
            "per_seat_90d": sums["e90"] / per,
            "trend_30d": np.where(prev == 0, np.nan, sums["e30"] / prev - 1.0),
        }
    return {
        f"usage_{slug}_{what}": pa.array(values[:, i], mask=np.isnan(values[:, i]))
        for i, slug in enumerate(slugs.values())
        for what, values in cols.items()
    }


def _seat_use(con, snaps: ir.Table, win: ir.Table, com: ir.Table) -> ir.Table:
    w = _table(con, "weekly_active_users")
    # A week's row is known after the Sunday that ends it.
    w = w.mutate(week_end=(w.week_start + _days(6)).cast("date"))
    j = _windowed(w, w.week_end, win, 28)
    agg = j.group_by(*_K).aggregate(wau_28d=j.active_users.sum().cast("float64"))
    t = _per_snapshot(snaps, agg, zero=("wau_28d",)).join(com.select("sid", "seats"), "sid")
    # Weekly active users over the last four weeks, per week, per seat.
    return t.select("sid", seat_utilisation=_ratio(t.wau_28d / 4, t.seats))


def _part(t: ir.Table, part: int, parts: int) -> ir.Table:
    """The rows of the accounts in ``part`` of ``parts`` (split by account number)."""
    return t.filter(t.aid % parts == part)


def _engagement(
    con, snaps: ir.Table, win: ir.Table, rel: ir.Table, part: int, parts: int
) -> ir.Table:
    """Engagement features of the snapshots ``snaps`` of the accounts in ``part``."""
    e = _part(_table(con, "engagement"), part, parts)
    j = _windowed(e, e.date, win, 180)
    counts = {
        f"{k}_{d}d": j.count(where=(j.kind == k) & _in(j.age, d)).cast("float64")
        for k in ENGAGEMENT_KINDS
        for d in (30, 90, 180)
    }
    agg = j.group_by(*_K).aggregate(**counts)
    t = _per_snapshot(snaps, agg, zero=tuple(counts))
    # Kinds are a closed set: all touchpoints are the sum over kinds.
    n_90 = sum((t[f"{k}_90d"] for k in ENGAGEMENT_KINDS), ibis.literal(0.0))
    n_180 = sum((t[f"{k}_180d"] for k in ENGAGEMENT_KINDS), ibis.literal(0.0))
    qbr = e.filter(e.kind == "qbr").select("aid", qbr_date="date").distinct()
    t = t.join(_latest(con, snaps, "as_of", qbr, "qbr_date", ("qbr_date",)), "sid")
    t = t.join(rel.select("sid", "executive_sponsor_present"), "sid")
    return t.select(
        "sid",
        *counts,
        executive_engagement=t.executive_sponsor_present * (1.0 + (t.qbr_180d > 0).cast("float64")),
        engagement_trend_90d=_trend(n_90, n_180 - n_90),
        days_since_last_qbr=t.as_of.delta(t.qbr_date, unit="day").cast("float64"),
    )


def _contacts(con, snaps: ir.Table) -> ir.Table:
    c = _table(con, "contacts")
    # In role at T, or left within the last 90 days.
    j = _known(
        snaps, c, "start_date", lambda s, t: t.end_date.isnull() | (_age(s, t.end_date) < 90)
    )
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


def _nps(con, snaps: ir.Table, rel: ir.Table) -> ir.Table:
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

    t = t.join(rel.select("sid", "active_stakeholders"), "sid")
    return t.select(
        "sid",
        nps_latest=t.nps_latest.cast("float64"),
        nps_180d=nps(180, 0),
        nps_trend_180d=nps(180, 0) - nps(360, 180),
        nps_responses_per_contact_180d=_ratio(t._n_180_0.cast("float64"), t.active_stakeholders),
    )


def _support(con, snaps: ir.Table) -> ir.Table:
    t = _table(con, "support_tickets")

    def relevant(s: ir.Table, t: ir.Table) -> ir.Value:
        # Opened within 180 days, open at T, or resolved within 90 days.
        resolved_age = _age(s, t.resolved_date)
        return (_age(s, t.created_date) < 180) | t.resolved_date.isnull() | (resolved_age < 90)

    j = _known(snaps, t, "created_date", relevant)
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


def _text(con, snaps: ir.Table) -> ir.Table:
    """Text features: shares read as frustrated or pleased, topics, competitor mentions."""
    t = con.table("text_signals")
    t = t.mutate(date=t.date.cast("date"))
    j = _known(snaps, t, "date", lambda s, t: _age(s, t.date) < LOOK_BACK_DAYS)
    age = _age(j, j.date)
    ticket = j.kind == "ticket"

    def n(cond: ir.BooleanValue, a: int, b: int = 0) -> ir.Value:
        return j.count(where=cond & _in(age, a, b)).cast("float64")

    none = ibis.literal(0, "int64")
    agg = j.group_by("sid").aggregate(
        negative_tickets_30d=n(ticket & j.negative, 30),
        read_tickets_30d=n(ticket & j.read, 30),
        _neg_90=n(ticket & j.negative, 90),
        _read_90=n(ticket & j.read, 90),
        _pos_90=n(ticket & j.positive, 90),
        _neg_prev=n(ticket & j.negative, 180, 90),
        _read_prev=n(ticket & j.read, 180, 90),
        _neg_comments=n(~ticket & j.negative, 180),
        _read_comments=n(~ticket & j.read, 180),
        competitor_mentions_90d=n(j.competitor, 90),
        pricing_mentions_90d=n(j.pricing, 90),
        _neg_topics=bit_or(ibis.ifelse(ticket & j.negative & _in(age, 30), j.topics, none)),
        _topics=bit_or(ibis.ifelse(_in(age, 90), j.topics, none)),
    )
    zero = tuple(c for c in agg.columns if c != "sid")
    s = _per_snapshot(snaps, agg, zero=zero, on=("sid",))
    share_90 = _ratio(s._neg_90, s._read_90)
    return s.select(
        "sid",
        negative_ticket_share_30d=_ratio(s.negative_tickets_30d, s.read_tickets_30d),
        negative_ticket_share_90d=share_90,
        negative_ticket_trend_90d=share_90 - _ratio(s._neg_prev, s._read_prev),
        positive_ticket_share_90d=_ratio(s._pos_90, s._read_90),
        negative_tickets_30d=s.negative_tickets_30d,
        read_tickets_30d=s.read_tickets_30d,
        negative_topics_30d=s._neg_topics.cast("float64"),
        topics_mentioned_90d=bit_count(s._topics).cast("float64"),
        competitor_mentions_90d=s.competitor_mentions_90d,
        pricing_mentions_90d=s.pricing_mentions_90d,
        negative_comment_share_180d=_ratio(s._neg_comments, s._read_comments),
    )


def _invoices(con, snaps: ir.Table) -> ir.Table:
    i = _table(con, "invoices")
    # Unpaid, or settled after T - 180 (which covers paid after T).
    j = _known(
        snaps,
        i,
        "due_date",
        lambda s, t: t.paid_date.isnull() | (_age(s, ibis.greatest(t.paid_date, t.due_date)) < 180),
    )
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
    t = t.select("sid", "aid", "as_of", "payment_days_late_180d", "overdue_invoices")
    return _spend(con, t, i).select("sid", "payment_days_late_180d", "overdue_invoices", *SPEND)


SPEND = (
    "spend_30d",
    "spend_90d",
    "spend_365d",
    "spend_trend_90d",
    "days_since_first_invoice",
    "days_since_last_invoice",
    "invoices_per_month",
)
_DAYS_PER_MONTH = 30.4375


def _spend(con, snaps: ir.Table, i: ir.Table) -> ir.Table:
    """Spend and purchase frequency from the invoices known at T (a purchase log's RFM).

    Spend sums the amounts due in the last 30 / 90 / 365 days (0: nothing invoiced); the
    invoice count and the last invoice date come from a running count per account and
    due date, looked up as of T (no snapshot x invoice product over the whole history).
    """
    j = _known(snaps, i, "due_date", lambda s, t: _age(s, t.due_date) < 365)
    age = _age(j, j.due_date)
    amount = j.amount.cast("float64")
    windows = {"spend_30d": (30, 0), "spend_90d": (90, 0), "spend_365d": (365, 0)}
    windows["_spend_prev_90d"] = (180, 90)
    agg = j.group_by("sid").aggregate(
        **{
            name: amount.sum(where=_in(age, a, b)).fill_null(0.0)
            for name, (a, b) in windows.items()
        }
    )
    t = _per_snapshot(snaps, agg, zero=tuple(windows), on=("sid",))
    days = i.group_by(["aid", "due_date"]).aggregate(_n=i.count())
    running = ibis.window(group_by="aid", order_by="due_date", preceding=None, following=0)
    days = days.mutate(_count=days._n.sum().over(running))
    last = _latest(con, t, "as_of", days, "due_date", ("due_date", "_count"))
    t = t.left_join(last, "sid").drop("sid_right")
    first = i.group_by("aid").aggregate(_first=i.due_date.min())
    t = t.left_join(first, "aid").drop("aid_right")
    since_first = ibis.ifelse(t._first <= t.as_of, _age(t, t._first), ibis.null()).cast("float64")
    return t.mutate(
        spend_trend_90d=_trend(t.spend_90d, t._spend_prev_90d),
        days_since_first_invoice=since_first,
        days_since_last_invoice=_age(t, t.due_date).cast("float64"),
        invoices_per_month=(
            t._count.cast("float64") / ibis.greatest(since_first / _DAYS_PER_MONTH, 1.0)
        ),
    )


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


def _epoch_days(d: ir.DateValue) -> ir.IntegerValue:
    return d.delta(ibis.date(1970, 1, 1), unit="day")


def _commercial(con, snaps: ir.Table, cfg: FeatureConfig) -> ir.Table:
    s = _table(con, "subscriptions")
    # The row in effect at a date: latest start on or before it; among rows starting the
    # same day, the last in CHANGE_ORDER. One integer key orders both, so an as-of join on
    # it picks the row.
    order = s.change_type.cases(*CHANGE_ORDER.items())
    s = s.mutate(_key=_epoch_days(s.start_date) * 8 + order)

    def state(offset: int, prefix: str, *cols: str) -> ir.Table:
        look = snaps.select("sid", "aid", _at=(_epoch_days(snaps.as_of) - offset) * 8 + 7)
        j = _latest(con, look, "_at", s, "_key", cols)
        return j.select("sid", **{prefix + c: j[c] for c in cols})

    given = ("billing_term_months",) if "billing_term_months" in s.columns else ()
    now = state(
        0, "", "arr", "seats", "plan_tier", "billing_term", "start_date", "end_date", *given
    )
    prior = state(30, "prior_", "end_date")
    ago = state(365, "ago_", "arr", "change_type")
    changes = s.filter(s.change_type.isin(("expansion", "contraction")))
    c = _known(snaps, changes, "start_date", lambda s, t: _age(s, t.start_date) < 365)
    recent = _in(c.as_of.delta(c.start_date, unit="day"), 365)
    counts = c.group_by("sid").aggregate(
        _exp=c.count(where=(c.change_type == "expansion") & recent),
        _con=c.count(where=(c.change_type == "contraction") & recent),
    )
    counts = _per_snapshot(snaps, counts, zero=("_exp", "_con"), on=("sid",))
    agg = now.join(prior, "sid").join(ago, "sid").join(counts.select("sid", "_exp", "_con"), "sid")
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
    # The term's length in months (features.plans.term_months): given, else the named term's.
    named = j.billing_term.cases(*TERM_MONTHS.items()).cast("float64")
    months = j.billing_term_months.cast("float64").fill_null(named) if given else named
    tier_n = j.plan_tier.cases(*cfg.tier_features.items())
    return j.select(
        "sid",
        arr=j.arr.cast("float64"),
        seats=j.seats.cast("float64"),
        plan_tier=j.plan_tier,
        segment=j.segment,
        billing_term=j.billing_term,
        billing_term_months=months,
        tenure_days=tenure,
        lifecycle_stage=lifecycle,
        days_to_renewal=to_renewal,
        renewal_stage=renewal_stage,
        expansions_365d=j._exp.cast("float64"),
        contractions_365d=j._con.cast("float64"),
        arr_change_365d=_trend(j.arr.cast("float64"), arr_then.cast("float64")),
        _tier_features=tier_n.cast("float64"),
    )


def compute_features(
    ds: Dataset,
    snaps: pd.DataFrame,
    cfg: FeatureConfig,
    threads: int | None = None,
    memory_limit: str = "3GB",
) -> pd.DataFrame:
    """All catalogue features for every (account_id, as_of) in ``snaps`` (see :func:`compute`)."""
    return compute(ds, snaps, cfg, threads, memory_limit)[0]


def compute(
    ds: Dataset,
    snaps: pd.DataFrame,
    cfg: FeatureConfig,
    threads: int | None = None,
    memory_limit: str = "3GB",
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """All catalogue features for every (account_id, as_of) in ``snaps``, and the chosen.

    The product features that get columns are ``cfg.product_features``, else the
    ``cfg.product_feature_columns`` most used up to the last as-of date.

    Args:
        ds: The validated raw tables.
        snaps: ``account_id`` and ``as_of`` of the snapshots to compute.
        cfg: Feature configuration (tier feature counts; the engine and its settings).
        threads: DuckDB: queries run at once, one thread each (default: the usable cores).
        memory_limit: DuckDB memory limit; past it DuckDB spills to a temporary directory.

    Returns:
        ``account_id``, ``as_of`` and every catalogue feature, in catalogue order, then the
        product features' columns, sorted by as_of then account_id; and the product features.

    """
    backend = make_backend(
        cfg.engine,
        threads=threads,
        memory_limit=memory_limit,
        spark_master=cfg.spark_master,
        spark_conf=cfg.spark_conf,
    )
    try:
        backend.register_raw(ds)
        chosen = cfg.product_features
        if chosen is None:  # up to the last as-of date: nothing later picks the columns
            chosen = choose_product_features(
                backend, snaps["as_of"].max(), cfg.product_feature_columns
            )
        out = _compute(backend, ds, snaps, cfg, tuple(chosen))
    finally:
        backend.close()
    out["as_of"] = out["as_of"].astype("datetime64[s]")
    return out, tuple(chosen)


def _compute(
    backend: Backend, ds: Dataset, snaps: pd.DataFrame, cfg: FeatureConfig, chosen: tuple[str, ...]
) -> pd.DataFrame:
    con = backend.con
    accounts = ds["accounts"]["account_id"]
    backend.put(
        "account_ids",
        pd.DataFrame({"account_id": accounts, "aid": np.arange(len(accounts), dtype="int32")}),
    )
    keys = snaps[["account_id", "as_of"]].sort_values(["as_of", "account_id"], ignore_index=True)
    s = backend.put(
        "snapshots",
        pd.DataFrame(
            {
                "sid": np.arange(len(keys), dtype="int64"),  # the output row
                "aid": pd.Categorical(keys["account_id"], categories=accounts).codes,
                "as_of": keys["as_of"].astype("datetime64[s]"),
            }
        ).astype({"aid": "int32"}),
    )
    s = s.mutate(as_of=s.as_of.cast("date"))
    parts = backend.parts
    # The snapshots of each part of the accounts, as tables: DuckDB badly underestimates a
    # filter on aid % parts and then turns the as-of joins into nested loops.
    part_snaps = [backend.put(f"snapshots_{k}", _part(s, k, parts)) for k in range(parts)]
    first, _ = ds.date_range("usage", "date")
    backend.put("usage_calendar", lookup_calendar(snaps["as_of"], USAGE_OFFSETS, first))
    win = backend.put("windows", window_table(snaps["as_of"]))
    # Longest first; tables that other families read (the usage buckets, the subscription
    # state, people in role) before the families that read them.
    words = [
        backend.build(f"usage_words_{k}", _usage_words(backend, k, parts)) for k in range(parts)
    ]
    com_ready = backend.build("features_commercial", _commercial(con, s, cfg))
    rel_ready = backend.build("features_contacts", _contacts(con, s))
    queued: dict[str, list[Future[pa.Table]]] = {
        "support": [backend.fetch("support", _support(con, s))],
        "invoices": [backend.fetch("invoices", _invoices(con, s))],
    }
    if ds.has("milestones"):
        queued["milestones"] = [backend.fetch("milestones", _milestones(con, s))]
    span = (keys["as_of"].min(), keys["as_of"].max())
    signals = text_table(ds, cfg.text_features, cfg.text, span, cache=cfg.text_cache)
    if signals is not None:  # without text the text features stay missing
        aid = pd.Categorical(signals.pop("account_id"), categories=accounts).codes
        signals.insert(0, "aid", aid.astype("int32"))
        backend.put("text_signals", signals[signals["aid"] >= 0])
        queued["text"] = [backend.fetch("text", _text(con, s))]
    com_ready.result()
    rel_ready.result()
    # ibis reads a table's schema on this thread's connection; the queries run on cursors.
    com, rel = backend.table("features_commercial"), backend.table("features_contacts")
    # The two largest families also run in parts, by account.
    queued["engagement"] = [
        backend.fetch("engagement", _engagement(con, part_snaps[k], win, rel, k, parts))
        for k in range(parts)
    ]
    queued["nps"] = [backend.fetch("nps", _nps(con, s, rel))]
    queued["commercial"] = [backend.fetch("commercial", com.drop("_tier_features"))]
    queued["contacts"] = [backend.fetch("contacts", rel)]
    if ds.has("weekly_active_users"):
        queued["seat_use"] = [backend.fetch("seat_use", _seat_use(con, s, win, com))]
    slugs = product_feature_slugs(chosen)
    product = [
        backend.fetch(
            "product_usage", _product_usage(con, part_snaps[k], win, list(slugs), k, parts)
        )
        for k in (range(parts) if slugs else ())
    ]
    queued["usage"] = []
    for k, built in enumerate(words):
        built.result()
        per_word = backend.table(f"usage_words_{k}")
        queued["usage"].append(
            backend.fetch("usage", _usage(con, part_snaps[k], win, com, per_word))
        )
    # One row per snapshot in each family: they are put side by side by position, not joined.
    columns: dict[str, pa.ChunkedArray] = {}
    for name, futures in queued.items():
        got = pa.concat_tables([f.result() for f in futures])
        if len(futures) > 1:  # parts by account: back in snapshot order
            got = got.take(np.argsort(got.column("sid").to_numpy()))
        if not np.array_equal(got.column("sid").to_numpy(), np.arange(len(keys))):
            raise RuntimeError(f"the {name} features do not have one row per snapshot")
        columns.update((c, got.column(c)) for c in got.column_names if c != "sid")
    if slugs:
        long = pa.concat_tables([f.result() for f in product])
        columns.update(_product_columns(long, slugs, columns["seats"], len(keys)))
    missing = pa.nulls(len(keys), pa.float64())  # features of an absent optional table
    names = [*FEATURE_NAMES, *(f.name for f in product_feature_columns(chosen))]
    out = pa.table({c: columns.get(c, missing) for c in names}).to_pandas()
    out.insert(0, "account_id", keys["account_id"].to_numpy())
    out.insert(1, "as_of", keys["as_of"].to_numpy())
    return out
