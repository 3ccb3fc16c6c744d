"""Issue 31 end to end: a green account forecast to turn yellow before its renewal gets a CTA.

The suite's model (with its forecasts) scores the store's latest snapshots of the accounts the
forecast flags, as the service does; the daily job's pass (:func:`actions.run.run_once`) opens
one CTA per such account whose reason is the forecast sentence; the same run again, and the
next run with the cause still there, open nothing more.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from actions.config import ActionsConfig
from actions.models import Cta, Event
from actions.notify import cause_words
from actions.run import run_once
from features.catalogue import FORECAST_DROP_ALERT
from features.config import HEALTHY_SCORE
from features.store import SnapshotStore
from scoring.alert_evidence import forecast_drop_sentence
from scoring.records import score_store_rows
from tests.actions.conftest import T0
from training.registry import ScoringModel

pytestmark = pytest.mark.slow  # scores with the suite's trained model

CAUSE = f"alert:{FORECAST_DROP_ALERT}"


@pytest.fixture(scope="module")
def flagged(long_features, trained) -> pd.DataFrame:
    """Records of the accounts whose health the model forecasts to fall before the renewal."""
    model = ScoringModel(trained[1].bundle, uri="test", name="renewal-radar", version="1")
    store = SnapshotStore.open(long_features)
    snaps = store.snapshots()
    latest = snaps[snaps["as_of"] == snaps["as_of"].max()].reset_index(drop=True)
    ahead = model.bundle.forecasts.predict(latest)
    # A cheap pre-selection (healthy now, some forecast below healthy): scoring decides.
    maybe = (latest["health_score"] >= HEALTHY_SCORE) & (
        ahead.filter(regex=r"^forecast_health_\d+d$").min(axis=1) < HEALTHY_SCORE
    )
    records = score_store_rows(store, latest[maybe.to_numpy()], model).records
    return records[records["alerts"].map(lambda a: FORECAST_DROP_ALERT in a)].reset_index(drop=True)


def test_the_forecast_alert_opens_one_cta_with_the_forecast_sentence(flagged, store):
    assert len(flagged) >= 1, "the suite's data has no healthy account forecast to fall"
    said = [forecast_drop_sentence(r) for _, r in flagged.iterrows()]
    for rec, words in zip(flagged.itertuples(), said, strict=True):
        assert rec.health_score >= HEALTHY_SCORE and words is not None
        assert words in rec.disagreement  # the record says it, the CTA repeats it
    cfg = ActionsConfig(capacity_per_csm=len(flagged))  # none held back by capacity
    first = run_once(store, flagged, T0, cfg)
    with store.session() as s:
        ctas = s.scalars(select(Cta).where(Cta.cause == CAUSE)).all()
        events = len(s.scalars(select(Event)).all())
        by_account = {c.account_id: c for c in ctas}
        assert sorted(by_account) == sorted(flagged["account_id"]) and len(ctas) == len(flagged)
        for account, words in zip(flagged["account_id"], said, strict=True):
            c = by_account[account]
            assert c.figures["reason"] == words and cause_words(c) == words
            assert words.startswith("Health ") and "before the renewal in" in words
    assert first.opened >= len(flagged)
    # The same scoring run again: nothing opened, no event.
    again = run_once(store, flagged, T0 + timedelta(minutes=5), cfg)
    assert again.opened == 0 and again.skipped_sync
    # The next run, the forecast still falling: the CTA stays the one CTA.
    later = flagged.assign(as_of=flagged["as_of"] + pd.Timedelta(days=7))
    next_run = run_once(store, later, T0 + timedelta(days=7), cfg)
    assert next_run.opened == 0 and next_run.closed == 0
    with store.session() as s:
        assert len(s.scalars(select(Cta).where(Cta.cause == CAUSE)).all()) == len(flagged)
        assert len(s.scalars(select(Event).where(Event.kind == "opened")).all()) == first.opened
        assert len(s.scalars(select(Event)).all()) >= events
