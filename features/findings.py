"""Validation findings: what is wrong, where (table, column, 1-based data rows) and the values."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_SHOWN = 5  # offending rows quoted per finding


@dataclass(frozen=True)
class Finding:
    """One validation result.

    Attributes:
        level: ``"error"`` (stops the run) or ``"warning"`` (listed only).
        table: Table at fault.
        column: Column at fault, or ``None`` for a whole-table finding.
        message: What is wrong.
        rows: 1-based data row numbers of the first offending rows.
        values: The offending values, aligned with ``rows``.
        count: How many rows are affected in all.

    """

    level: str
    table: str
    column: str | None
    message: str
    rows: tuple[int, ...] = ()
    values: tuple[object, ...] = ()
    count: int = 0

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{self.level.upper()} {where}: {self.message}"
        if self.rows:
            shown = ", ".join(
                f"row {r} ({_show(v)})" for r, v in zip(self.rows, self.values, strict=True)
            )
            more = f" and {self.count - len(self.rows)} more" if self.count > len(self.rows) else ""
            text += f" [{self.count} row{'s' if self.count != 1 else ''}: {shown}{more}]"
        return text


def _show(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if value is None or (not isinstance(value, str | tuple) and pd.isna(value)):
        return "empty"
    return repr(value)


@dataclass
class ValidationReport:
    """All findings of one validation run."""

    findings: list[Finding] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that stop the run."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that are only listed."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    def summary(self) -> str:
        """Human-readable list of every finding, errors first."""
        lines = [str(f) for f in self.errors + self.warnings]
        if self.missing_optional:
            lines.append("NOTE optional tables absent: " + ", ".join(self.missing_optional))
        return "\n".join(lines)


class ContractError(Exception):
    """Raised when the input breaks the data contract; carries the full report."""

    def __init__(self, report: ValidationReport):
        self.report = report
        n = len(report.errors)
        super().__init__(
            f"input data breaks the contract ({n} error{'s' if n != 1 else ''}):\n"
            + report.summary()
        )


class Collector:
    """Accumulates findings with their first offending rows."""

    def __init__(self, report: ValidationReport):
        self.report = report

    def add(
        self,
        level: str,
        table: str,
        column: str | None,
        message: str,
        mask: pd.Series | np.ndarray | None = None,
        values: pd.Series | None = None,
    ) -> None:
        """Record a finding for the rows where ``mask`` holds (a whole-table one without it).

        Nothing is recorded when the mask selects no row.
        """
        if mask is None:
            self.report.findings.append(Finding(level, table, column, message))
            return
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        if count == 0:
            return
        idx = np.flatnonzero(mask)[:MAX_SHOWN]
        shown = () if values is None else tuple(values.iloc[idx].tolist())
        self.report.findings.append(
            Finding(
                level,
                table,
                column,
                message,
                rows=tuple(int(i) + 1 for i in idx),
                values=shown if values is not None else tuple("" for _ in idx),
                count=count,
            )
        )

    def add_rows(
        self,
        level: str,
        table: str,
        column: str | None,
        message: str,
        rows: list[int],
        values: list[object],
        count: int,
    ) -> None:
        """Record a finding whose first rows (1-based) and count were found elsewhere."""
        if count:
            self.report.findings.append(
                Finding(level, table, column, message, tuple(rows), tuple(values), count)
            )
