"""Every piece of code-to-text: feature values, stages, alerts, triggers, plays, money, percents.

One module, so the CLI, the records, the pages and the briefs say the same thing the same way.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import pandas as pd

from features.catalogue import (
    FEATURE_BY_NAME,
    NEGATIVE_SENTIMENT_ALERT,
    RENEWAL_LABEL,
    RENEWAL_WINDOW_DAYS,
    TEXT_TOPICS,
    horizon_days,
)

DASH = "–"

# Renewal stages and other codes whose words are not the code with spaces.
_CODE_WORDS = {
    "not_in_cycle": "not in the renewal cycle",
    "monthly_rolling": "monthly rolling contract",
    "t_plus_30": "T+30 (post-renewal)",
    # Regions: the abbreviations CS teams write, a proper name capitalised.
    "emea": "EMEA",
    "apac": "APAC",
    "latam": "LATAM",
    "north_america": "North America",
}

PLAYS = {
    "usage_recovery": "Usage recovery: a 7-day sprint to bring users back to the product",
    "adoption_plan": "Adoption plan: training, change management and simpler workflows",
    "engagement_revival": "Engagement revival: a 30-day programme of touchpoints and training",
    "executive_outreach": "Executive outreach: re-establish an executive sponsor and champion",
    "support_escalation": "Support escalation: get open critical issues resolved, then follow up",
    "value_review": "Value / ROI review: show the value delivered against the goals",
    "expansion_conversation": "Expansion conversation: more seats, a higher tier or new teams",
    # The top tier has no higher tier to sell (issue 29).
    "expansion_addons": "Expansion conversation: more seats, add-ons or a multi-year term",
    # Seed 001's "Phase 1: Onboarding (Days 0-90)".
    "onboarding_plan": "Onboarding plan: first value within 90 days (kickoff, week-4 value "
    "checkpoint, day-60 check-in, day-90 review)",
    "advocacy_ask": "Advocacy ask: a reference, case study or review",
    "renewal_launch": "Renewal launch: start the renewal process and plan it with the customer",
    "negotiation_prep": "Negotiation prep: terms, stakeholders and the value story before renewal",
}
ALERT_WORDS = {
    "health_below_70": "Health fell below 70",
    "health_below_40": "Health fell below 40",
    "health_drop": "Health fell more than 10 points in a month",
    "usage_decline": "Usage fell more than 30% in 30 days",
    "usage_collapse": "Usage collapsed (down more than 50% in 30 days)",
    "engagement_drop": "Engagement fell more than 40% over 90 days",
    "support_spike": "Support tickets spiked (twice the usual)",
    "satisfaction_drop": "Satisfaction (NPS) dropped 20+ points",
    "negative_nps": "Negative NPS over the last 180 days",
    "sponsor_lost": "The executive sponsor left in the last 90 days",
    "champion_lost": "The champion left in the last 90 days",
    "unresolved_critical": "Unresolved critical tickets or escalations",
    "payment_delay": "Invoices past due",
    "no_response": "No email reply or meeting in 90 days",
    "negative_sentiment": "Most of this month's tickets read as frustrated",
    "health_forecast_drop": "Healthy now, health forecast to fall below 70 before the renewal",
}
# The satisfaction heads (features.catalogue.SATISFACTION_HEADS), as a CSM reads them.
SATISFACTION_WORDS = {
    "nps_detractor": "next NPS answer a detractor (0-6)",
    "low_csat": "next ticket rated poor (1-2 of 5)",
}
FAMILY_WORDS = {
    "usage": "product usage",
    "engagement": "engagement",
    "relationship": "the relationship",
    "support": "support",
    "commercial": "the commercial picture",
}
TRIGGER_WORDS = {
    "seats_over_80": "more than 80% of seats in use",
    "seats_75_80": "75-80% of seats in use",
    "adoption_90": "90%+ of the tier's features adopted",
    "strong_adoption_6_12m": "strong adoption 6-12 months in",
    "value_proven": "value milestones achieved on time",
    "whitespace_12m": "a year in, healthy and well used: whitespace to explore",
}


def missing(value: object) -> bool:
    """Whether a value is missing (None, NaN, pandas' NA)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def code(value: str | None) -> str:
    """A code as words: ``t_minus_90`` -> ``T-90``, ``mid_market`` -> ``mid market``."""
    if not value:
        return DASH
    text = str(value)
    if text.startswith("t_minus_"):
        return "T-" + text.removeprefix("t_minus_")
    return _CODE_WORDS.get(text, text.replace("_", " "))


def name_list(names, limit: int = 10) -> str:
    """Names joined with commas, the first ``limit`` of them and "and N more" for the rest."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def alert_words(name: str) -> str:
    """An alert in words: "The champion left in the last 90 days"."""
    return ALERT_WORDS.get(name, name.replace("_", " ").capitalize())


def topic_names(mask: object) -> list[str]:
    """The topics of a bit mask (bit ``i``: ``TEXT_TOPICS[i]``) in words: billing, bugs."""
    if missing(mask):
        return []
    m = int(mask)
    return [code(t) for i, t in enumerate(TEXT_TOPICS) if m >> i & 1]


def sentiment_sentence(negative: object, read: object, topics: object = None) -> str:
    """What this month's tickets say, with the counts.

    "3 of 5 tickets this month read as frustrated: billing, bugs"; without readable text,
    that there is none (never a guess).
    """
    if missing(read) or int(read) == 0:
        return "No ticket this month has readable text"
    n, k = int(read), 0 if missing(negative) else int(negative)
    what = f"{k} of {n} ticket{'s' if n != 1 else ''} this month read as frustrated"
    names = topic_names(topics)
    return what + (f": {', '.join(names)}" if names and k else "")


def health_outlook(now: object, expected: object, low: object, high: object) -> str | None:
    """Health now and where it is expected to be, with the interval: "70 → 58 (45-69)".

    None without a forecast (the page shows a dash); a dash for today's score when it is
    missing.
    """
    if missing(expected) or missing(low) or missing(high):
        return None
    today = DASH if missing(now) else f"{now:.0f}"
    return f"{today} \u2192 {expected:.0f} ({low:.0f}-{high:.0f})"


def topic_reading_sentence(reading: dict) -> str:
    """How a build read the topics of tickets and comments (the manifest's ``text_topics``)."""
    if reading.get("method") == "classifier":
        n = int(reading["labelled_tickets"])
        return (
            f"topics of tickets and comments: by a classifier trained on the {n:,} tickets "
            "labelled in support_tickets.topic (labelled tickets keep their label)"
        )
    given = int(reading.get("labelled_tickets", 0))
    if not given:
        return (
            "topics of tickets and comments: by keywords (no ticket labelled in "
            "support_tickets.topic)"
        )
    return (
        f"topics of tickets and comments: by keywords ({given:,} labelled in "
        f"support_tickets.topic; a classifier needs at least {reading.get('needed', 0)} "
        "with text, of two topics or more)"
    )


def alert_sentence(name: str, row: object) -> str:
    """An alert with its figures where it has them (``row``: the snapshot row, a mapping).

    The negative-sentiment alert quotes its counts and topics; the others are
    :func:`alert_words`.
    """
    if name == NEGATIVE_SENTIMENT_ALERT:
        get = row.get  # type: ignore[attr-defined]
        return sentiment_sentence(
            get("negative_tickets_30d"), get("read_tickets_30d"), get("negative_topics_30d")
        )
    return alert_words(name)


def play_name(name: str) -> str:
    """A play's short name: ``usage_recovery`` -> "Usage recovery"."""
    return PLAYS[name].split(":")[0] if name in PLAYS else code(name).capitalize()


def trigger(name: str) -> str:
    """An expansion trigger in words."""
    return TRIGGER_WORDS.get(name, name.replace("_", " "))


def money(v: float | None) -> str:
    """$1,234,567 or a dash."""
    return DASH if missing(v) else f"${v:,.0f}"


def signed_money(v: float | None) -> str:
    """-$1,234 or +$1,234 (an amount that can go either way, e.g. ARR saved), or a dash."""
    return DASH if missing(v) else f"{'-' if v < 0 else '+'}${abs(v):,.0f}"


EXPECTED_EXPANSION = "expected expansion ARR"


def expansion_words(p: float, expected: float | None = None) -> str:
    """The figure that earns an expansion play.

    "71% chance of expanding within 90 days ($324,900 expected expansion ARR)".
    """
    text = f"{percent(p)} chance of expanding within 90 days"
    return text if missing(expected) else f"{text} ({money(expected)} {EXPECTED_EXPANSION})"


def growth_words(kind: str, value: float) -> str:
    """The figure behind a growth tier: "ARR -23% over the last year", "health 29"."""
    return {
        "health": lambda v: f"health {v:.0f}",
        "churn": lambda v: f"90-day churn risk {percent(v)}",
        "arr_change": lambda v: f"ARR {v:+.0%} over the last year",
        "usage": lambda v: f"usage {v:+.0%} over 90 days",
        "expansion": lambda v: f"{percent(v)} chance of expanding within 90 days",
    }[kind](value)


def onboarding_reason(tenure_days: float, state: str, risk: str) -> str:
    """Why the onboarding plan: the account's days as a customer (seed 001's days 0-90)."""
    return (
        f"Onboarding ({tenure_days:,.0f} days a customer): first value within 90 days comes "
        f"before any expansion or recovery ({state}, {risk})."
    )


NO_ARR = "no ARR"  # an account without a contract (usage-only): no figure, never $0


def arr_words(v: float | None) -> str:
    """An account's ARR as the pages say it: "$120,000 ARR", or "no ARR"."""
    return NO_ARR if missing(v) else f"{money(v)} ARR"


def arr_of(v: float | None) -> str:
    """Under an ARR-at-risk figure: "of $120,000", or "no ARR"."""
    return NO_ARR if missing(v) else f"of {money(v)}"


def signed(v: float, unit: str = "") -> str:
    """A whole signed number, "+12%" or "-3"; one that rounds to zero is "0" (never "-0%")."""
    whole = round(v)
    return f"{whole:+d}{unit}" if whole else f"0{unit}"


TECH_TOUCH = "tech touch"  # an account without a named CSM


def owner(value: object) -> str:
    """A CSM owner as every page writes it: ``csm_024`` -> "csm 024", none -> "tech touch"."""
    return TECH_TOUCH if missing(value) or not value else code(str(value))


def percent(p: float) -> str:
    """A probability in words: 12%, 0.4% below 1%; never a misleading 0% or 100%."""
    if p < 0.001:
        return "under 0.1%"
    if p > 0.99:
        return "over 99%"
    return f"{p:.0%}" if p >= 0.01 else f"{p:.1%}"


def pct(v: float | None) -> str:
    """A probability as a percentage, or a dash."""
    return DASH if missing(v) else percent(v)


def robustness_words(value: float | None) -> str:
    """A play's robustness value (effects.sensitivity) for a table cell: "0.27%", a dash."""
    if missing(value):
        return DASH
    if value <= 0:
        return "none: the interval holds zero"
    share = value * 100
    return f"{share:.2f}%" if share < 1 else f"{share:.1f}%"


def fragile_sentence(plays: list[tuple[str, float]], limit: float) -> str | None:
    """The plays (title, robustness value) an unseen factor weaker than ``limit`` would erase."""
    if not plays:
        return None
    one = len(plays) == 1
    named = name_list(f"{title} ({robustness_words(value)})" for title, value in plays)
    return (
        f"Fragile (robust to unseen confounding under {limit:.0%}): {named}. An unseen factor "
        f"explaining that share of what the signals leave unexplained, in who got the play and "
        f"in churn alike, would bring {'its' if one else 'each one’s'} interval to zero: "
        f"{'the effect rests' if one else 'the effects rest'} on the assumption above; a "
        f"randomised holdout would settle it."
    )


def no_bound_sentence(titles: list[str]) -> str | None:
    """The plays whose robustness value could not be read (a dash in the table), once."""
    if not titles:
        return None
    return (
        f"No robustness value for {name_list(titles)}: the chances of getting "
        f"{'that play' if len(titles) == 1 else 'those plays'} are too extreme on a few "
        f"accounts to bound unseen confounding."
    )


def points(effect: float) -> str:
    """An effect in probability as points: "12 points", "0.4 points", "1 point"."""
    p = abs(effect) * 100
    if p < 0.05:
        return "less than 0.1 points"
    text = f"{p:.0f}" if p >= 9.5 else f"{p:.1f}".rstrip("0").rstrip(".")
    return f"{text} point" + ("" if text == "1" else "s")


def format_value(feature: str, value: object) -> str:
    """A feature value as a CSM would write it: 31%, 12 days, $120,000, yes, mid market."""
    f = FEATURE_BY_NAME[feature]
    if missing(value):
        return "no data"
    if f.categorical:
        return code(str(value))
    v = float(value)
    unit = f.unit
    if unit == "share":
        return f"{v:.0%}"
    if unit == "share change":  # a difference of two shares: points, not a relative change
        return f"{v * 100:+.0f} points"
    if feature == "negative_topics_30d":
        return ", ".join(topic_names(v)) or "none"
    if unit == "change":
        return signed(v * 100, "%")
    if unit == "flag":
        return "yes" if v >= 0.5 else "no"
    if unit == "currency":
        return f"${v:,.0f}"
    if unit == "ratio":
        return f"{v:.1f}x"
    if unit.startswith("NPS"):
        return signed(v)
    if unit == "days":
        return f"{v:,.0f} day" + ("" if round(v) == 1 else "s")
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


@lru_cache(maxsize=64)
def outcome_words(label: str, horizon: int | None = None) -> str:
    """``churn_90d`` -> "90-day churn risk"; ``expansion_30d`` -> "30-day expansion chance".

    ``horizon``: the head's horizon in days where its name does not say it (a model trained on
    a feature table of one's own keeps it in its bundle: ``ModelBundle.horizon``).
    """
    if label == RENEWAL_LABEL:  # no fixed window: the next renewal decision
        return "renewal likelihood"
    if label in SATISFACTION_WORDS:  # the next answer or ticket, not a fixed-window event
        return f"chance: {SATISFACTION_WORDS[label]}"
    kind = label.rsplit("_", 1)[0]
    noun = {"churn": "churn risk", "expansion": "expansion chance"}.get(kind, f"{kind} chance")
    return f"{horizon or horizon_days(label)}-day {noun}"


@lru_cache(maxsize=1024)
def short_description(feature: str) -> str:
    """The catalogue description without its parenthesis or its list of levels."""
    desc = FEATURE_BY_NAME[feature].description
    return re.split(r" \(|: ", desc, maxsplit=1)[0]


def sentence(
    feature: str,
    value: object,
    effect: float,
    label: str,
    formatted: str | None = None,
    horizon: int | None = None,
) -> str:
    """One driver in words, from the catalogue's description of the feature.

    Example: "Share of purchased seats active each week, over the last 4 complete weeks: 31%;
    this raises 90-day churn risk by 12 points." A missing value reads "no data".
    ``formatted`` is :func:`format_value`'s text for ``value``, when already at hand.
    """
    desc = short_description(feature)
    verb = "raises" if effect > 0 else "lowers"
    return (
        f"{desc[0].upper()}{desc[1:]}: {formatted or format_value(feature, value)}; "
        f"this {verb} {outcome_words(label, horizon)} by {points(effect)}."
    )


def signed_points(effect: float) -> str:
    """An effect with its sign: "+37 points", "-0.4 points", "+1 point"."""
    return ("+" if effect >= 0 else "-") + points(effect)


@lru_cache(maxsize=4096)  # a portfolio's renewal dates repeat; one per head and account
def day(value: object) -> str:
    """A date as a CSM writes it: 10 Jan 2027 (a dash when there is none)."""
    if value is None or pd.isna(value):  # no contract, no renewal date (usage-only accounts)
        return DASH
    return pd.Timestamp(value).strftime("%-d %b %Y")


ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def dated_text(text: str) -> str:
    """Free text from the data with its ISO dates written as :func:`day` writes them.

    "First workflow automated by 2026-03-27" -> "First workflow automated by 27 Mar 2026".
    """
    return ISO_DATE.sub(lambda m: day(m.group(1)), text)


@lru_cache(maxsize=64)
def family_title(family: str) -> str:
    """A family as a heading: "Product usage"."""
    words = FAMILY_WORDS.get(family, family.replace("_", " "))
    words = words.removeprefix("the ")
    return words[0].upper() + words[1:]


def timing_sentence(
    label: str,
    effect: float,
    renewal: object,
    days: float | None,
    monthly: bool,
    horizon: int | None = None,
    lead: tuple[str, str] | None = None,
) -> str:
    """The contract calendar's part of a probability, in one sentence.

    "Renewal on 10 Jan 2027 falls inside the next 90 days: +37 points". ``lead``: the
    calendar feature that moves the part most with its value in words, when it is not the
    renewal date (tenure, lifecycle stage): an account without a contract gets its part named
    after it, never after the missing date.
    """
    horizon = horizon or horizon_days(label)
    tail = f": {signed_points(effect)} on the {outcome_words(label, horizon)}."
    if missing(days) or missing(renewal):
        if lead is not None:
            what = short_description(lead[0])
            return f"No contract end date on record; the part comes from {what} ({lead[1]})" + tail
        return "No contract end date on record" + tail
    when = day(renewal)
    if monthly:
        return f"Monthly plan, next renewal on {when} (inside the next {horizon} days)" + tail
    if days <= horizon:
        return f"Renewal on {when} falls inside the next {horizon} days" + tail
    return f"Renewal on {when} is {days:,.0f} days away, after the next {horizon} days" + tail


def context_sentence(
    label: str, effect: float, segment: object, tier: object, horizon: int | None = None
) -> str:
    """The account profile's part of a probability (size, tier, segment): context, not a cause."""
    return (
        f"Account profile ({_profile(segment, tier)}size): {signed_points(effect)} on the "
        f"{outcome_words(label, horizon)}."
    )


@lru_cache(maxsize=256)
def _profile(segment: object, tier: object) -> str:
    """The known part of segment and tier, as "mid market segment, professional tier, "."""
    parts = [f"{code(v)} {what}" for v, what in ((segment, "segment"), (tier, "tier"))]
    who = ", ".join(p for p, v in zip(parts, (segment, tier), strict=True) if not missing(v))
    return who + ", " if who else ""


def not_estimated_sentence() -> str:
    """Why an account has no renewal likelihood now."""
    return (
        f"No renewal decision within the next {RENEWAL_WINDOW_DAYS} days: "
        f"the {outcome_words(RENEWAL_LABEL)} is not estimated."
    )


def reason_sentence(
    family: str, effect: float, label: str, horizon: int | None = None, spread: bool = False
) -> str:
    """A family's part: "Product usage raises 90-day churn risk by 12 points".

    ``spread``: no single signal of the family moves it the same way (none to show as
    evidence), and the sentence says so rather than leave a claim without its evidence.
    """
    verb = "raises" if effect > 0 else "lowers"
    what = outcome_words(label, horizon)
    text = f"{family_title(family)} {verb} the {what} by {points(effect)}"
    return text + (SPREAD if spread else ".")


SPREAD = ", spread over many small signals with no single one standing out."


def disagreement_part_words(part_sentence: str) -> str:
    """The disagreement banner's credit to the calendar or the profile, from its sentence."""
    said = part_sentence.rstrip(".")  # the banner ends the sentence itself
    return f"most of that risk comes from outside the signals the health score weighs ({said})"


def lead_words(label: str, title: str | None = None, effect: float = 0.0) -> str:
    """A head's leading reason in a few words: "90-day churn risk: product usage 3.4 points"."""
    if title is None:
        return f"{outcome_words(label)}: {NO_LEADING_REASON}"
    return f"{outcome_words(label)}: {title.lower()} {points(effect)}"


def coherence_sentence(
    p_renewal: float,
    p_churn: float,
    renewal: object,
    horizon: int,
    churn_why: str,
    renewal_why: str,
) -> str:
    """Why renewal likelihood and churn risk on one renewal disagree (issue 29's rule)."""
    gap = abs((1 - p_renewal) - p_churn)
    return (
        f"The renewal on {day(renewal)} falls inside the next {horizon} days, yet the renewal "
        f"likelihood ({percent(p_renewal)}) and the {horizon}-day churn risk ({percent(p_churn)}) "
        f"are {points(gap)} apart: two models, one trained on renewal decisions and one on "
        f"all accounts, read the signals differently ({churn_why}; {renewal_why}). "
        "Plan for the higher risk."
    )


def evidence_sentence(
    feature: str,
    value: object,
    typical: float | None,
    effect: float,
    label: str,
    formatted: str | None = None,
    typical_formatted: str | None = None,
    horizon: int | None = None,
) -> str:
    """One piece of evidence against the typical value: "... 31% (typical 62%); this raises...".

    ``formatted`` / ``typical_formatted``: :func:`format_value`'s texts, when already at hand.
    """
    desc = short_description(feature)
    shown = formatted or format_value(feature, value)
    if not missing(typical):
        shown += f" (typical {typical_formatted or format_value(feature, typical)})"
    verb = "raises" if effect > 0 else "lowers"
    return (
        f"{desc[0].upper()}{desc[1:]}: {shown}; this {verb} the {outcome_words(label, horizon)} by "
        f"{points(effect)}."
    )


def evidence_phrase(feature: str, value: str, typical: str | None) -> str:
    """Evidence in a few words: "share of purchased seats active each week: 13% (typical 58%)"."""
    return f"{short_description(feature)}: {value}" + (f" (typical {typical})" if typical else "")


# --- the account brief and the portfolio KPIs ----------------------------------------------

NO_TREND = "no earlier value to compare"
NO_ROI = "ROI not recorded: the data has no ROI figures (milestones stand in for value proof)"
NO_LEADING_REASON = "no single area standing out"
NEVER = "none on record"
SEVERITY_ORDER = ("critical", "high", "medium", "low")
MILESTONE_STATUS = {
    "on_time": "achieved on time",
    "late": "achieved late",
    "delayed": "delayed (past its target date)",
    "planned": "planned",
}
TASK_STATUS = {
    "overdue": "overdue unless done (past; not recorded)",
    "due": "due now",
    "upcoming": "upcoming",
}
BRIEF_SECTIONS = {
    "value": "Value delivered",
    "benchmarks": "Benchmarks against similar accounts",
    "risks": "Risks and opportunities",
    "renewal": "Renewal plan",
    "talk": "Talk track",
    "who": "Who",
}

# The brief a customer reads (``radar brief --audience customer``): these sections only.
CUSTOMER_SECTIONS = {
    "value": BRIEF_SECTIONS["value"],
    "benchmarks": BRIEF_SECTIONS["benchmarks"],
    "plan": "The plan ahead",
}
# The renewal stages as a customer reads them: the joint steps, not the team's tasks.
CUSTOMER_STEPS = {
    "t_minus_180": "Business review of the value achieved; goals for the year ahead",
    "t_minus_120": "Renewal proposal and a joint plan to the renewal date",
    "t_minus_90": "Terms and your internal approvals",
    "t_minus_60": "Contract review and signature scheduling",
    "t_minus_30": "Signature, invoicing and a seamless transition",
    "t_plus_30": "Goals for the new term",
}


def customer_step(stage: str) -> str:
    """A renewal stage as the customer's brief words it."""
    return CUSTOMER_STEPS.get(stage, code(stage))


def yes_no(flag: bool) -> str:
    """A flag as words: "a" (in place) or "no"."""
    return "a" if flag else "no"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 11th, 71st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def whole_percentile(p: float) -> int:
    """A percentile to the nearest whole number, halves up (62.5 -> 63)."""
    return int(math.floor(p + 0.5))


def with_base(text: str, count: int | None, unit: str) -> str:
    """A score with the count it is from: "+67 from 3 answers" (unknown count: the score)."""
    if count is None or text in ("no data", DASH):
        return text
    return f"{text} from {count:,} {unit}" + ("" if count == 1 else "s")


def outreach_ask(sponsor: bool, champion: bool) -> str:
    """Executive outreach's ask by who is there: never an introduction to someone on record."""
    if sponsor and champion:
        return "time with the executive sponsor and the champion to confirm the plan"
    if sponsor:
        return "an introduction to a champion, through the executive sponsor"
    if champion:
        return "an introduction to an executive sponsor, through the champion"
    return "an introduction to an executive sponsor and a champion"


def percentile_words(p: float | None) -> str:
    """A percentile as words: "71st percentile", or that there is no benchmark."""
    return "no benchmark" if p is None else f"{ordinal(whole_percentile(p))} percentile"


def peer_group(segment: object, tier: object) -> str:
    """Peers in words: "mid market accounts on the professional tier"."""
    who = f"{code(segment)} accounts" if not missing(segment) else "accounts of no known segment"
    return who + (f" on the {code(tier)} tier" if not missing(tier) else " of no known tier")


def benchmark_sentence(
    label: str, value: str, percentile: float | None, peers: int, group: str, minimum: int
) -> str:
    """A benchmark in words: "Seat use 62%: 71st percentile of 143 ... accounts"."""
    if value == "no data":
        return f"{label}: no data for this account, so no benchmark."
    if percentile is None:
        return (
            f"{label} {value}: no benchmark, only {peers} {group} with a value "
            f"(at least {minimum} needed)."
        )
    return f"{label} {value}: {percentile_words(percentile)} of {peers} {group}."


def change_words(feature: str, delta: float, span: str) -> str:
    """A change of a value over a span: "up 12 points over the quarter", "flat over the year"."""
    unit = FEATURE_BY_NAME[feature].unit
    if unit in ("share", "change"):
        size = f"{abs(delta) * 100:.0f} points"
    elif unit.startswith("NPS"):
        size = f"{abs(delta):.0f} points"
    else:
        size = f"{abs(delta):,.1f}".removesuffix(".0")
    if size in ("0 points", "0"):
        return f"flat over the {span}"
    if size == "1 points":  # "down 1 point", never "down 1 points"
        size = "1 point"
    return f"{'up' if delta > 0 else 'down'} {size} over the {span}"


def renewal_note(stage: object, renewal: object) -> str | None:
    """What to know about the renewal plan beyond its dates, or None."""
    if missing(renewal):
        return "No contract end date on record: no renewal plan to date."
    if stage == "monthly_rolling":
        return "Monthly rolling contract: it can end any month; the plan is the next renewal's."
    if stage == "t_plus_30":
        return "Just renewed: the post-renewal stage of the last renewal applies now."
    return None


def target_words(value: float | None, target: float, above: bool) -> str:
    """Whether a KPI meets its target: "met" or "missed" (or no data)."""
    if missing(value):
        return "no data"
    return "met" if (value > target if above else value < target) else "missed"


# The monitor's verdict as the /ui/monitor page says it.
VERDICT_WORDS = {
    "ok": "OK: the predictions are coming true and the inputs are stable",
    "watch": "Watch: something moved; the reasons say what",
    "retrain": "Retrain: the predictions no longer match what happens",
}


def verdict_words(level: str) -> str:
    """A monitor verdict (ok, watch, retrain) in words."""
    return VERDICT_WORDS.get(level, level)


def verdict_banner(level: str, left_out: int | None) -> str:
    """The monitor's banner: the verdict, never "stable" while checks above a line are left out.

    ``left_out`` counts the checks above their own line that the verdict does not count (each
    listed with why under the banner); None for a report that did not list them.
    """
    if level != "ok":
        return verdict_words(level)
    if left_out is None:
        return (
            "OK: no check of the verdict calls for action (this report does not list the checks "
            "it leaves out: run `radar monitor` again to see them)"
        )
    if left_out:
        return (
            f"OK: no check of the verdict calls for action, but {left_out} finding(s) above "
            "their own line are left out of it; each is listed below with why"
        )
    return verdict_words(level)
