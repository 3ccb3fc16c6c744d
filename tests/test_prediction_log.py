from __future__ import annotations

import pandas as pd
import pytest

from monitoring.predictions import append, read


def _records(as_of: str, p: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "as_of": pd.to_datetime([as_of, as_of]),
            "segment": ["smb", "enterprise"],
            "arr": [1000.0, 50000.0],
            "p_churn_90d": [p, p / 2],
            "arr_at_risk_90d": [1000.0 * p, 50000.0 * p / 2],
            "drivers_churn_90d": [[], []],  # not logged
        }
    )


def test_log_is_partitioned_by_as_of_and_keeps_the_latest_scoring(tmp_path):
    log = tmp_path / "predictions"
    meta = {"model": "renewal-radar v1", "model_uri": "models:/renewal-radar@champion"}
    append(_records("2026-05-31", 0.2), meta | {"scored_at": "2026-06-01T08:00:00+00:00"}, log)
    append(_records("2026-06-30", 0.3), meta | {"scored_at": "2026-07-01T08:00:00+00:00"}, log)
    # the May scores re-run later with another version: that one counts
    later = meta | {"model": "renewal-radar v2", "scored_at": "2026-07-02T08:00:00+00:00"}
    append(_records("2026-05-31", 0.4), later, log)
    assert sorted(p.name for p in log.iterdir()) == ["as_of=2026-05-31", "as_of=2026-06-30"]
    assert len(list((log / "as_of=2026-05-31").glob("*.parquet"))) == 2
    got = read(log).sort_values(["as_of", "account_id"])
    assert len(got) == 4 and "drivers_churn_90d" not in got
    may = got[got["as_of"] == "2026-05-31"]
    assert may["p_churn_90d"].tolist() == [0.4, 0.2]
    assert (may["model_version"] == "renewal-radar v2").all()


def test_reading_an_empty_log_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="radar score"):
        read(tmp_path / "nothing")
