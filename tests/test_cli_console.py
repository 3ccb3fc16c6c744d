from __future__ import annotations

import io

from rich.table import Table

from radar.common import make_console as _console


def test_tables_are_written_whole_when_the_output_is_not_a_terminal():
    headers = [f"churn_90d/model/roc_auc_{i}" for i in range(8)]  # ~225 columns, rich assumes 80
    table = Table()
    for h in headers:
        table.add_column(h)
    table.add_row(*["0.1234"] * len(headers))
    out = io.StringIO()
    _console(file=out).print(table)
    text = out.getvalue()
    assert "…" not in text
    for h in headers:
        assert h in text
    out = io.StringIO()
    _console(file=out).print("a short line")
    assert out.getvalue() == "a short line\n"  # no padding to the wide width
