"""Simulate a B2B SaaS customer base and write it in the data contract's format.

Each account carries a latent monthly health (see :mod:`features.synthetic.process`). Churn,
expansion and contraction are drawn at monthly anniversaries from that health; every observed
table is a noisy consequence of it. The latent state, the shocks and the oracle probabilities
are written under ``ground_truth/`` and are never read by features or training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from features.catalogue import TEXT_TOPICS
from features.schema import (
    BILLING_TERMS,
    CONTACT_ROLES,
    ENGAGEMENT_KINDS,
    PLAN_TIERS,
    SEGMENTS,
    SEVERITIES,
    TABLES,
)
from features.synthetic.calendar import DAY, anniversary, month_end, month_index, month_start
from features.synthetic.intent import draw_intent, showing
from features.synthetic.plays import PlayPolicy, PlayRecord, recent_shocks
from features.synthetic.plays import offsets as play_offsets
from features.synthetic.process import (
    PRODUCT_FEATURES,
    SHOCKS,
    TIER_FEATURE_COUNT,
    SyntheticConfig,
    churn_probability,
    contraction_probability,
    expansion_probability,
    observed_utilisation,
    seat_utilisation,
    sigmoid,
)
from features.synthetic.text import nps_comment, ticket_text, tone_names

log = logging.getLogger(__name__)

TERM_MONTHS = np.array([1, 12, 24])  # monthly, annual, multi_year (36 for some, see below)
ROLE = {r: i for i, r in enumerate(CONTACT_ROLES)}
_INDUSTRIES = (
    "software",
    "financial_services",
    "healthcare",
    "retail",
    "manufacturing",
    "education",
    "media",
    "logistics",
    "public_sector",
    "professional_services",
)
_REGIONS = ("north_america", "emea", "apac", "latam")
_NAME_A = (
    "Blue",
    "North",
    "Bright",
    "Silver",
    "Summit",
    "Clear",
    "Iron",
    "Green",
    "Swift",
    "Cedar",
    "Harbor",
    "Atlas",
    "Nova",
    "Pioneer",
    "Quartz",
    "Red",
    "Lumen",
    "Vertex",
)
_NAME_B = (
    "Harbor",
    "Labs",
    "Systems",
    "Logistics",
    "Health",
    "Analytics",
    "Foods",
    "Capital",
    "Networks",
    "Works",
    "Dynamics",
    "Partners",
    "Retail",
    "Energy",
    "Media",
    "Bio",
)
_NAME_C = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Co", "SA", "AG")
_MILESTONES = (
    "Go-live",
    "Team onboarded",
    "First workflow automated",
    "Executive dashboard adopted",
    "ROI review passed",
    "Integration live",
    "Department rollout",
)


@dataclass
class World:
    """The simulated truth: static account traits, the latent path and the decisions.

    Month ``j`` of the arrays is calendar month ``first_month + j``. ``x`` is NaN where the
    account is not a customer for that month.
    """

    cfg: SyntheticConfig
    first_month: int
    n_months: int
    segment: np.ndarray
    term: np.ndarray
    term_months: np.ndarray
    customer_since: np.ndarray  # datetime64[D]
    mu: np.ndarray
    growth: np.ndarray
    onboarding: np.ndarray  # 1 success, 0 failure, -1 existing customer at window start
    x: np.ndarray  # (n, months) latent deviation; health = mu + x
    shocks: np.ndarray  # (n, months, len(SHOCKS)) bool
    churn_date: np.ndarray  # datetime64[D], NaT if still a customer at the end
    expansion_dates: list[np.ndarray] = field(default_factory=list)  # per account
    plays: PlayRecord | None = None  # plays started, when the world simulates them
    # Onset month of the intent to leave of each (account, decision month), -1: none; None
    # when the world has no intents (features.synthetic.intent).
    intent_onset: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of accounts."""
        return len(self.segment)

    @property
    def window_start(self) -> np.datetime64:
        """First day of data."""
        return month_start(self.first_month)

    @property
    def window_end(self) -> np.datetime64:
        """Last day of data."""
        return month_end(self.first_month + self.n_months - 1)

    def account_ids(self) -> np.ndarray:
        """Account id strings, index-aligned."""
        return np.char.add("A", np.char.zfill(np.arange(1, self.n + 1).astype(str), 6))


class _Rows:
    """Collects column chunks for one table and concatenates them once."""

    def __init__(self, columns: list[str]):
        self.chunks: dict[str, list[np.ndarray]] = {c: [] for c in columns}

    def add(self, **cols: np.ndarray) -> None:
        for c, v in cols.items():
            self.chunks[c].append(np.asarray(v))

    def frame(self) -> dict[str, np.ndarray]:
        filled = {c: v for c, v in self.chunks.items() if v}
        if not filled:  # nothing happened: typed empty columns come from the first add
            return {c: np.array([]) for c in self.chunks}
        return {c: np.concatenate(v) for c, v in filled.items()}


def _rand_days(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A uniform random day in [lo, hi] (datetime64[D] arrays, hi >= lo)."""
    span = (hi - lo).astype(np.int64) + 1
    return lo + (rng.random(len(lo)) * span).astype(np.int64).astype("timedelta64[D]")


class Simulator:
    """Runs the monthly simulation and writes the contract tables."""

    def __init__(self, n_accounts: int, n_months: int, seed: int, cfg: SyntheticConfig):
        if n_accounts < 1 or n_months < 1:
            raise ValueError("need at least one account and one month")
        self.cfg = cfg
        self.n, self.M = n_accounts, n_months
        ss = np.random.SeedSequence(seed)
        # Separate streams: tuning how tables look never changes the latent path or decisions.
        self.rng_latent, self.rng_decide, self.rng_obs = (
            np.random.default_rng(s) for s in ss.spawn(3)
        )
        self.m0 = int(month_index(np.datetime64(cfg.start, "D")))
        # A fourth stream for plays: with plays off the first three draw exactly as before.
        self.rng_plays = np.random.default_rng(ss.spawn(1)[0])
        # A fifth for ticket and survey text: with text off or on, the rest is the same.
        self.rng_text = np.random.default_rng(ss.spawn(1)[0])
        # A sixth for intents to leave: with intents off, nothing else draws differently.
        self.rng_intent = np.random.default_rng(ss.spawn(1)[0])
        self.intent_onset: np.ndarray | None = None
        self.text_truth: pd.DataFrame | None = None
        self.policy: PlayPolicy | None = None

    # ----------------------------------------------------------------- accounts
    def _accounts(self) -> None:
        cfg, rng, n = self.cfg, self.rng_latent, self.n
        self.seg = rng.choice(3, size=n, p=np.asarray(cfg.segment_mix))
        tier_p = np.array([[0.0, 0.3, 0.7], [0.15, 0.7, 0.15], [0.55, 0.45, 0.0]])
        term_p = np.array([[0.0, 0.6, 0.4], [0.1, 0.8, 0.1], [0.5, 0.5, 0.0]])
        u = rng.random((n, 2))
        self.tier = (u[:, :1] > np.cumsum(tier_p[self.seg], axis=1)).sum(axis=1)
        self.term = (u[:, 1:] > np.cumsum(term_p[self.seg], axis=1)).sum(axis=1)
        self.term_months = TERM_MONTHS[self.term].copy()
        self.term_months[(self.term == 2) & (rng.random(n) < 0.4)] = 36
        lat = cfg.latent
        self.mu = np.asarray(lat.mu_by_segment)[self.seg] + lat.mu_sd * rng.standard_normal(n)
        self.growth = rng.standard_normal(n)
        existing = rng.random(n) < cfg.existing_share
        anchor = rng.integers(1, 29, size=n)
        # Existing customers joined 1 month to 6 years before the window; new ones during it.
        tenure_m = np.clip(np.round(rng.gamma(1.6, 16.0, size=n)), 1, 72).astype(np.int64)
        join_month = np.where(
            existing, self.m0 - tenure_m, self.m0 + rng.integers(0, self.M, size=n)
        )
        self.since = anniversary(join_month, anchor)
        self.anchor = anchor
        self.join_month = join_month
        success = rng.random(n) < np.asarray(lat.onboarding_success)[self.seg]
        self.onboarding = np.where(existing, -1, success.astype(np.int64))
        ok_m, ok_s = lat.onboarding_success_x
        bad_m, bad_s = lat.onboarding_failure_x
        z = rng.standard_normal(n)
        self.x_initial = np.where(
            existing,
            lat.existing_x_mean + lat.existing_x_sd * z,
            np.where(success, ok_m + ok_s * z, bad_m + bad_s * z),
        )
        obs = cfg.observation
        seats = np.asarray(obs.seats_median)[self.seg] * np.exp(
            obs.seats_sd_log * self.rng_obs.standard_normal(n)
        )
        self.seats = np.maximum(np.round(seats), 1).astype(np.int64)
        self.arr = self.seats * np.asarray(obs.price_per_seat)[self.tier]
        # Per-account preference order of product features (dashboards always first).
        pref = self.rng_obs.random((n, len(PRODUCT_FEATURES)))
        pref[:, 0] = -1.0
        self.feature_order = np.argsort(pref, axis=1)

    # ----------------------------------------------------------------- main loop
    def run(
        self, progress: Callable[[str, int, int], None] | None = None
    ) -> tuple[World, dict[str, pa.Table], pa.Table | None]:
        """Simulate every month; return the world, the contract tables and the usage table.

        Args:
            progress: Called as ``progress(description, done, total)`` after each month.

        """
        self._accounts()
        n, M, cfg = self.n, self.M, self.cfg
        if cfg.intent.enabled:
            self.intent_onset = draw_intent(
                self.rng_intent,
                cfg.intent,
                self.term,
                self.term_months,
                self.join_month,
                self.m0,
                M,
            )
        self.intending = np.zeros(n, bool)
        lat = cfg.latent
        x = np.full((n, M), np.nan)
        shocks = np.zeros((n, M, len(SHOCKS)), dtype=bool)
        churn = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        expansions: list[list[np.datetime64]] = [[] for _ in range(n)]
        self.contacts = _Contacts(self)
        self.usage_parts: list[pa.Table] = []
        text = ["_tone", "_topic", "_intent"]  # the truth of each text, for the ground truth
        self.rows = {
            name: _Rows(TABLES[name].column_names + (text if name in _TEXT_TABLES else []))
            for name in (
                "subscriptions",
                "support_tickets",
                "nps_responses",
                "engagement",
                "invoices",
                "weekly_active_users",
            )
        }
        self.milestone_rows = _Rows(TABLES["milestones"].column_names)
        self.pending_ms: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._opening_subscriptions()
        if cfg.plays.enabled:
            self.policy = PlayPolicy(cfg, n, self.rng_plays)
        budget_cut_month = np.full(n, -99)
        prev = np.full(n, np.nan)
        for j in range(M):
            m = self.m0 + j
            mstart, mend = month_start(m), month_end(m)
            started = self.join_month <= m
            alive = started & (np.isnat(churn) | (churn > mstart))
            first = alive & (np.isnan(prev))
            cont = alive & ~first
            jumps = self.rng_latent.random((n, len(SHOCKS))) < np.asarray(lat.shock_rate)
            jumps[~cont] = False
            eps = self.rng_latent.standard_normal(n)
            xj = np.where(
                first,
                self.x_initial,
                lat.phi * prev + lat.sigma * eps + jumps @ np.asarray(lat.shock_size),
            )
            xj[~alive] = np.nan
            x[:, j] = xj
            shocks[:, j] = jumps
            budget_cut_month[jumps[:, SHOCKS.index("budget_cut")]] = j
            h = self.mu + np.nan_to_num(xj)

            # Decision at this month's anniversary (k months after joining, k >= 1).
            k = m - self.join_month
            d_date = anniversary(np.full(n, m), self.anchor)
            decide = alive & (k >= 1)
            is_renewal = (k % self.term_months) == 0
            tenure = k / 12.0
            u = self.rng_decide.random((n, 3))
            oc, oe = self._plays(j, m, cont, prev, shocks)
            if self.intent_onset is not None:  # a renewal with or without an intent to leave
                ip = cfg.intent
                with_intent = np.where(self.intent_onset[:, j] >= 0, ip.churn_logit, 0.0)
                oc = oc + np.where(is_renewal, with_intent, 0.0)
                oc = oc + np.where(is_renewal & (with_intent == 0), ip.churn_logit_without, 0.0)
                self.intending = showing(self.intent_onset, self.m0, m)
            pc = churn_probability(cfg, h, self.seg, self.term, tenure, is_renewal, m, oc)
            pe = expansion_probability(cfg, h, self.growth, self.seg, is_renewal, oe)
            pk = contraction_probability(cfg, h)
            churned = decide & (u[:, 0] < pc)
            expanded = decide & ~churned & (u[:, 1] < pe)
            contracted = decide & ~churned & ~expanded & is_renewal & (u[:, 2] < pk)
            renewed = decide & ~churned & ~expanded & ~contracted & is_renewal
            churn[churned] = d_date[churned]
            for i in np.flatnonzero(expanded):
                expansions[i].append(d_date[i])
            seats_before = self.seats.copy()
            self._decisions(d_date, churned, expanded, contracted, renewed, is_renewal, h)

            # Active interval of each account this month.
            lo = np.maximum(mstart, self.since)
            hi = np.where(np.isnat(churn) | (churn > mend), mend, churn - DAY)
            active = alive & (hi >= lo)
            # Health a month ago, for the tone of what customers write (falls: frustration).
            self.h_change = np.where(np.isnan(prev), 0.0, np.nan_to_num(xj) - prev)
            self._observe(
                j,
                m,
                active,
                lo,
                hi,
                h,
                jumps,
                seats_before,
                d_date,
                budget_cut_month,
                k,
                decide & ~churned,
            )
            prev = np.where(alive & ~churned, xj, np.nan)
            prev[churned] = np.nan
            if progress:
                progress("simulating months", j + 1, M)
            log.debug("simulated month %d/%d", j + 1, M)
        self._settle_milestones(None)
        world = World(
            cfg,
            self.m0,
            M,
            self.seg,
            self.term,
            self.term_months,
            self.since,
            self.mu,
            self.growth,
            self.onboarding,
            x,
            shocks,
            churn,
            [np.array(e, dtype="datetime64[D]") for e in expansions],
            self.policy.record() if self.policy else None,
            self.intent_onset,
        )
        self.world = world
        tables = self._finish_tables(world)
        usage = pa.concat_tables(self.usage_parts) if self.usage_parts else None
        return world, tables, usage

    def _plays(
        self, j: int, m: int, cont: np.ndarray, prev: np.ndarray, shocks: np.ndarray
    ) -> tuple[np.ndarray | float, np.ndarray | float]:
        """Start this month's plays (from last month's state); logit offsets of plays running."""
        if self.policy is None:
            return 0.0, 0.0
        if j > 0:
            health = self.mu + np.nan_to_num(prev)
            recent = recent_shocks(shocks, j - 1)
            self.policy.month(m, cont, health, self.growth, self.arr, recent)
        return play_offsets(self.cfg.plays, self.policy.record(), self.n, m)

    # ----------------------------------------------------------------- contracts
    def _opening_subscriptions(self) -> None:
        """Rows for contracts in force at the window start, and for accounts joining later."""
        window_start = month_start(self.m0)
        k_now = self.m0 - self.join_month  # months since joining at window start
        # Current term start: last term anniversary at or before the window start.
        k_term = np.where(k_now > 0, (k_now // self.term_months) * self.term_months, 0)
        start = anniversary(self.join_month + k_term, self.anchor)
        # An anniversary on or after the window start is simulated as a decision, so the term
        # in force at the start is the one before it. Monthly plans keep one open-ended row.
        late = (k_now > 0) & (start >= window_start)
        k_term = np.where(late, k_term - self.term_months, k_term)
        k_term = np.where(self.term == 0, 0, k_term)
        start = anniversary(self.join_month + k_term, self.anchor)
        kind = np.where(k_term == 0, "new", "renewal")
        self.term_end = anniversary(self.join_month + k_term + self.term_months, self.anchor) - DAY
        self._sub_rows(np.ones(self.n, bool), start, kind)

    def _sub_rows(self, mask: np.ndarray, start: np.ndarray, kind: np.ndarray | str) -> None:
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return
        kind_arr = np.broadcast_to(np.asarray(kind, dtype=object), (self.n,))[idx]
        is_churn = kind_arr == "churn"
        monthly = self.term[idx] == 0
        end = np.where(monthly | is_churn, np.datetime64("NaT"), self.term_end[idx])
        self.rows["subscriptions"].add(
            account_id=idx,
            start_date=start[idx],
            end_date=end.astype("datetime64[D]"),
            arr=np.where(is_churn, 0.0, self.arr[idx]),
            seats=np.where(is_churn, 0, self.seats[idx]),
            plan_tier=np.asarray(PLAN_TIERS, dtype=object)[self.tier[idx]],
            billing_term=np.asarray(BILLING_TERMS, dtype=object)[self.term[idx]],
            change_type=kind_arr,
        )

    def _decisions(self, d_date, churned, expanded, contracted, renewed, is_renewal, h) -> None:
        rng = self.rng_obs
        n = self.n
        new_term = (expanded | contracted | renewed) & is_renewal
        self.term_end = np.where(
            new_term,
            anniversary(month_index(d_date) + self.term_months, self.anchor) - DAY,
            self.term_end,
        )
        old_arr = self.arr.copy()
        # Expansion: seat add (likelier when seats are full), tier upgrade, or cross-sell.
        util = seat_utilisation(self.cfg, h, self.growth)
        kind = rng.random(n)
        seat_add = expanded & ((kind < 0.45 + 0.4 * util) | (self.tier == 2))
        upgrade = expanded & ~seat_add & (kind < 0.85 + 0.1 * util) & (self.tier < 2)
        cross = expanded & ~seat_add & ~upgrade
        # ARR moves by the negotiated change, not list price: seats pro rata, an upgrade or a
        # cross-sell by a discounted uplift.
        add = np.maximum(np.round(self.seats * rng.uniform(0.05, 0.25, n)), 1).astype(np.int64)
        cut = np.maximum(np.round(self.seats * rng.uniform(0.1, 0.35, n)), 1).astype(np.int64)
        new_seats = np.where(
            seat_add,
            self.seats + add,
            np.where(contracted, np.maximum(self.seats - cut, 1), self.seats),
        )
        factor = np.where(seat_add | contracted, new_seats / self.seats, 1.0)
        factor = np.where(upgrade, rng.uniform(1.15, 1.35, n), factor)
        factor = np.where(cross, rng.uniform(1.05, 1.2, n), factor)
        self.arr = np.round(self.arr * factor, 2)
        self.seats = new_seats
        self.tier = np.where(upgrade, self.tier + 1, self.tier)
        for mask, kind_name in (
            (churned, "churn"),
            (expanded, "expansion"),
            (contracted, "contraction"),
            (renewed, "renewal"),
        ):
            self._sub_rows(mask, d_date, kind_name)
        # Mid-term expansions bill the rest of the term pro rata (annual / multi-year).
        self.prorata = np.where(
            expanded & ~is_renewal & (self.term > 0),
            (self.arr - old_arr) * ((self.term_end - d_date).astype(np.int64) / 365.0),
            0.0,
        )

    # ----------------------------------------------------------------- observations
    def _observe(
        self, j, m, active, lo, hi, h, jumps, seats_before, d_date, budget_month, k, kept
    ) -> None:
        self._usage(m, active, lo, hi, h, seats_before)
        self._weekly_active(m, active, lo, hi, h)
        self._tickets(active, lo, hi, h, jumps[:, SHOCKS.index("product_incident")])
        self.contacts.month(j, active, lo, hi, h, jumps)
        self._nps(m, active, lo, hi, h)
        self._engagement(k, active, lo, hi, h)
        self._invoices(j, k, active, kept, d_date, h, budget_month)
        self._milestones(m, k, active, kept, d_date, h)

    def _usage(self, m, active, lo, hi, h, seats) -> None:
        rng = self.rng_obs
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            return
        util = observed_utilisation(
            self.cfg, seat_utilisation(self.cfg, h[idx], self.growth[idx]), m
        )
        n_feat = np.asarray(TIER_FEATURE_COUNT)[self.tier[idx]]
        adopt_p = sigmoid(0.2 + 1.1 * h[idx] + np.array([0.6, 0.3, -0.2])[self.seg[idx]])
        n_adopt = np.maximum(rng.binomial(n_feat, adopt_p), 1)
        # Rank r of each account's adopted features (its preference order within its tier).
        order = self.feature_order[idx]
        allowed = order < n_feat[:, None]
        rank = np.cumsum(allowed, axis=1) - 1
        use = allowed & (rank < n_adopt[:, None])
        a_pos, f_pos = np.nonzero(use)
        feat = order[a_pos, f_pos]
        r = rank[a_pos, f_pos]
        days = np.arange(month_start(m), month_end(m) + DAY, DAY)
        weekday = (days.astype(np.int64) + 3) % 7  # 0 = Monday
        day_factor = np.where(weekday < 5, 1.0, 0.05)
        in_range = (days[None, :] >= lo[idx][a_pos, None]) & (days[None, :] <= hi[idx][a_pos, None])
        lam = (seats[idx][a_pos] * util[a_pos] * 0.5 * 0.45 * 0.7**r)[:, None] * day_factor
        users = rng.poisson(np.where(in_range, lam, 0.0))
        p_i, d_i = np.nonzero(users)
        u = users[p_i, d_i]
        depth = np.exp(1.5 + 0.3 * h[idx][a_pos[p_i]])
        events = u + rng.poisson(u * depth)
        self.usage_parts.append(
            pa.table(
                {
                    "account_id": pa.array(idx[a_pos[p_i]].astype(np.int32)),
                    "date": pa.array(days[d_i]),
                    "feature": pa.array(feat[p_i].astype(np.int8)),
                    "active_users": pa.array(u.astype(np.int32)),
                    "events": pa.array(events.astype(np.int32)),
                }
            )
        )

    def _weekly_active(self, m, active, lo, hi, h) -> None:
        rng = self.rng_obs
        days = np.arange(month_start(m), month_end(m) + DAY, DAY)
        mondays = days[(days.astype(np.int64) + 3) % 7 == 0]
        idx = np.flatnonzero(active)
        util = observed_utilisation(
            self.cfg, seat_utilisation(self.cfg, h[idx], self.growth[idx]), m
        )
        for mon in mondays:
            ok = (lo[idx] <= mon + 6 * DAY) & (hi[idx] >= mon)
            a = idx[ok]
            p = np.clip(util[ok] * np.exp(0.08 * rng.standard_normal(len(a))), 0, 1)
            self.rows["weekly_active_users"].add(
                account_id=a,
                week_start=np.full(len(a), mon),
                active_users=rng.binomial(self.seats[a], p),
            )

    def _tickets(self, active, lo, hi, h, incident) -> None:
        rng = self.rng_obs
        base = np.asarray(self.cfg.observation.tickets_per_month)[self.seg]
        size = (self.seats / np.asarray(self.cfg.observation.seats_median)[self.seg]) ** 0.3
        lam = base * size * np.exp(-0.45 * h) * active
        n_norm = rng.poisson(lam)
        n_inc = rng.poisson(np.where(incident & active, 1.5 + 2.0 * base, 0.0))
        n_int = 0  # questions of an account intending to leave (renewal terms, data export)
        if self.intent_onset is not None:
            rate = self.cfg.intent.tickets_per_month * (self.intending & active)
            n_int = self.rng_intent.poisson(rate)
        n_norm = n_norm + n_int  # drawn last, so the rest of the month draws as without
        count = n_norm + n_inc
        acct = np.repeat(np.arange(self.n), count)
        if len(acct) == 0:
            return
        # Within each account's block of tickets, the incident ones come after the others.
        within = np.arange(len(acct)) - np.repeat(np.cumsum(count) - count, count)
        from_incident = within >= n_norm[acct]
        # The intent's own tickets close each account's block of ordinary ones.
        from_intent = (within >= (n_norm - n_int)[acct]) & ~from_incident
        hh = h[acct]
        created = _rand_days(rng, lo[acct], hi[acct])
        score = -0.4 * hh + rng.standard_normal(len(acct)) + 2.0 * from_incident
        sev = np.searchsorted(np.array([0.4, 1.4, 2.4]), score)
        esc = rng.random(len(acct)) < sigmoid(-3.2 + 1.2 * (sev >= 2) + 1.2 * (sev == 3) - 0.6 * hh)
        days = np.ceil(
            np.exp(np.log(1.0 + 2.0 * sev) - 0.25 * hh + 0.7 * rng.standard_normal(len(acct)))
        ).astype(np.int64)
        resolved = created + days.astype("timedelta64[D]")
        csat = np.clip(
            np.round(
                3.9 + 0.5 * hh - 0.5 * esc - 0.04 * days + 0.8 * rng.standard_normal(len(acct))
            ),
            1,
            5,
        )
        answered = rng.random(len(acct)) < 0.5
        text = {}
        if self.cfg.text.enabled:
            new = (created - self.since[acct]).astype(np.int64) < 120
            subject, body, tone, topic = ticket_text(
                self.rng_text,
                self.cfg.text,
                hh,
                self.h_change[acct],
                from_incident,
                new,
                self._intent_texts(acct, from_intent),
            )
            text = {"subject": subject, "body": body, "_tone": tone, "_topic": topic}
            text["_intent"] = self._intent_flags(acct)
        self.rows["support_tickets"].add(
            account_id=acct,
            created_date=created,
            resolved_date=resolved,
            severity=np.asarray(SEVERITIES, dtype=object)[sev],
            escalated=esc,
            csat=np.where(answered, csat, np.nan),
            **text,
        )

    def _intent_texts(self, acct: np.ndarray, own: np.ndarray | None = None):
        """What the intent to leave does to the texts of accounts ``acct`` (None: no intents).

        Whether each writer's intent shows, whether the text is one the intent wrote (a
        question about leaving: ``own``), and the params.
        """
        if self.intent_onset is None:
            return None
        own = np.zeros(len(acct), bool) if own is None else own
        return self.intending[acct], own, self.cfg.intent

    def _intent_flags(self, acct: np.ndarray) -> np.ndarray:
        """Whether each writer's intent to leave showed when the text was written."""
        return self.intending[acct].copy()

    def _nps(self, m, active, lo, hi, h) -> None:
        if m % 3 != 2:  # quarterly survey
            return
        rng = self.rng_obs
        cid, acct, c_lo, c_hi = self.contacts.active_in(active, lo, hi)
        hh = h[acct]
        responds = rng.random(len(acct)) < sigmoid(-0.6 + 0.7 * hh)
        cid, acct, hh = cid[responds], acct[responds], hh[responds]
        o = self.cfg.observation
        score = np.clip(
            np.round(o.nps_base + o.nps_health * hh + o.nps_noise * rng.standard_normal(len(acct))),
            0,
            10,
        )
        text = {}
        if self.cfg.text.enabled:
            comment, tone, topic = nps_comment(
                self.rng_text, self.cfg.text, score, self.h_change[acct], self._intent_texts(acct)
            )
            text = {"comment": comment, "_tone": tone, "_topic": topic}
            text["_intent"] = self._intent_flags(acct)
        self.rows["nps_responses"].add(
            account_id=acct,
            contact_id=cid,
            date=_rand_days(rng, c_lo[responds], c_hi[responds]),
            score=score.astype(np.int64),
            **text,
        )

    def _engagement(self, k, active, lo, hi, h) -> None:
        rng = self.rng_obs
        scale = np.array([3.0, 1.5, 0.4])[self.seg]
        rates = {
            "training": 0.25 * np.exp(0.5 * h),
            "webinar": 0.3 * np.exp(0.4 * h),
            "community_post": 0.3 * np.exp(0.7 * h),
            "email_reply": 2.4 * sigmoid(0.5 + 1.5 * h),
            "meeting": 0.6 * np.exp(0.4 * h),
        }
        qbr_due = (k % 3 == 0) & (self.seg < 2)
        qbr = qbr_due & (
            rng.random(self.n) < sigmoid(np.array([1.0, 0.0, -9.0])[self.seg] + 1.2 * h)
        )
        counts = {kind: rng.poisson(rate * scale * active) for kind, rate in rates.items()}
        counts["qbr"] = (qbr & active).astype(np.int64)
        for kind in ENGAGEMENT_KINDS:
            acct = np.repeat(np.arange(self.n), counts[kind])
            self.rows["engagement"].add(
                account_id=acct,
                date=_rand_days(rng, lo[acct], hi[acct]),
                kind=np.full(len(acct), kind, dtype=object),
            )

    def _invoices(self, j, k, active, kept, d_date, h, budget_month) -> None:
        rng = self.rng_obs
        billing = kept & ((self.term == 0) | (k % 12 == 0))
        start_bill = active & (self.join_month == self.m0 + j)  # first invoice at signing
        issue = np.where(start_bill, self.since, d_date)
        amount = np.where(self.term == 0, self.arr / 12.0, self.arr)
        extra = kept & (self.prorata > 0)
        for mask, amt in ((billing | start_bill, amount), (extra & ~billing, self.prorata)):
            acct = np.flatnonzero(mask)
            if len(acct) == 0:
                continue
            hh = h[acct]
            recent_cut = (j - budget_month[acct]) <= 3
            delay = np.round(
                -4
                + 30 * sigmoid(-1.8 * hh - 1.5)
                + 15 * recent_cut
                + rng.exponential(3.0, len(acct))
            )
            due = issue[acct] + np.timedelta64(30, "D")
            self.rows["invoices"].add(
                account_id=acct,
                due_date=due,
                paid_date=due + delay.astype("timedelta64[D]"),
                amount=np.round(amt[acct], 2),
            )

    def _milestones(self, m, k, active, kept, d_date, h) -> None:
        """Agree value milestones at signing and renewal; settle those due this month."""
        rng = self.rng_obs
        new = active & (self.join_month == m) & (self.seg < 2)
        renew = kept & (k % self.term_months == 0) & (self.term > 0) & (self.seg < 2)
        for mask, start, offsets in ((new, self.since, (60, 120, 240)), (renew, d_date, (90, 180))):
            acct = np.flatnonzero(mask)
            for off in offsets:
                created = start[acct]
                target = created + np.timedelta64(off, "D")
                base = np.asarray(_MILESTONES, dtype=object)[
                    rng.integers(0, len(_MILESTONES), len(acct))
                ]
                names = base + " by " + np.datetime_as_string(target).astype(object)
                self.pending_ms.append((acct, names, created, target))
        self._settle_milestones(m, h, active)

    def _settle_milestones(
        self, month: int | None, h: np.ndarray | None = None, active: np.ndarray | None = None
    ) -> None:
        """Decide milestones whose target month has come (all remaining when month is None)."""
        rng = self.rng_obs
        keep = []
        for acct, names, created, target in self.pending_ms:
            due = np.ones(len(acct), bool) if month is None else month_index(target) == month
            achieved = np.full(len(acct), np.datetime64("NaT"), dtype="datetime64[D]")
            if month is not None:
                # Healthy accounts hit milestones early; struggling ones late or never.
                offset = np.round(-15 - 25 * h[acct] + 20 * rng.standard_normal(len(acct)))
                hit = active[acct] & (offset <= 60)
                achieved[hit] = np.maximum(target + offset.astype("timedelta64[D]"), created)[hit]
            if due.any():
                self.milestone_rows.add(
                    account_id=acct[due],
                    milestone=names[due],
                    created_date=created[due],
                    target_date=target[due],
                    achieved_date=achieved[due],
                )
            if (~due).any():
                keep.append((acct[~due], names[~due], created[~due], target[~due]))
        self.pending_ms = keep

    # ----------------------------------------------------------------- output
    def _finish_tables(self, world: World) -> dict[str, pa.Table]:
        ids = world.account_ids()
        end = world.window_end
        churn = world.churn_date
        out: dict[str, pa.Table] = {}
        rng = self.rng_obs
        csm = np.array([f"csm_{i:03d}" for i in range(max(1, self.n // 80))], dtype=object)
        names = (
            np.asarray(_NAME_A, dtype=object)[rng.integers(0, len(_NAME_A), self.n)]
            + " "
            + np.asarray(_NAME_B, dtype=object)[rng.integers(0, len(_NAME_B), self.n)]
            + " "
            + np.asarray(_NAME_C, dtype=object)[rng.integers(0, len(_NAME_C), self.n)]
        )
        owner = csm[rng.integers(0, len(csm), self.n)]
        owner[(self.seg == 2) & (rng.random(self.n) < 0.3)] = None  # tech-touch, no named CSM
        if self.policy is not None:
            acts = self.policy.actions(ids, owner, churn, end)
            out["csm_actions"] = pa.Table.from_pandas(acts, preserve_index=False)
        out["accounts"] = pa.table(
            {
                "account_id": ids,
                "name": names,
                "segment": np.asarray(SEGMENTS, dtype=object)[world.segment],
                "industry": np.asarray(_INDUSTRIES, dtype=object)[rng.integers(0, 10, self.n)],
                "region": np.asarray(_REGIONS, dtype=object)[rng.integers(0, 4, self.n)],
                "customer_since": world.customer_since,
                "csm_owner": owner,
            }
        )

        def finish(
            name: str,
            cols: dict[str, np.ndarray],
            date_cols: tuple[str, ...],
            id_prefix: str | None = None,
        ) -> None:
            if "account_id" in cols:
                cols["account_id"] = ids[cols["account_id"].astype(np.int64)]
            for c in date_cols:  # facts after the window end are not in the data yet
                v = cols[c].astype("datetime64[D]")
                cols[c] = np.where(v > end, np.datetime64("NaT"), v)
            df = pd.DataFrame(cols)
            if id_prefix:
                key = TABLES[name].key[0]
                df.insert(0, key, [f"{id_prefix}{i:07d}" for i in range(1, len(df) + 1)])
            # Optional columns the simulation does not produce (billing_term_months) stay out.
            columns = [c for c in TABLES[name].column_names if c in df.columns]
            out[name] = pa.Table.from_pandas(df[columns], preserve_index=False)

        subs = self.rows["subscriptions"].frame()
        finish("subscriptions", subs, ())
        t = self.rows["support_tickets"].frame()
        t["csat"] = np.where(
            np.isnat(t["resolved_date"]) | (t["resolved_date"] > end), np.nan, t["csat"]
        )
        # A ticket still open when the account left is closed on the churn date.
        t_churn = churn[t["account_id"].astype(np.int64)]
        t["resolved_date"] = np.where(
            ~np.isnat(t_churn) & (t["resolved_date"] > t_churn), t_churn, t["resolved_date"]
        )
        truth = {c: t.pop(c) for c in ("_tone", "_topic", "_intent") if c in t}
        finish("support_tickets", t, ("resolved_date",), "T")
        if truth:
            tickets = out["support_tickets"]
            parts = [_text_truth("ticket", tickets, truth)]
        out["support_tickets"] = out["support_tickets"].set_column(
            out["support_tickets"].schema.get_field_index("csat"),
            "csat",
            pa.array(pd.array(t["csat"], dtype="Int64")),
        )
        c = self.contacts.frame()
        finish("contacts", c, ("end_date",))
        out["contacts"] = out["contacts"].set_column(
            0,
            "contact_id",
            pa.array(np.char.add("C", np.char.zfill(c["contact_id"].astype(str), 7))),
        )
        nps = self.rows["nps_responses"].frame()
        nps["contact_id"] = np.char.add("C", np.char.zfill(nps["contact_id"].astype(str), 7))
        nps_truth = {c: nps.pop(c) for c in ("_tone", "_topic", "_intent") if c in nps}
        finish("nps_responses", nps, ())
        if truth:
            parts.append(_text_truth("comment", out["nps_responses"], nps_truth))
            self.text_truth = pd.concat(parts, ignore_index=True)
        finish("engagement", self.rows["engagement"].frame(), ())
        inv = self.rows["invoices"].frame()
        keep = inv["due_date"] <= end + np.timedelta64(30, "D")  # issued within the window
        finish("invoices", {k: v[keep] for k, v in inv.items()}, ("paid_date",), "I")
        finish("weekly_active_users", self.rows["weekly_active_users"].frame(), ())
        ms = self.milestone_rows.frame()
        if len(ms["account_id"]):
            keep = ms["created_date"] <= end
            finish("milestones", {k: v[keep] for k, v in ms.items()}, ("achieved_date",))
        return out


_TEXT_TABLES = ("support_tickets", "nps_responses")


def _text_truth(kind: str, table: pa.Table, truth: dict[str, np.ndarray]) -> pd.DataFrame:
    """The true tone and topic of each text of a table (rows without text left out)."""
    keys = ["ticket_id", "account_id"] if kind == "ticket" else ["account_id", "contact_id", "date"]
    df = table.select(keys).to_pandas()
    df.insert(0, "kind", kind)
    df["tone"] = tone_names(truth["_tone"].astype(np.int64))
    topic = truth["_topic"].astype(np.int64)
    df["topic"] = np.asarray((*TEXT_TOPICS, None), dtype=object)[
        np.where(topic < 0, len(TEXT_TOPICS), topic)
    ]
    df["intent"] = truth["_intent"].astype(bool)
    return df[df["tone"].notna()].reset_index(drop=True)


class _Contacts:
    """Stakeholders per account: arrive, leave, and leave on relationship shocks."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        rng = sim.rng_obs
        seg = sim.seg
        # Expected initial counts per role by segment (rows: enterprise, mid_market, smb).
        p_exec = np.array([0.9, 0.6, 0.2])[seg]
        p_champ = np.array([0.95, 0.85, 0.7])[seg]
        n_admin = rng.poisson(np.array([2.0, 1.0, 0.6])[seg]) + 1
        n_user = rng.poisson(np.array([6.0, 2.5, 0.6])[seg])
        counts = np.stack(
            [rng.random(sim.n) < p_exec, rng.random(sim.n) < p_champ, n_admin, n_user], axis=1
        ).astype(np.int64)
        acct = np.repeat(np.tile(np.arange(sim.n), 4), counts.T.ravel())
        role = np.repeat(np.repeat(np.arange(4), sim.n), counts.T.ravel())
        # Existing accounts' contacts started between joining and the window start.
        since = sim.since[acct]
        ws = month_start(sim.m0)
        late = np.maximum(since, np.minimum(ws - DAY, since + np.timedelta64(365, "D")))
        start = np.where(since < ws, _rand_days(rng, since, np.maximum(late, since)), since)
        self.acct, self.role, self.start = acct, role, start
        self.end = np.full(len(acct), np.datetime64("NaT"), dtype="datetime64[D]")

    def _add(self, acct: np.ndarray, role: np.ndarray, start: np.ndarray) -> None:
        self.acct = np.concatenate([self.acct, acct])
        self.role = np.concatenate([self.role, role])
        self.start = np.concatenate([self.start, start])
        self.end = np.concatenate(
            [self.end, np.full(len(acct), np.datetime64("NaT"), dtype="datetime64[D]")]
        )

    def _current(self, day_hi: np.ndarray) -> np.ndarray:
        return (self.start <= day_hi[self.acct]) & np.isnat(self.end)

    def month(self, j, active, lo, hi, h, jumps) -> None:
        sim, rng = self.sim, self.sim.rng_obs
        cur = self._current(hi) & active[self.acct]
        # Shock-driven departures: the champion (or sponsor) leaves; if the account has none,
        # a key user or admin does.
        for shock, role in (
            ("champion_left", ROLE["champion"]),
            ("sponsor_lost", ROLE["executive_sponsor"]),
        ):
            hit = jumps[:, SHOCKS.index(shock)] & active
            cand = cur & hit[self.acct]
            pref = np.where(self.role == role, 0, np.where(self.role == ROLE["user"], 2, 1))
            key = np.lexsort((rng.random(len(self.acct)), pref, self.acct))
            key = key[cand[key]]
            firsts = (
                key[np.r_[True, self.acct[key][1:] != self.acct[key][:-1]]] if len(key) else key
            )
            self.end[firsts] = _rand_days(rng, lo[self.acct[firsts]], hi[self.acct[firsts]])
            cur[firsts] = False
        # Background turnover, more of it when the relationship is weak.
        hh = h[self.acct]
        leave = cur & (rng.random(len(self.acct)) < 0.006 * np.exp(-0.6 * hh))
        self.end[leave] = _rand_days(rng, lo[self.acct[leave]], hi[self.acct[leave]])
        cur &= ~leave
        # Arrivals: replacements for a missing champion / sponsor, new users with growth.
        has = np.zeros((sim.n, 4), bool)
        has[self.acct[cur], self.role[cur]] = True
        add_champ = active & ~has[:, ROLE["champion"]] & (rng.random(sim.n) < 0.12)
        add_exec = (
            active & ~has[:, ROLE["executive_sponsor"]] & (sim.seg < 2) & (rng.random(sim.n) < 0.08)
        )
        growth = jumps[:, SHOCKS.index("growth_event")] & active
        n_users = rng.poisson(
            0.03 * np.array([4.0, 1.5, 0.5])[sim.seg] * np.exp(0.3 * h) * active
        ) + growth * rng.integers(1, 4, sim.n)
        for mask_or_count, role in (
            (add_champ, "champion"),
            (add_exec, "executive_sponsor"),
            (n_users, "user"),
        ):
            acct = np.repeat(np.arange(sim.n), np.asarray(mask_or_count, dtype=np.int64))
            self._add(acct, np.full(len(acct), ROLE[role]), _rand_days(rng, lo[acct], hi[acct]))

    def active_in(self, active, lo, hi):
        """Contacts current during the month for active accounts, with the days they can act."""
        ok = (
            active[self.acct]
            & (self.start <= hi[self.acct])
            & (np.isnat(self.end) | (self.end >= lo[self.acct]))
        )
        idx = np.flatnonzero(ok)
        c_lo = np.maximum(lo[self.acct[idx]], self.start[idx])
        c_hi = np.where(
            np.isnat(self.end[idx]),
            hi[self.acct[idx]],
            np.minimum(hi[self.acct[idx]], self.end[idx]),
        )
        return idx + 1, self.acct[idx], c_lo, c_hi

    def frame(self) -> dict[str, np.ndarray]:
        return {
            "contact_id": np.arange(1, len(self.acct) + 1),
            "account_id": self.acct,
            "role": np.asarray(CONTACT_ROLES, dtype=object)[self.role],
            "start_date": self.start,
            "end_date": self.end,
        }
