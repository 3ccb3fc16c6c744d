"""The declarative mapping format: per export file, a contract table and its columns.

A preset is a YAML file in ``features/imports/presets/``; a team writes its own tool's
mapping in the same format and passes it with ``radar import --mapping FILE``. Every model
is frozen and refuses unknown keys, so a typo in a mapping is an error naming the key.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.schema import TABLES

# The pseudo-table an event log feeds: aggregated into usage and weekly_active_users.
EVENTS = "events"
# Columns an events source reads (user and timestamp are required, feature may be a constant).
EVENT_COLUMNS = ("user_id", "timestamp", "feature", "event_id")
# An account key named this matches whatever key the sources are joined by (`--key`):
# an analytics tool's group id is whatever id the product sends, not a key of its own.
ANY_KEY = "any"
DATE_FORMATS = ("iso", "epoch_s", "epoch_ms")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class MappingError(ValueError):
    """A mapping file that cannot be read or breaks the format; the message says where."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(_Frozen):
    """How one contract column is read from an export row.

    Exactly one of ``source``, ``expr`` and ``const`` says where the value comes from.
    """

    source: str | None = Field(
        None, description="Export column (a dotted path into nested JSON: context.groupId)."
    )
    expr: str | None = Field(
        None,
        description="DuckDB SQL over export columns written {Column Name}, for computed values "
        "(ARR from amount, quantity and interval).",
    )
    const: str | int | float | bool | None = Field(None, description="A fixed value.")
    values: dict[str, str | int | float | bool | None] | None = Field(
        None,
        description="Value map, matched case-insensitively after trimming; a value not in it "
        "is an error naming row and value unless keep_other.",
    )
    keep_other: bool = Field(False, description="Values not in `values` pass through as they are.")
    format: str | None = Field(
        None,
        description="Dates: a strptime format (%d/%m/%Y %H:%M), iso (default: ISO 8601 with or "
        "without offset), epoch_s or epoch_ms.",
    )
    transform: Literal["domain", "lower"] | None = Field(
        None, description="domain: the domain of an e-mail address or URL; lower: lower case."
    )
    optional: bool = Field(
        False,
        description="A missing export column is not an error: `default` is used and the "
        "import says so once.",
    )
    default: str | int | float | bool | None = Field(
        None, description="Value where the cell is empty (and for a missing optional column)."
    )
    note: str = Field("", description="Why, for docs/sources.md and the import's output.")

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        origins = [x for x in (self.source, self.expr) if x is not None]
        if self.const is not None:
            origins.append("const")
        if len(origins) != 1:
            raise ValueError("give exactly one of source, expr, const")
        if self.format is not None and not (self.format in DATE_FORMATS or "%" in self.format):
            raise ValueError(
                f"format {self.format!r}: use iso, epoch_s, epoch_ms or a strptime %-format"
            )
        return self

    def inputs(self) -> list[str]:
        """Export columns this spec reads."""
        if self.source is not None:
            return [self.source]
        if self.expr is not None:
            return _PLACEHOLDER.findall(self.expr)
        return []


def _spec(value: object) -> object:
    """A bare string is shorthand for ``{source: <string>}``."""
    return {"source": value} if isinstance(value, str) else value


class DropRule(_Frozen):
    """Rows to leave out: where ``column``'s value is one of ``values`` (or empty)."""

    column: str
    values: list[str] = Field(default_factory=list, description="Case-insensitive.")
    empty: bool = Field(False, description="Also drop rows where the column is empty.")
    keep: bool = Field(False, description="Invert: keep only rows whose value is in `values`.")
    reason: str = ""


class SourceSpec(_Frozen):
    """One kind of export file and the contract table it feeds."""

    name: str
    files: str = Field(description="Glob under --from (customers*.csv).")
    format: Literal["csv", "jsonl"] | None = Field(None, description="Default: by file suffix.")
    table: str = Field(description="Contract table, or `events` (usage + weekly_active_users).")
    account: dict[str, ColumnSpec] = Field(
        description="The account reference, by key name (stripe_customer, crm_id, domain, any); "
        "an accounts source lists every key it carries, which joins the others."
    )
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    drop: list[DropRule] = Field(default_factory=list)
    currency: ColumnSpec | None = Field(
        None, description="ISO currency code of the amounts on the row."
    )
    amounts: list[str] = Field(
        default_factory=list, description="Contract columns converted by the rate table."
    )
    churn_at: ColumnSpec | None = Field(
        None,
        description="subscriptions: a date the contract ended (cancelled, ended); a churn row "
        "is added there unless a later contract row starts by then.",
    )
    churn_when: DropRule | None = Field(
        None,
        description="subscriptions: rows that are a lost renewal (column value in values) "
        "become churn rows on their start date.",
    )
    timezone: str | None = Field(None, description="Override of the mapping's timezone.")
    required: bool = Field(True, description="No matching file is an error (else: absent).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            for field in ("account", "columns"):
                if isinstance(data.get(field), dict):
                    data[field] = {k: _spec(v) for k, v in data[field].items()}
            for field in ("currency", "churn_at"):
                if field in data:
                    data[field] = _spec(data[field])
        return data

    @model_validator(mode="after")
    def _known_columns(self) -> SourceSpec:
        if not self.account:
            raise ValueError(f"source {self.name}: `account` names at least one key")
        if self.table == EVENTS:
            allowed = set(EVENT_COLUMNS)
            for needed in ("user_id", "timestamp", "feature"):
                if needed not in self.columns:
                    raise ValueError(f"source {self.name}: an events source needs `{needed}`")
        elif self.table in TABLES:
            allowed = {c for c in TABLES[self.table].column_names if c != "account_id"}
        else:
            raise ValueError(
                f"source {self.name}: unknown table {self.table!r}; use one of "
                + ", ".join([*TABLES, EVENTS])
            )
        unknown = sorted(set(self.columns) - allowed)
        if unknown:
            raise ValueError(
                f"source {self.name}: {self.table} has no column(s) {', '.join(unknown)}; "
                f"it has {', '.join(sorted(allowed))}"
            )
        bad = sorted(set(self.amounts) - set(self.columns))
        if bad:
            raise ValueError(f"source {self.name}: amounts {bad} are not mapped columns")
        return self


class Mapping(_Frozen):
    """A tool's exports and how they map to the contract (a preset, or a team's own)."""

    name: str
    title: str
    docs: list[str] = Field(default_factory=list, description="Where the export is documented.")
    default_key: str = Field(description="The account key the sources join by without --key.")
    source_timezone: str = Field("UTC", description="Zone of timestamps written without an offset.")
    timezone: str = Field(
        "UTC", description="Zone whose calendar days the contract's dates are (stated)."
    )
    absent: dict[str, str] = Field(
        default_factory=dict,
        description="What the exports do not say, by contract table or column, and the next step.",
    )
    sources: list[SourceSpec]

    @model_validator(mode="after")
    def _unique_sources(self) -> Mapping:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("source names repeat")
        return self


def preset_dir() -> Path:
    """The folder the presets ship in (package data)."""
    return Path(str(resources.files("features.imports") / "presets"))


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML file; errors name the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc}") from exc
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise MappingError(f"{path}: {where}: {first['msg']}") from None


def load_preset(name: str) -> Mapping:
    """The shipped preset called ``name``; an unknown name lists the presets."""
    path = preset_dir() / f"{name}.yaml"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(name, preset_names(), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise MappingError(f"unknown preset {name!r}{hint}; presets: {', '.join(preset_names())}")
    return load_mapping(path)


def _how(spec: ColumnSpec) -> str:
    """How a column is read, in words, for docs/sources.md."""
    parts = []
    if spec.const is not None:
        parts.append(f"always `{spec.const}`")
    if spec.expr is not None:
        parts.append(f"computed: `{spec.expr}`")
    if spec.transform:
        parts.append(f"its {spec.transform}" if spec.transform == "domain" else "lower case")
    if spec.format:
        parts.append(f"date format `{spec.format}`")
    if spec.values is not None:
        pairs = ", ".join(f"{k} -> {'empty' if v is None else v}" for k, v in spec.values.items())
        parts.append(pairs + ("; others as they are" if spec.keep_other else ""))
    if spec.optional:
        parts.append("optional" + (f" (else `{spec.default}`)" if spec.default is not None else ""))
    elif spec.default is not None:
        parts.append(f"empty reads as `{spec.default}`")
    if spec.note:
        parts.append(spec.note)
    return "; ".join(parts).replace("|", "\\|")


def mapping_markdown(mapping: Mapping) -> str:
    """One preset's mapping as markdown: every contract column and the export field it reads."""
    lines = [
        f"### `{mapping.name}`: {mapping.title}",
        "",
        "Documented at: " + "; ".join(mapping.docs),
        "",
        f"Accounts join by `{mapping.default_key}` unless `--key` names another. Dates are "
        f"calendar days in {mapping.timezone}; timestamps written without an offset are read "
        f"as {mapping.source_timezone}.",
        "",
    ]
    for src in mapping.sources:
        target = "usage + weekly_active_users" if src.table == EVENTS else src.table
        fmt = src.format or "by suffix"
        lines += [
            f"**{src.name}** (`{src.files}`, {fmt}) -> `{target}`"
            + ("" if src.required else " (optional file)"),
            "",
            "| contract column | export field | how |",
            "|---|---|---|",
        ]
        for key, spec in src.account.items():
            field = spec.source or ", ".join(spec.inputs()) or "-"
            what = "the --key" if key == ANY_KEY else key
            lines.append(f"| account ({what}) | `{field}` | {_how(spec)} |")
        for col, spec in src.columns.items():
            field = spec.source or ", ".join(f"`{c}`" for c in spec.inputs()) or "-"
            field = f"`{field}`" if spec.source else field
            lines.append(f"| `{col}` | {field} | {_how(spec)} |")
        if src.currency is not None:
            lines.append(
                f"| (currency) | `{src.currency.source}` | converts {', '.join(src.amounts)} "
                "by --rates |"
            )
        if src.churn_at is not None:
            lines.append(f"| (churn row) | `{src.churn_at.source}` | {_how(src.churn_at)} |")
        if src.churn_when is not None:
            w = src.churn_when
            lines.append(f"| (churn row) | `{w.column}` | {', '.join(w.values)}: {w.reason} |")
        for rule in src.drop:
            verb = "kept only" if rule.keep else "dropped"
            vals = ", ".join(rule.values) + (" or empty" if rule.empty else "")
            lines.append(f"| (rows {verb}) | `{rule.column}` | {vals}: {rule.reason} |")
        lines.append("")
    if mapping.absent:
        lines.append("What the exports do not say:")
        lines.append("")
        lines += [f"- `{what}`: {text}" for what, text in mapping.absent.items()]
        lines.append("")
    return "\n".join(lines)


def presets_markdown() -> str:
    """Every shipped preset's mapping, in the documented order (docs/sources.md)."""
    return "\n".join(mapping_markdown(load_preset(n)) for n in PRESET_ORDER)


# The order docs/sources.md lists them in: events first, then billing, CRM, support.
PRESET_ORDER = (
    "event_log",
    "segment",
    "mixpanel",
    "amplitude",
    "stripe",
    "chargebee",
    "salesforce",
    "hubspot",
    "zendesk",
    "freshdesk",
)
