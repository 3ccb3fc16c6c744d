"""The input data contract: the raw tables, their columns, dtypes and rules.

This module is the single source of truth for raw column names and dtypes. The
validator, the synthetic generator, the feature pipelines and the docs all read
it; nothing else restates a column list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Logical column types of the contract."""

    ID = "id"  # identifier, kept as a string
    STR = "str"
    CATEGORY = "category"  # string from a closed set of values
    DATE = "date"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"


# pandas dtypes the loader produces for each kind.
# Whole numbers past 2**53 cannot be held exactly (1e20 seats could not even be cast).
WHOLE_NUMBER_LIMIT = 2**53
# Plausible ranges of raw values (the feature catalogue's ranges follow from them).
MAX_SEATS = 1_000_000
MAX_ARR = 1e10  # currency units a year
MAX_DAILY_USERS = 10_000_000
MAX_DAILY_EVENTS = 1e10
# Weekly active users may pass the seats bought (shared logins, overage), not by this factor.
MAX_USERS_PER_SEAT = 2

PANDAS_DTYPE: dict[Kind, str] = {
    Kind.ID: "str",
    Kind.STR: "str",
    Kind.CATEGORY: "str",
    Kind.DATE: "datetime64[s]",
    Kind.INT: "Int64",
    Kind.FLOAT: "Float64",
    Kind.BOOL: "boolean",
}

SEGMENTS = ("enterprise", "mid_market", "smb")
# An account whose segment is not recorded (column absent or cell empty) reads as this.
UNKNOWN_SEGMENT = "unknown"
PLAN_TIERS = ("starter", "professional", "enterprise")
BILLING_TERMS = ("monthly", "annual", "multi_year")
CHANGE_TYPES = ("new", "renewal", "expansion", "contraction", "churn")
SEVERITIES = ("low", "medium", "high", "critical")
# What ticket and survey text can be about (the taxonomy; its keywords are configurable in
# ``features.text.TextConfig``): here because a team's labelled tickets name them
# (``support_tickets.topic``); the feature catalogue re-exports it.
TEXT_TOPICS = (
    "billing",
    "bugs",
    "performance",
    "onboarding",
    "missing_feature",
    "pricing",
    "competitor",
)
CONTACT_ROLES = ("executive_sponsor", "champion", "admin", "user")
ENGAGEMENT_KINDS = ("qbr", "training", "webinar", "community_post", "email_reply", "meeting")
# What a CSM did (or the product did for them) on a call to action; see csm_actions.
CSM_ACTION_KINDS = (
    "opened",
    "acknowledged",
    "note",
    "activity",
    "play_started",
    "play_done",
    "snoozed",
    "overridden",
    "reassigned",
    "escalated",
    "notified",
    "closed",
)


@dataclass(frozen=True)
class Column:
    """One column of a raw table.

    Attributes:
        name: Column name in the file.
        kind: Logical type.
        description: What the column means, for the docs.
        nullable: Whether empty values are allowed.
        required: Whether the column must be present (optional columns may be absent).
        values: Allowed values for a CATEGORY column.
        min: Inclusive lower bound for numbers.
        max: Inclusive upper bound for numbers.
        default: What an empty cell, or the absent column, reads as (None: missing).
        other: For a CATEGORY column, how to give a value outside ``values`` (said with the
            refusal of one).

    """

    name: str
    kind: Kind
    description: str
    nullable: bool = False
    required: bool = True
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    default: str | None = None
    other: str | None = None

    def not_one_of(self) -> str:
        """The refusal of a value outside ``values``, with the way to give it where there is one."""
        said = "not one of " + ", ".join(self.values)
        return f"{said}; {self.other}" if self.other else said


@dataclass(frozen=True)
class DateOrder:
    """Rule: ``later`` is on or after ``earlier`` in the same row (when both are set)."""

    earlier: str
    later: str


@dataclass(frozen=True)
class ForeignKey:
    """Rule: every value of ``columns`` exists in ``table``'s ``ref_columns``."""

    columns: tuple[str, ...]
    table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """One raw table of the contract."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required: bool = True
    foreign_keys: tuple[ForeignKey, ...] = ()
    date_orders: tuple[DateOrder, ...] = ()
    # Columns that date the row: a row is a fact known from this date on.
    event_date: str | None = None

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        """Names of all columns, in contract order."""
        return [c.name for c in self.columns]

    def pandas_dtypes(self) -> dict[str, str]:
        """Pandas dtype for each column."""
        return {c.name: PANDAS_DTYPE[c.kind] for c in self.columns}


_ACCOUNT_FK = ForeignKey(("account_id",), "accounts", ("account_id",))
_ACCOUNT_ID = Column("account_id", Kind.ID, "The customer account (accounts.account_id).")

ACCOUNTS = Table(
    name="accounts",
    description="One row per customer account.",
    key=("account_id",),
    columns=(
        Column("account_id", Kind.ID, "Unique account identifier (e.g. the CRM id)."),
        Column("name", Kind.STR, "Company name."),
        Column(
            "segment",
            Kind.CATEGORY,
            "Commercial segment by ACV; empty or absent reads as unknown.",
            nullable=True,
            required=False,
            values=(*SEGMENTS, UNKNOWN_SEGMENT),
            default=UNKNOWN_SEGMENT,
        ),
        Column("industry", Kind.STR, "Industry of the customer.", nullable=True, required=False),
        Column("region", Kind.STR, "Sales region.", nullable=True, required=False),
        Column("customer_since", Kind.DATE, "Date the first contract started."),
        Column(
            "csm_owner",
            Kind.STR,
            "Customer-success manager who owns the account; empty for tech-touch accounts.",
            nullable=True,
            required=False,
        ),
    ),
)

SUBSCRIPTIONS = Table(
    name="subscriptions",
    description=(
        "Contract and ARR history: one row per contract period or ARR change. The row "
        "starting latest on or before a date holds the ARR in effect at that date. Churn and "
        "expansion labels come from this table, except for accounts without contract rows "
        "when `activity_churn_days` is set (labels from activity). Without this table "
        "`radar features` needs `activity_churn_days`."
    ),
    required=False,
    key=("account_id", "start_date", "change_type"),
    foreign_keys=(_ACCOUNT_FK,),
    date_orders=(DateOrder("start_date", "end_date"),),
    event_date="start_date",
    columns=(
        _ACCOUNT_ID,
        Column("start_date", Kind.DATE, "Date the change takes effect (first day of the period)."),
        Column(
            "end_date",
            Kind.DATE,
            "Last day of the contract term this row belongs to, as signed; empty for a "
            "monthly plan that renews every month until cancelled, and for churn rows.",
            nullable=True,
        ),
        Column(
            "arr",
            Kind.FLOAT,
            "Annual recurring revenue from start_date on (0 after churn).",
            min=0,
            max=MAX_ARR,
        ),
        Column(
            "seats",
            Kind.INT,
            "Seats purchased from start_date on (0 after churn); empty where the plan is not "
            "sold by seat (the seat-based features are then missing).",
            nullable=True,
            min=0,
            max=MAX_SEATS,
        ),
        Column(
            "plan_tier",
            Kind.STR,
            "Plan name as the billing system has it. starter, professional and enterprise "
            "are tiers as they are; other names are mapped to a tier by `plan_tiers` in the "
            "features config, else they have no tier (tier-based features missing).",
        ),
        Column(
            "billing_term",
            Kind.CATEGORY,
            "Billing term of the contract; may be empty when billing_term_months is given.",
            nullable=True,
            values=BILLING_TERMS,
            other="give any other term length (6 months, a quarter, semi-annual, 2 years) as "
            "billing_term_months, the whole number of months, and leave billing_term empty",
        ),
        Column(
            "billing_term_months",
            Kind.INT,
            "Length of the billing term in months (any whole number; 1 is monthly, 12 "
            "annual, more multi-year); decides over billing_term where both are given.",
            nullable=True,
            required=False,
            min=1,
        ),
        Column(
            "change_type",
            Kind.CATEGORY,
            "What happened at start_date: new, renewal, expansion (ARR up), contraction "
            "(ARR down) or churn (the account left; ARR 0).",
            values=CHANGE_TYPES,
        ),
    ),
)

USAGE = Table(
    name="usage",
    description=(
        "Daily product usage per account and product feature. Only days with activity need a "
        "row: a missing (account, day, feature) means no activity."
    ),
    key=("account_id", "date", "feature"),
    foreign_keys=(_ACCOUNT_FK,),
    event_date="date",
    columns=(
        _ACCOUNT_ID,
        Column("date", Kind.DATE, "Day of activity."),
        Column("feature", Kind.STR, "Product feature (module) used."),
        Column(
            "active_users",
            Kind.INT,
            "Distinct users who used the feature that day.",
            min=0,
            max=MAX_DAILY_USERS,
        ),
        Column(
            "events",
            Kind.INT,
            "Events (actions) recorded in the feature that day.",
            min=0,
            max=MAX_DAILY_EVENTS,
        ),
    ),
)

WEEKLY_ACTIVE_USERS = Table(
    name="weekly_active_users",
    required=False,
    description=(
        "Distinct users active in any feature per account and ISO week (Monday start). Seat "
        "utilisation ('active licences used weekly') needs it: distinct users cannot be added "
        "up from per-feature daily counts."
    ),
    key=("account_id", "week_start"),
    foreign_keys=(_ACCOUNT_FK,),
    event_date="week_start",
    columns=(
        _ACCOUNT_ID,
        Column(
            "week_start",
            Kind.DATE,
            "Monday the week starts on; the row is known after the Sunday that ends it.",
        ),
        Column(
            "active_users",
            Kind.INT,
            "Distinct users active during the week; at most "
            f"{MAX_USERS_PER_SEAT} per seat the account ever bought.",
            min=0,
            max=MAX_DAILY_USERS,
        ),
    ),
)

SUPPORT_TICKETS = Table(
    name="support_tickets",
    required=False,
    description="Support tickets.",
    key=("ticket_id",),
    foreign_keys=(_ACCOUNT_FK,),
    date_orders=(DateOrder("created_date", "resolved_date"),),
    event_date="created_date",
    columns=(
        Column("ticket_id", Kind.ID, "Unique ticket identifier."),
        _ACCOUNT_ID,
        Column("created_date", Kind.DATE, "Day the ticket was opened."),
        Column("resolved_date", Kind.DATE, "Day it was resolved; empty while open.", nullable=True),
        Column("severity", Kind.CATEGORY, "Severity.", values=SEVERITIES),
        Column("escalated", Kind.BOOL, "Whether the ticket was escalated."),
        Column(
            "csat",
            Kind.INT,
            "Satisfaction rating 1-5 after resolution; empty if none.",
            nullable=True,
            required=False,
            min=1,
            max=5,
        ),
        Column(
            "subject",
            Kind.STR,
            "Ticket subject as the customer wrote it; read for sentiment and topics.",
            nullable=True,
            required=False,
        ),
        Column(
            "body",
            Kind.STR,
            "Ticket text (first message); read for sentiment and topics.",
            nullable=True,
            required=False,
        ),
        Column(
            "topic",
            Kind.CATEGORY,
            "The ticket's topic as the team labelled it; empty where not labelled. With "
            "labels, a classifier trained on them gives the other tickets and comments their "
            "topic instead of the keywords.",
            nullable=True,
            required=False,
            values=TEXT_TOPICS,
        ),
    ),
)

CONTACTS = Table(
    name="contacts",
    required=False,
    description="Stakeholders per account.",
    key=("contact_id",),
    foreign_keys=(_ACCOUNT_FK,),
    date_orders=(DateOrder("start_date", "end_date"),),
    event_date="start_date",
    columns=(
        Column("contact_id", Kind.ID, "Unique contact identifier."),
        _ACCOUNT_ID,
        Column("role", Kind.CATEGORY, "Role toward our product.", values=CONTACT_ROLES),
        Column("start_date", Kind.DATE, "Day the contact took the role."),
        Column(
            "end_date",
            Kind.DATE,
            "Day the contact left the role; empty while still there.",
            nullable=True,
        ),
    ),
)

NPS_RESPONSES = Table(
    name="nps_responses",
    required=False,
    description="Net Promoter Score survey responses.",
    key=("account_id", "contact_id", "date"),
    foreign_keys=(_ACCOUNT_FK, ForeignKey(("contact_id",), "contacts", ("contact_id",))),
    event_date="date",
    columns=(
        _ACCOUNT_ID,
        Column("contact_id", Kind.ID, "Who answered (contacts.contact_id)."),
        Column("date", Kind.DATE, "Day of the response."),
        Column("score", Kind.INT, "Likelihood to recommend, 0-10.", min=0, max=10),
        Column(
            "comment",
            Kind.STR,
            "The respondent's comment; read for sentiment and topics.",
            nullable=True,
            required=False,
        ),
    ),
)

ENGAGEMENT = Table(
    name="engagement",
    required=False,
    description="Engagement touchpoints: QBRs, trainings, webinars, community, email, meetings.",
    key=(),  # no key: two touchpoints of one kind on one day are two touchpoints
    foreign_keys=(_ACCOUNT_FK,),
    event_date="date",
    columns=(
        _ACCOUNT_ID,
        Column("date", Kind.DATE, "Day of the touchpoint."),
        Column("kind", Kind.CATEGORY, "Kind of touchpoint.", values=ENGAGEMENT_KINDS),
    ),
)

INVOICES = Table(
    name="invoices",
    required=False,
    description="Invoices and their payment.",
    key=("invoice_id",),
    foreign_keys=(_ACCOUNT_FK,),
    # An invoice matters to payment features once it is due; paying early is normal, so
    # paid_date has no order rule.
    event_date="due_date",
    columns=(
        Column("invoice_id", Kind.ID, "Unique invoice identifier."),
        _ACCOUNT_ID,
        Column("due_date", Kind.DATE, "Day payment is due."),
        Column("paid_date", Kind.DATE, "Day it was paid; empty while unpaid.", nullable=True),
        Column("amount", Kind.FLOAT, "Invoiced amount.", min=0, max=MAX_ARR),
    ),
)

MILESTONES = Table(
    name="milestones",
    required=False,
    description="Value-realisation milestones agreed with the customer (ROI tracking).",
    key=("account_id", "milestone"),
    foreign_keys=(_ACCOUNT_FK,),
    event_date="created_date",
    date_orders=(
        DateOrder("created_date", "target_date"),
        DateOrder("created_date", "achieved_date"),
    ),
    columns=(
        _ACCOUNT_ID,
        Column("milestone", Kind.STR, "Milestone name."),
        Column("created_date", Kind.DATE, "Day the milestone was agreed."),
        Column("target_date", Kind.DATE, "Day it should be achieved by."),
        Column(
            "achieved_date", Kind.DATE, "Day it was achieved; empty if not (yet).", nullable=True
        ),
    ),
)

CSM_ACTIONS = Table(
    name="csm_actions",
    required=False,
    description=(
        "What customer-success managers did: calls to action opened, acknowledged, worked and "
        "closed, plays started and done with their outcome. Exported from the work-item store "
        "(`radar daily`), or loaded from a CRM's activity log. Plays run after an as-of date "
        "are the treatments whose effects `radar effects` estimates; plays before it are history."
    ),
    key=(),  # no key: one CTA has many events, and a CRM may log two on one day
    foreign_keys=(_ACCOUNT_FK,),
    event_date="date",
    columns=(
        _ACCOUNT_ID,
        Column("date", Kind.DATE, "Day of the action."),
        Column("action", Kind.CATEGORY, "What was done.", values=CSM_ACTION_KINDS),
        Column(
            "play",
            Kind.STR,
            "The play worked (a play code such as `adoption_plan`); empty when none.",
            nullable=True,
        ),
        Column(
            "outcome",
            Kind.STR,
            "Outcome of a finished play or activity (e.g. `completed`, `no_answer`).",
            nullable=True,
        ),
        Column("owner", Kind.STR, "Who did it (a user name or e-mail).", nullable=True),
        Column(
            "reason", Kind.STR, "Why: a close, snooze or override reason, or a note.", nullable=True
        ),
        Column(
            "cta_id",
            Kind.ID,
            "The call to action it belongs to; empty for actions logged outside one.",
            nullable=True,
        ),
        Column(
            "propensity",
            Kind.FLOAT,
            "For a play given at random (reason `pilot`): the chance the account had of getting "
            "this play in the draw; empty otherwise.",
            nullable=True,
            required=False,
            min=0.0,
            max=1.0,
        ),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        ACCOUNTS,
        SUBSCRIPTIONS,
        USAGE,
        WEEKLY_ACTIVE_USERS,
        SUPPORT_TICKETS,
        CONTACTS,
        NPS_RESPONSES,
        ENGAGEMENT,
        INVOICES,
        MILESTONES,
        CSM_ACTIONS,
    )
}

FILE_SUFFIXES = (".parquet", ".csv")


def contract_markdown() -> str:
    """Render the table reference of ``docs/data-contract.md`` from this module."""
    lines = []
    for t in TABLES.values():
        status = "required" if t.required else "optional"
        lines += [f"### `{t.name}` ({status})", "", t.description, ""]
        if t.key:
            lines.append(f"Key: `{', '.join(t.key)}` (unique).")
        rules = [
            f"`{fk.columns[0]}` must exist in `{fk.table}.{fk.ref_columns[0]}`"
            for fk in t.foreign_keys
        ]
        rules += [f"`{o.later}` on or after `{o.earlier}`" for o in t.date_orders]
        if rules:
            lines.append("Rules: " + "; ".join(rules) + ".")
        if t.event_date:
            lines.append(f"A row is known from `{t.event_date}` on.")
        lines += [
            "",
            "| column | type | required | empty allowed | values | meaning |",
            "|---|---|---|---|---|---|",
        ]
        for c in t.columns:
            values = ", ".join(c.values)
            if c.min is not None or c.max is not None:
                lo = "" if c.min is None else f"{c.min:g}"
                hi = "" if c.max is None else f"{c.max:g}"
                values = f"{lo} .. {hi}"
            lines.append(
                f"| `{c.name}` | {c.kind.value} | {'yes' if c.required else 'no'} | "
                f"{'yes' if c.nullable else 'no'} | {values} | {c.description} |"
            )
        lines.append("")
    return "\n".join(lines)
