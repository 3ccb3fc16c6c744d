"""The CS leader's portfolio KPIs: realised retention beside the expected, health against targets.

Realised figures come from the contract history (``subscriptions``) only, over a trailing
window ending at the date: the cohort is every account with ARR at the window's start.

- GRR = sum over the cohort of min(ARR at the end, ARR at the start) / ARR at the start;
- NRR = ARR at the end / ARR at the start (expansions included, new logos not);
- logo retention = share of the cohort with ARR at the end; churn rate = 1 - logo retention;
- expansion rate = share of the cohort with an expansion row in the window.

Expected figures for the coming quarter come from the scoring records (the portfolio summary
of :func:`scoring.records.portfolio_summary`: GRR = 1 - expected churned ARR / ARR, NRR adds the
expected expansion ARR; logo churn = mean headline (90-day) churn probability; expansion =
mean headline expansion probability). Expected GRR counts churned ARR only: contractions are
not modelled, so it is an upper bound on the quarter's GRR. Targets are the seeds' (001, 003):
more than 70% green, less than 10% red, GRR above 90%, NRR above 110%, all annual: the
quarter's expected GRR and NRR are annualised (compounded over four quarters, ``q ** 4``)
before they are compared with them, so a quarter's 102.6% NRR reads as 110.8% a year.

The dollar bridge says where the ARR went: starting ARR - churned - contracted + expanded =
ending ARR of the cohort (net per account over the window), then new or returning logos;
the expected one leaves contractions out, as the model does.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from pydantic import BaseModel

from features import words as w
from features.catalogue import CHURN_HEAD, EXPANSION_HEAD, HEADLINE_HORIZON
from reports.brief import Portfolio
from reports.charts import panels
from reports.templating import environment
from scoring.records import portfolio_summary

BANDS = ("green", "yellow", "red")
TREND_QUARTERS = 4
QUARTERS_A_YEAR = 4  # a quarter's rate compounded over a year: the targets are annual
NO_OWNER = "tech touch"


class Targets(BaseModel):
    """The seeds' portfolio targets."""

    green_share_above: float = 0.70
    red_share_below: float = 0.10
    grr_above: float = 0.90
    nrr_above: float = 1.10


class Bridge(BaseModel):
    """Where the ARR went: start - churned - contracted + expanded = end (the cohort's).

    ``contracted`` is None where it is not modelled (the expected quarter); ``new_arr`` (new
    or returning logos, outside the cohort and so outside GRR and NRR) is None there too.
    """

    start_arr: float
    churned: float | None  # None: the model lacks the churn head (absent, never $0)
    contracted: float | None
    expanded: float | None  # None: the model lacks the expansion head
    end_arr: float | None
    new_arr: float | None = None


class Realised(BaseModel):
    """What happened over a trailing window."""

    start: date
    end: date
    accounts: int
    start_arr: float | None  # None: no account had ARR at the start (usage-only accounts)
    grr: float | None
    nrr: float | None
    logo_retention: float | None
    churn_rate: float | None
    expansion_rate: float | None
    bridge: Bridge | None = None  # None: no account had ARR at the start


class Expected(BaseModel):
    """What the model expects over the coming quarter."""

    accounts: int
    arr: float | None  # None: no account has ARR (usage-only accounts)
    without_arr: int = 0  # accounts with no ARR, left out of the ARR figures
    grr: float | None
    nrr: float | None
    churn_rate: float | None
    expansion_rate: float | None
    churned_arr: float | None  # None: no ARR, or the model lacks the head
    expansion_arr: float | None
    # The quarter's GRR and NRR compounded over four quarters: what the annual targets judge.
    grr_annualised: float | None = None
    nrr_annualised: float | None = None
    bridge: Bridge | None = None  # None: no ARR


class Health(BaseModel):
    """Health band shares of a group against the targets."""

    group: str
    accounts: int
    shares: dict[str, float]  # green, yellow, red, no score
    green_target: str  # met / missed
    red_target: str


class Quarter(BaseModel):
    """One quarter end of the trend."""

    as_of: date
    grr: float | None
    nrr: float | None
    green: float | None
    red: float | None


class Kpis(BaseModel):
    """The KPI view at one date."""

    as_of: date
    targets: Targets
    realised_year: Realised
    realised_quarter: Realised
    expected_quarter: Expected
    target_words: dict[str, str]
    health: Health
    by_segment: list[Health]
    by_owner: list[Health]
    trend: list[Quarter]


def arr_at(subs: pd.DataFrame, t: pd.Timestamp) -> pd.Series:
    """Each account's ARR in effect at ``t`` (the latest row starting on or before it)."""
    s = subs[subs["start_date"] <= t].sort_values(["account_id", "start_date"], kind="stable")
    last = s.groupby("account_id", sort=False).tail(1)
    return last.set_index("account_id")["arr"].astype("float64")


def annualised(quarter: float | None) -> float | None:
    """A quarter's retention compounded over a year (102.6% a quarter: 110.8% a year)."""
    return None if quarter is None else float(quarter**QUARTERS_A_YEAR)


def bridge(cohort: pd.Series, after: pd.Series, new_arr: float | None = None) -> Bridge:
    """The dollar bridge of a cohort: ARR at the start (``cohort``) to ARR at the end."""
    change = after - cohort
    return Bridge(
        start_arr=float(cohort.sum()),
        churned=float(cohort[after <= 0].sum()),
        contracted=float(-change[(after > 0) & (change < 0)].sum()),
        expanded=float(change[change > 0].sum()),
        end_arr=float(after.sum()),
        new_arr=new_arr,
    )


def realised(subs: pd.DataFrame | None, end: pd.Timestamp, days: int) -> Realised:
    """Realised GRR, NRR, logo retention, churn and expansion rate over ``days`` up to ``end``.

    Without a contract history (``subs`` None: no subscriptions table) every figure is None.
    """
    start = end - pd.Timedelta(days=days)
    if subs is None:
        return Realised(
            start=start.date(),
            end=end.date(),
            accounts=0,
            **dict.fromkeys(
                ("start_arr", "grr", "nrr", "logo_retention", "churn_rate", "expansion_rate")
            ),
        )
    before = arr_at(subs, start)
    cohort = before[before > 0]
    now = arr_at(subs, end)
    after = now.reindex(cohort.index).fillna(0.0)
    newcomers = now[~now.index.isin(cohort.index)]
    base = float(cohort.sum())
    window = subs[(subs["start_date"] > start) & (subs["start_date"] <= end)]
    grew = set(window.loc[window["change_type"] == "expansion", "account_id"])
    n = len(cohort)
    return Realised(
        start=start.date(),
        end=end.date(),
        accounts=n,
        start_arr=base if n else None,
        grr=float(np.minimum(after, cohort).sum() / base) if base else None,
        nrr=float(after.sum() / base) if base else None,
        logo_retention=float((after > 0).mean()) if n else None,
        churn_rate=float((after <= 0).mean()) if n else None,
        expansion_rate=float(cohort.index.isin(list(grew)).mean()) if n else None,
        bridge=bridge(cohort, after, float(newcomers[newcomers > 0].sum())) if base else None,
    )


def expected(records: pd.DataFrame) -> Expected:
    """The coming quarter as the scoring records expect it."""
    s = portfolio_summary(records)["all"]
    known = records["arr"].notna() if "arr" in records else pd.Series(False, index=records.index)
    churned = s[f"expected_churned_arr_{HEADLINE_HORIZON}d"]
    grown = s[f"expected_expansion_arr_{HEADLINE_HORIZON}d"]
    arr = s["arr"] if known.any() else None
    return Expected(
        accounts=s["accounts"],
        arr=arr,
        without_arr=int((~known).sum()),
        grr=s["expected_grr_next_quarter"],
        nrr=s["expected_nrr_next_quarter"],
        churn_rate=_mean(records, f"p_{CHURN_HEAD}"),
        expansion_rate=_mean(records, f"p_{EXPANSION_HEAD}"),
        churned_arr=churned,
        expansion_arr=grown,
        grr_annualised=annualised(s["expected_grr_next_quarter"]),
        nrr_annualised=annualised(s["expected_nrr_next_quarter"]),
        bridge=Bridge(
            start_arr=arr,
            churned=churned,
            contracted=None,  # not modelled
            expanded=grown,
            end_arr=None if churned is None or grown is None else arr - churned + grown,
        )
        if arr
        else None,
    )


def _mean(records: pd.DataFrame, column: str) -> float | None:
    """The mean of a probability column; None without rows, the head or any value."""
    if column not in records or not records[column].notna().any():
        return None
    return float(records[column].mean())


def judged(year: Realised, exp: Expected, targets: Targets) -> dict[str, str]:
    """GRR and NRR against the annual targets: the trailing year, the quarter annualised."""
    return {
        "realised_grr": w.target_words(year.grr, targets.grr_above, True),
        "realised_nrr": w.target_words(year.nrr, targets.nrr_above, True),
        # annual targets: the quarter's expectation annualised before it is judged
        "expected_grr": w.target_words(exp.grr_annualised, targets.grr_above, True),
        "expected_nrr": w.target_words(exp.nrr_annualised, targets.nrr_above, True),
    }


def health(group: str, bands: pd.Series, targets: Targets) -> Health:
    """Band shares of ``bands`` (missing: no score) against the targets."""
    b = bands.astype("object").where(bands.notna(), "no score")
    n = len(b)
    shares = {k: float((b == k).mean()) if n else 0.0 for k in (*BANDS, "no score")}
    return Health(
        group=group,
        accounts=n,
        shares=shares,
        green_target=w.target_words(
            shares["green"] if n else None, targets.green_share_above, True
        ),
        red_target=w.target_words(shares["red"] if n else None, targets.red_share_below, False),
    )


def compute_kpis(
    records: pd.DataFrame, portfolio: Portfolio, targets: Targets | None = None
) -> Kpis:
    """The KPI view at the portfolio's date, from the scoring records and the portfolio."""
    targets = targets or Targets()
    t = portfolio.as_of
    subs = portfolio.table("subscriptions")
    year, quarter = realised(subs, t, 365), realised(subs, t, 91)
    exp = expected(records)
    owners = records["csm_owner"].astype("object").where(records["csm_owner"].notna(), NO_OWNER)
    trend = []
    for k in range(TREND_QUARTERS - 1, -1, -1):
        when = pd.Timestamp(t - pd.DateOffset(months=3 * k))
        r = realised(subs, when, 365)
        snaps = portfolio.at(when)
        h = health("all", snaps["health_band"], targets) if len(snaps) else None
        trend.append(
            Quarter(
                as_of=when.date(),
                grr=r.grr,
                nrr=r.nrr,
                green=h.shares["green"] if h else None,
                red=h.shares["red"] if h else None,
            )
        )
    overall = health("all", records["health_band"], targets)
    return Kpis(
        as_of=t.date(),
        targets=targets,
        realised_year=year,
        realised_quarter=quarter,
        expected_quarter=exp,
        target_words=judged(year, exp, targets),
        health=overall,
        by_segment=[
            health(str(seg), g["health_band"], targets)
            for seg, g in records.groupby("segment", sort=True)
        ],
        by_owner=[
            health(str(o), g["health_band"], targets) for o, g in records.groupby(owners, sort=True)
        ],
        trend=trend,
    )


def trend_svg(kpis: Kpis) -> str:
    """Inline SVG: trailing GRR and NRR and the green / red shares at the last quarter ends."""
    t, q = kpis.targets, kpis.trend
    retention = [
        ("GRR (trailing year)", "#2b6cb0", [x.grr for x in q], t.grr_above),
        ("NRR (trailing year)", "#2f855a", [x.nrr for x in q], t.nrr_above),
    ]
    bands = [
        ("green", "#2f855a", [x.green for x in q], t.green_share_above),
        ("red", "#c0392b", [x.red for x in q], t.red_share_below),
    ]
    return panels(
        [x.as_of.isoformat() for x in q],
        [
            ("Retention (dashed: targets)", "% of starting ARR", retention),
            ("Health bands (dashed: targets)", "% of accounts", bands),
        ],
    )


def render_kpis_html(kpis: Kpis, root: str | None = None, model: str | None = None) -> str:
    """The KPI page; ``root`` None for a file (no link back to the portfolio pages)."""
    page = environment().get_template("kpis.html")
    back = root is not None
    return page.render(k=kpis, chart=trend_svg(kpis), root=root or "", back=back, model=model)
