"""Per-account context for the snapshot store, computed from the raw tables once.

What a reader of a score needs beside the snapshot's features: who the account is (name,
owner, industry, region), when each per-account input first has data (so the inputs an
account lacks at a date follow from the store alone), and the typical expansion size.
"""

from __future__ import annotations

import pandas as pd

from features.contract import Dataset
from features.schema import TABLES
from features.store import ACCOUNT_INFO, CHECKED_INPUTS, FIRST_PREFIX

# An input with no date column counts as present from the start.
ALWAYS = pd.Timestamp("1900-01-01")


def first_dates(ds: Dataset, name: str) -> pd.Series:
    """Per account, the first date table ``name`` has a row for it."""
    date_col = TABLES[name].event_date
    source = ds.file_table(name)
    if source is not None and not source.local:  # read by Spark (a URI, a JDBC table)
        from pyspark.sql import functions as sf

        from features.backends import current_spark, spark_file_table

        session = current_spark()  # the session that validated it
        got = (
            spark_file_table(session, source)
            .groupBy("account_id")
            .agg(sf.min(date_col).alias("first"))
            .toPandas()
        )
        out = got.set_index("account_id")["first"]
        return pd.to_datetime(out).astype("datetime64[s]")
    if source is not None:  # a large log: ask DuckDB, never load it into pandas
        import duckdb

        sql = (
            f"SELECT account_id, MIN({date_col}) AS first FROM ({source.select_sql('DATE')}) "
            "GROUP BY account_id"
        )
        out = duckdb.connect().execute(sql).df().set_index("account_id")["first"]
        return pd.to_datetime(out).astype("datetime64[s]")
    table = ds[name]
    if not date_col:
        return pd.Series(ALWAYS, index=pd.Index(table["account_id"].unique()))
    return table.groupby("account_id")[date_col].min().astype("datetime64[s]")


def account_context(ds: Dataset) -> pd.DataFrame:
    """The store's context table, indexed by account id (see :mod:`features.store`)."""
    accounts = ds["accounts"]
    out = accounts[[c for c in ACCOUNT_INFO if c in accounts]].copy()
    out.index = pd.Index(accounts["account_id"], name="account_id")
    for name in CHECKED_INPUTS:
        if ds.has(name):
            out[f"{FIRST_PREFIX}{name}"] = first_dates(ds, name).reindex(out.index)
    return out


def expansion_uplift(subscriptions: pd.DataFrame, until: pd.Timestamp) -> float | None:
    """Median share of ARR that past expansions (started by ``until``) added, or None."""
    s = subscriptions[subscriptions["start_date"] <= until].sort_values(
        ["account_id", "start_date"]
    )
    before = s.groupby("account_id")["arr"].shift(1)
    ratio = (s["arr"] / before - 1)[(s["change_type"] == "expansion") & (before > 0)]
    return float(ratio.median()) if len(ratio) else None


def uplift_by_date(ds: Dataset, dates: pd.DatetimeIndex) -> dict[str, float | None]:
    """:func:`expansion_uplift` at each as-of date, keyed by ISO date."""
    subs = ds["subscriptions"] if ds.has("subscriptions") else None
    return {
        str(pd.Timestamp(d).date()): None if subs is None else expansion_uplift(subs, d)
        for d in dates
    }
