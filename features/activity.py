"""Churn and expansion from activity alone, for accounts without contract rows.

A product-led or consumption business has accounts and an activity log, no contracts. With
``activity_churn_days: N`` in the features config (``radar features --activity-churn-days N``),
an account with no ``subscriptions`` row is read from its activity:

- it is a customer at T from ``customer_since`` on, unless its last N days up to T, (T - N, T],
  passed without any activity (a new account is given N days to start);
- it **churns** within H days of T when N consecutive days inside (T, T + H] pass without any
  activity (so a head's horizon must be at least N days for it to have positives);
- it **expands** within H days of T when its spend (invoiced amount, by due date, for an
  account invoiced at all), else its activity (active user-days), in (T, T + H] is more than
  ``activity_expansion_rise`` above its own usual rate over the 180 days up to T (or the part
  of them it was a customer and the log covers), scaled to H days.

Point in time: the churn label reads only the activity in (T, T + H]; the expansion label
compares it with the account's level up to T, which is known at T; neither reads anything
after T + H, and a
label whose window reaches past the data's end is null. Accounts with contract rows keep their
contract labels. Large usage logs are read by DuckDB in place.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from features.catalogue import HORIZONS
from features.config import FeatureConfig
from features.contract import Dataset

_FAR = pd.Timestamp("2999-12-31")
_NEVER = pd.Timestamp("1900-01-01")
# Expansion compares the next H days with the account's own rate over this many days up to T.
BASELINE_DAYS = 180


def activity_accounts(ds: Dataset, cfg: FeatureConfig) -> pd.Index:
    """Accounts read from activity: none unless configured, else those without contract rows."""
    if cfg.activity_churn_days is None:
        return pd.Index([], dtype="str")
    accounts = pd.Index(ds["accounts"]["account_id"])
    if not ds.has("subscriptions"):
        return accounts
    return accounts[~accounts.isin(ds["subscriptions"]["account_id"])]


def _usage_sql(ds: Dataset, con: duckdb.DuckDBPyConnection) -> str:
    """A relation with the usage log's ``account_id``, ``date`` (DATE) and ``active_users``."""
    source = ds.file_table("usage")
    if source is not None:  # a large log: scanned from its file, never loaded into pandas
        return f"({source.select_sql('DATE')})"
    con.register("usage_frame", ds["usage"][["account_id", "date", "active_users"]])
    return "(SELECT account_id, CAST(date AS DATE) AS date, active_users FROM usage_frame)"


def quiet_spells(ds: Dataset, days: int) -> pd.DataFrame:
    """Per account, every run of at least ``days`` days without activity.

    Columns ``account_id``, ``after`` (the last active day before it, ``_NEVER`` when none is
    logged) and ``before`` (the next active day, ``_FAR`` when none yet). An account with no
    activity at all has one spell from ``_NEVER`` to ``_FAR``.
    """
    con = duckdb.connect()
    try:
        usage = _usage_sql(ds, con)
        sql = f"""
            WITH d AS (SELECT DISTINCT account_id, date FROM {usage}),
            g AS (
                SELECT account_id, date AS after,
                       LEAD(date) OVER (PARTITION BY account_id ORDER BY date) AS before
                FROM d
                UNION ALL
                SELECT account_id, NULL AS after, MIN(date) AS before FROM d GROUP BY account_id
            )
            SELECT account_id, after, before FROM g
            WHERE after IS NULL OR before IS NULL OR date_diff('day', after, before) - 1 >= {days}
        """
        spells = con.execute(sql).df()
    finally:
        con.close()
    spells["after"] = pd.to_datetime(spells["after"]).fillna(_NEVER)
    spells["before"] = pd.to_datetime(spells["before"]).fillna(_FAR)
    accounts = ds["accounts"]["account_id"]
    silent = accounts[~accounts.isin(spells["account_id"])]
    none = pd.DataFrame({"account_id": silent.to_numpy(), "after": _NEVER, "before": _FAR})
    out = pd.concat([spells, none], ignore_index=True)
    return out.astype({"after": "datetime64[s]", "before": "datetime64[s]"})


def lapsed(
    grid: pd.DataFrame, spells: pd.DataFrame, days: int, history_start: pd.Timestamp
) -> np.ndarray:
    """Whether each (account_id, as_of, customer_since) row had no activity in (T - N, T].

    Only days the log covers, from the account's ``customer_since`` on, count as quiet: an
    account is not lapsed before the log starts or before it has been a customer N days.
    """
    rows = grid[["account_id", "as_of", "customer_since"]].reset_index(drop=True)
    pairs = rows.reset_index().merge(spells, on="account_id")
    start = np.maximum(
        pairs["after"].to_numpy(),
        np.maximum(
            (pairs["customer_since"] - pd.Timedelta(days=1)).to_numpy(),
            np.datetime64(history_start - pd.Timedelta(days=1), "s"),
        ),
    )
    t = pairs["as_of"].to_numpy()
    quiet = (start <= t - np.timedelta64(days, "D")) & (pairs["before"].to_numpy() > t)
    out = np.zeros(len(rows), dtype=bool)
    out[pairs.loc[quiet, "index"].unique()] = True
    return out


def churn_labels(
    keys: pd.DataFrame, spells: pd.DataFrame, days: int, end: pd.Timestamp
) -> dict[str, pd.Series]:
    """``churn_<H>d``: ``days`` consecutive quiet days inside (T, T + H], per (account_id, as_of).

    Reads only the activity in (T, T + H]: a spell is cut at T and at T + H.
    """
    pairs = keys[["account_id", "as_of"]].reset_index().merge(spells, on="account_id")
    t = pairs["as_of"]
    out = {}
    for h in HORIZONS:
        lo = pairs["after"].where(pairs["after"] > t, t)
        stop = t + pd.Timedelta(days=h + 1)
        hi = pairs["before"].where(pairs["before"] < stop, stop)
        hit = pairs.loc[(hi - lo).dt.days - 1 >= days, "index"].unique()
        col = pd.Series(0.0, index=keys.index)
        col[hit] = 1.0
        col[keys["as_of"] + pd.Timedelta(days=h) > end] = np.nan
        out[f"churn_{h}d"] = col
    return out


def window_sums(ds: Dataset, keys: pd.DataFrame) -> pd.DataFrame:
    """Active user-days and invoiced amount before and after T, per row of ``keys``.

    Columns ``{users,spend}_history`` over the ``BASELINE_DAYS`` up to T, (T - 180, T], and
    ``{users,spend}_after_<H>`` over (T, T + H] (spend missing when ``invoices`` is absent),
    aligned with ``keys``.
    """
    con = duckdb.connect()
    try:
        usage = _usage_sql(ds, con)
        k = pd.DataFrame(
            {
                "row": np.arange(len(keys)),
                "account_id": keys["account_id"].to_numpy(),
                "t": keys["as_of"].to_numpy().astype("datetime64[s]"),
            }
        )
        con.register("keys_frame", k)
        parts = [f"SELECT account_id, date, active_users AS users, 0.0 AS spend FROM {usage}"]
        invoices = ds.has("invoices") and len(ds["invoices"]) > 0
        if invoices:
            inv = ds["invoices"][["account_id", "due_date", "amount"]]
            con.register("invoice_frame", inv)
            parts.append(
                "SELECT account_id, CAST(due_date AS DATE) AS date, 0 AS users, amount AS spend "
                "FROM invoice_frame"
            )
        sums = ", ".join(
            f"SUM(e.{what}) FILTER (WHERE e.date <= k.t) AS {what}_history, "
            + ", ".join(
                f"SUM(e.{what}) FILTER (WHERE e.date > k.t AND e.date <= k.t + INTERVAL {h} DAY) "
                f"AS {what}_after_{h}"
                for h in HORIZONS
            )
            for what in ("users", "spend")
        )
        sql = f"""
            WITH k AS (SELECT row, account_id, CAST(t AS DATE) AS t FROM keys_frame),
            e AS (
                SELECT account_id, date, SUM(users) AS users, SUM(spend) AS spend
                FROM ({" UNION ALL ".join(parts)}) GROUP BY account_id, date
            )
            SELECT k.row, {sums}
            FROM k JOIN e ON e.account_id = k.account_id
                AND e.date > k.t - INTERVAL {BASELINE_DAYS} DAY
                AND e.date <= k.t + INTERVAL {max(HORIZONS)} DAY
            GROUP BY k.row
        """
        got = con.execute(sql).df().set_index("row")
    finally:
        con.close()
    out = got.reindex(np.arange(len(keys))).astype("float64").fillna(0.0)
    if not invoices:
        out[[c for c in out.columns if c.startswith("spend_")]] = np.nan
    return out.reset_index(drop=True)


def expansion_labels(
    sums: pd.DataFrame, covered: np.ndarray, keys: pd.DataFrame, rise: float, end: pd.Timestamp
) -> dict[str, pd.Series]:
    """``expansion_<H>d``: spend (else activity) in (T, T + H] above (1 + ``rise``) x usual.

    Usual is the account's own rate over the ``covered`` days (at most ``BASELINE_DAYS``) up
    to T, scaled to H days: growth beyond the account's established level, not a bounce
    back from one quiet month.
    """
    out = {}
    days = np.maximum(covered, 1).astype("float64")
    spend_known = sums["spend_history"].notna().to_numpy()
    for h in HORIZONS:
        spend = sums[["spend_history", f"spend_after_{h}"]].fillna(0.0).to_numpy()
        users = sums[["users_history", f"users_after_{h}"]].to_numpy()
        # Spend where the account was invoiced before or after T, else activity.
        billed = spend_known & (spend.sum(axis=1) > 0)
        measure = np.where(billed[:, None], spend, users)
        up = measure[:, 1] > (1 + rise) * measure[:, 0] * h / days
        col = pd.Series(up.astype("float64"), index=keys.index)
        col[keys["as_of"] + pd.Timedelta(days=h) > end] = np.nan
        out[f"expansion_{h}d"] = col
    return out


def covered_days(ds: Dataset, keys: pd.DataFrame, history_start: pd.Timestamp) -> np.ndarray:
    """Days of the baseline window up to T the log covers and the account was a customer."""
    since = keys["account_id"].map(ds["accounts"].set_index("account_id")["customer_since"])
    t = keys["as_of"].to_numpy().astype("datetime64[s]")
    first = np.maximum(
        t - np.timedelta64(BASELINE_DAYS - 1, "D"),
        np.maximum(since.to_numpy().astype("datetime64[s]"), np.datetime64(history_start, "s")),
    )
    return ((t - first) / np.timedelta64(1, "D")).astype("int64") + 1


def activity_labels(
    ds: Dataset,
    keys: pd.DataFrame,
    end: pd.Timestamp,
    cfg: FeatureConfig,
    history_start: pd.Timestamp,
) -> dict[str, pd.Series]:
    """Churn and expansion labels of the snapshot rows ``keys`` from activity."""
    days = int(cfg.activity_churn_days or 0)
    spells = quiet_spells(ds, days)
    out = churn_labels(keys, spells, days, end)
    covered = covered_days(ds, keys, history_start)
    rise = cfg.activity_expansion_rise
    out |= expansion_labels(window_sums(ds, keys), covered, keys, rise, end)
    return out
