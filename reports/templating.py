"""The one Jinja environment factory of every document: the pages, the brief, the KPI page.

The shared layout (``base.html``) and the documents that are also written as files (brief,
KPIs, monitor) live in ``reports/templates``; the service's pages add their own folder in front.
Every environment gets the same filters, so a money amount or a percentage reads the same on a
page and in a brief.
"""

from __future__ import annotations

import functools
import math

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from features import words as w
from features.catalogue import (
    ARR_AT_RISK,
    CHURN_HEAD,
    EXPANSION_ARR,
    EXPANSION_HEAD,
    HEADLINE_HORIZON,
    SATISFACTION_WINDOW_DAYS,
)
from reports.links import account_url


def figure(value, kind: str = "num") -> str:
    """A figure of a report table: a dash for none or not finite, else by ``kind``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    formats = {"pct": "{:.1%}", "pct0": "{:.0%}", "money": "${:,.0f}", "int": "{:,.0f}"}
    if kind == "text":
        return str(value)
    return formats.get(kind, "{:.3f}").format(value)


FILTERS = {
    "money": w.money,
    "signed_money": w.signed_money,
    "arr": w.arr_words,
    "arr_of": w.arr_of,
    "pct": w.pct,
    "robustness": w.robustness_words,
    "words": w.code,
    "owner": w.owner,
    "alert": w.alert_words,
    "trigger": w.trigger,
    "play": w.play_name,
    "customer_step": w.customer_step,
    "dated": w.dated_text,
    "signed_points": w.signed_points,
    "signed": w.signed,
    "verdict": w.verdict_words,
    "outcome": w.outcome_words,
    "day": lambda v: w.DASH if v is None else w.day(v),
    "ordinal": lambda p: w.DASH if p is None else w.ordinal(w.whole_percentile(p)),
    "figure": figure,
    "account_url": account_url,  # any id as one path segment of a link
    "satisfaction": lambda head: w.SATISFACTION_WORDS.get(head, head),
}


# The headline heads and horizon of the catalogue, for the templates (``headline.churn``, ...).
HEADLINE = {
    "churn": CHURN_HEAD,
    "expansion": EXPANSION_HEAD,
    "days": HEADLINE_HORIZON,
    "arr_at_risk": ARR_AT_RISK,
    "expansion_arr": EXPANSION_ARR,
}


@functools.cache
def environment(*packages: str, trim: bool = True) -> Environment:
    """The templates of ``packages`` (searched first, in order), then ``reports``' own.

    HTML is escaped, Markdown is not. ``trim`` drops the newline after a block tag (the
    Markdown brief needs it; the pages keep Jinja's default).
    """
    loaders = [PackageLoader(p, "templates") for p in (*packages, "reports")]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"], default_for_string=False, default=False),
        trim_blocks=trim,
        lstrip_blocks=trim,
    )
    env.filters.update(FILTERS)
    env.globals["headline"] = HEADLINE
    env.globals["satisfaction_days"] = SATISFACTION_WINDOW_DAYS
    return env
