"""Batch scoring on Spark (local[2]): the records and the portfolio summary equal radar
score's for the same accounts.

One test, from the command line: a Spark session costs tens of seconds to start and warm.
The Spark run reads the raw data from a file:// URI (passed to Spark unchanged: tables read,
validated and featurised by Spark, as on a cluster file system).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from scoring.records import SUMMARY_SUFFIX
from scoring.spark_job import META_FILE, SUMMARY_FILE

pytestmark = pytest.mark.slow


def _read(path) -> pd.DataFrame:
    got = pads.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    return got.sort_values("account_id", ignore_index=True)


def _same(a, b) -> bool:
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        return bool(np.isclose(a, b, rtol=1e-12, atol=1e-12) or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple | np.ndarray) and isinstance(b, list | tuple | np.ndarray):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None or (not isinstance(a, str) and pd.isna(a)):
        return (a is None or pd.isna(a)) and (b is None or pd.isna(b))
    return a == b


def test_cli_score_on_spark_equals_radar_score(registry, small_dataset, tmp_path):
    """Features and scoring on Spark from the command line, against plain ``radar score``."""
    from tests.cli import radar

    common = ["--as-of", "latest", "--tracking-uri", registry]
    plain = radar(
        "score",
        *common,
        "--data",
        str(small_dataset),
        "--out",
        str(tmp_path / "plain.parquet"),
        cwd=tmp_path,
    )
    assert plain.returncode == 0, plain.stderr
    uri = ["--data", small_dataset.as_uri()]  # file:///...: read by Spark, not by this process
    spark = radar(
        "score", *common, *uri, "--engine", "spark", "--out", str(tmp_path / "spark"), cwd=tmp_path
    )
    assert spark.returncode == 0, spark.stderr
    said = " ".join(spark.stdout.split())  # rich wraps long lines
    assert "Parquet by segment" in said and "Traceback" not in spark.stderr
    expected = pd.read_parquet(tmp_path / "plain.parquet").sort_values(
        "account_id", ignore_index=True
    )
    records = _read(tmp_path / "spark")
    assert len(records) == len(expected) > 100
    assert sorted(records.columns) == sorted(expected.columns)
    assert (records["account_id"] == expected["account_id"]).all()
    meta = json.loads((tmp_path / "spark" / META_FILE).read_text())
    assert meta["rows"] == len(expected) and meta["model"] == "renewal-radar v1"
    # Some accounts are in the top decile: the second pass had rows to rescore.
    assert 0 < meta["rescored_with_cut"] == int(expected["churn_risk_top_decile"].sum())
    segments = sorted(p.name for p in (tmp_path / "spark").iterdir() if p.is_dir())
    assert segments == sorted(f"segment={s}" for s in expected["segment"].unique())
    assert (pd.to_datetime(records["as_of"]) == pd.to_datetime(expected["as_of"])).all()
    # Dates: text in radar score's file, dates in the Spark job's Parquet: compare as dates.
    for col in ("as_of", "renewal_date"):
        got, want = pd.to_datetime(records[col]), pd.to_datetime(expected[col])
        assert (got.dt.date.astype(str) == want.dt.date.astype(str)).all(), col
    for col in expected.columns.drop(["as_of", "renewal_date"]):
        same = [_same(b, a) for a, b in zip(records[col], expected[col], strict=True)]
        assert all(same), col
    # The portfolio summary radar score writes, from the same function, over the same rows
    # (sums in another order: equal within 1e-12).
    want = json.loads((tmp_path / f"plain.parquet{SUMMARY_SUFFIX}").read_text())["summary"]
    summary = json.loads((tmp_path / "spark" / SUMMARY_FILE).read_text())
    assert summary["all"]["accounts"] == len(expected) and summary["plays"]
    assert _same(summary, want), (summary, want)
    assert "Portfolio at" in said
    bad = radar(
        "score",
        *common,
        *uri,
        "--engine",
        "spark",
        "--as-of",
        "1999-01-01",
        "--out",
        str(tmp_path / "bad"),
        cwd=tmp_path,
    )
    assert bad.returncode == 1 and "outside the data" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad").exists()


def test_a_head_without_drivers_in_the_sample_takes_another_heads_type():
    """Found at 20,000 accounts: the 50 sampled rows had no 30-day driver, so the column was
    typed as text and the first real driver failed the job (``Expected bytes, got a 'dict'``)."""
    import pyarrow as pa

    from scoring.spark_job import _from_siblings, _unknown

    driver = pa.struct([("feature", pa.string()), ("contribution", pa.float64())])
    sample = pa.schema(
        [
            ("drivers_churn_30d", pa.list_(pa.null())),
            ("drivers_churn_90d", pa.list_(driver)),
            ("reasons_churn_30d", pa.list_(pa.null())),
            ("alerts", pa.list_(pa.null())),
        ]
    )
    assert _unknown(sample) == ["drivers_churn_30d", "reasons_churn_30d"]
    got = _from_siblings(sample)
    assert got.field("drivers_churn_30d").type == pa.list_(driver)
    assert got.field("reasons_churn_30d").type == pa.list_(pa.null())  # no head had one
    assert got.field("alerts").type == pa.list_(pa.null())  # lists of names: text later
    assert _unknown(got) == ["reasons_churn_30d"]


def test_a_sentence_none_of_the_sample_has_is_typed_as_text():
    """Issue 29's coherence note is on 2% of accounts: a 50-row sample may have none."""
    import pyarrow as pa

    from scoring.spark_job import _sentences_as_text

    got = _sentences_as_text(pa.schema([("coherence_note", pa.null()), ("x", pa.null())]))
    assert got.field("coherence_note").type == pa.string()
    assert got.field("x").type == pa.null()
