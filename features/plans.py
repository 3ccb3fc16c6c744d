"""Plan names and billing terms as billing systems have them, read as tiers and terms.

Plans are free text ("Basic", "Team 2024", "enterprise"): a name that is a tier (any case,
spaces or hyphens as underscores) is that tier, others are mapped by the features config's
``plan_tiers``, and the rest have no tier (their tier-based features are then missing).
Terms are ``billing_term`` (monthly / annual / multi-year) or ``billing_term_months``
(any whole number of months); the months decide where both are given.
"""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd

from features.contract import Dataset, Tables
from features.schema import PLAN_TIERS
from features.words import name_list

log = logging.getLogger(__name__)


def _norm(text: pd.Series) -> pd.Series:
    return text.astype("str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)


def plan_tiers(plan: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """The tier of each plan name: itself when it is a tier, else ``mapping``'s, else missing."""
    norm = _norm(plan)
    table = {k.strip().lower().replace(" ", "_").replace("-", "_"): v for k, v in mapping.items()}
    tier = norm.where(norm.isin(PLAN_TIERS), norm.map(table))
    return tier.where(plan.notna()).astype("str")


# Months of a named term (multi-year says no length: missing unless the months are given).
TERM_MONTHS = {"monthly": 1, "annual": 12}


def term_months(term: pd.Series, months: pd.Series | None = None) -> pd.Series:
    """The term's length in months: ``billing_term_months`` where given, else the named term's."""
    named = term.astype("object").map(TERM_MONTHS).astype("float64")
    if months is None:
        return named
    given = pd.to_numeric(months, errors="coerce").astype("float64")
    return given.where(given.notna(), named)


def term_from_months(months: pd.Series) -> pd.Series:
    """Monthly (1), annual (12), multi_year (over 12); other lengths have no named term."""
    m = pd.to_numeric(months, errors="coerce")
    out = pd.Series(pd.NA, index=months.index, dtype="str")
    out[(m == 1).fillna(False).to_numpy()] = "monthly"
    out[(m == 12).fillna(False).to_numpy()] = "annual"
    out[(m > 12).fillna(False).to_numpy()] = "multi_year"
    return out


def with_tiers_and_terms(ds: Dataset, mapping: dict[str, str]) -> Dataset:
    """``ds`` with ``subscriptions.plan_tier`` read as tiers and ``billing_term`` filled in."""
    if not ds.has("subscriptions") or not isinstance(ds.tables, Tables):
        return ds
    subs = ds["subscriptions"]
    tier = plan_tiers(subs["plan_tier"], mapping)
    unknown = subs.loc[tier.isna() & subs["plan_tier"].notna(), "plan_tier"].unique()
    if len(unknown):
        log.warning(
            "%d plan(s) with no tier (add them to plan_tiers in the features config): %s",
            len(unknown),
            name_list(unknown),
        )
    term = subs["billing_term"]
    if "billing_term_months" in subs:
        months = subs["billing_term_months"]
        term = term_from_months(months).where(months.notna(), term)
    fixed = subs.assign(plan_tier=tier, billing_term=term.astype("str"))
    return dataclasses.replace(ds, tables=ds.tables.replaced("subscriptions", fixed))
