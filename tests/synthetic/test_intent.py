"""The hidden intent to leave: it raises churn, shows only in text, and the oracle knows it;
topics read by a classifier trained on the team's labelled tickets, and bad labels refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.catalogue import TEXT_TOPICS
from features.contract import ContractError, load_dataset
from features.synthetic.calendar import month_index
from features.synthetic.dataset import generate_dataset, load_world
from features.synthetic.intent import IntentParams, showing
from features.synthetic.oracle import Oracle
from features.synthetic.process import SyntheticConfig
from features.synthetic.text import TextConfig as WorldText
from features.text import MIN_TOPIC_LABELS, TextConfig, text_signals, text_table, topic_reader
from features.words import topic_reading_sentence
from tests.synthetic.mc import monte_carlo

LEAVING = (1 << TEXT_TOPICS.index("pricing")) | (1 << TEXT_TOPICS.index("competitor"))


@pytest.fixture(scope="module")
def intent_world(tmp_path_factory):
    """A small world with text and intents to leave."""
    root = tmp_path_factory.mktemp("intent") / "data"
    cfg = SyntheticConfig(text=WorldText(enabled=True), intent=IntentParams(enabled=True))
    generate_dataset(root, accounts=500, months=12, seed=3, cfg=cfg)
    return root


def test_oracle_knows_the_intent_and_matches_monte_carlo(intent_world):
    world = load_world(intent_world)  # the intents travel with the ground truth
    assert world.intent_onset is not None and (world.intent_onset >= 0).sum() > 50
    T = "2025-06-30"
    mT = int(month_index(np.datetime64(T)))
    p = Oracle(world).probabilities(T).set_index("account_index")
    seen = showing(world.intent_onset, world.first_month, mT)
    annual = world.term > 0
    picks = [i for i in p.index if seen[i] and annual[i]][:2]
    picks += [i for i in p.index if not seen[i] and annual[i] and p.loc[i, "p_churn_90d"] > 0.1][:2]
    assert len(picks) == 4
    # An intent seen at T raises the 90-day churn probability of annual accounts.
    rows = p.index[annual[p.index]]
    assert p.loc[rows[seen[rows]], "p_churn_90d"].mean() > 2 * p.loc[rows, "p_churn_90d"].mean()
    for i in picks:
        churn, expansion = monte_carlo(world, i, T, 90, 100_000, seed=i)
        assert churn == pytest.approx(p.loc[i, "p_churn_90d"], abs=0.008)
        assert expansion == pytest.approx(p.loc[i, "p_expansion_90d"], abs=0.008)


def test_intent_shows_in_text_not_in_health_and_raises_churn(intent_world):
    tickets = pd.read_parquet(intent_world / "support_tickets.parquet")
    nps = pd.read_parquet(intent_world / "nps_responses.parquet")
    truth = pd.read_parquet(intent_world / "ground_truth" / "text_truth.parquet")
    t = truth[truth["kind"] == "ticket"].set_index("ticket_id").loc[tickets["ticket_id"]]
    about = t["topic"].isin(["pricing", "competitor"]).to_numpy()
    flag = t["intent"].to_numpy()
    assert flag.sum() > 30
    assert about[flag].mean() > 0.6 and about[~flag].mean() < 0.25  # the truth...
    sig = text_signals(tickets, nps, TextConfig())
    said = (sig.loc[sig["kind"] == "ticket", "topics"].to_numpy() & LEAVING) > 0
    assert said[flag].mean() > 0.5 and said[~flag].mean() < 0.3  # ... and the keywords' reading

    # Month-end snapshots: texts about pricing or competitors in the last 90 days reveal
    # whose intent shows; the latent health (the most any usage, support or NPS figure could
    # tell) does not; and those accounts churn far more often in the next 90 days.
    world = load_world(intent_world)
    ids = pd.Series(np.arange(world.n), index=world.account_ids())
    lat = pd.read_parquet(intent_world / "ground_truth" / "latent_monthly.parquet")
    lat["as_of"] = lat["month"] + pd.offsets.MonthEnd(0)
    sig["leaving"] = (sig["topics"].to_numpy() & LEAVING) > 0
    rows = []
    for T in sorted(lat["as_of"].unique())[3:-3]:  # 90 days of text behind, of future ahead
        s = sig[(sig["date"] <= T) & (sig["date"] > T - pd.Timedelta(days=90))]
        n = s.groupby("account_id")["leaving"].sum()
        at = lat[lat["as_of"] == T][["account_id", "as_of", "health"]]
        month = int(month_index(np.datetime64(pd.Timestamp(T).date())))
        shows = showing(world.intent_onset, world.first_month, month)
        rows.append(
            at.assign(
                mentions=n.reindex(at["account_id"]).fillna(0).to_numpy(),
                shows=shows[ids[at["account_id"]].to_numpy()],
            )
        )
    snaps = pd.concat(rows, ignore_index=True)
    shows = snaps["shows"].to_numpy()
    assert roc_auc_score(shows, snaps["mentions"]) > 0.75
    assert abs(roc_auc_score(shows, snaps["health"]) - 0.5) < 0.1
    churn = pd.to_datetime(world.churn_date[ids[snaps["account_id"]].to_numpy()])
    y = ((churn > snaps["as_of"]) & (churn <= snaps["as_of"] + pd.Timedelta(days=90))).to_numpy()
    assert y[shows].mean() > 3 * y[~shows].mean()


def test_labelled_tickets_train_the_topic_classifier(intent_world, tmp_path):
    tickets = pd.read_parquet(intent_world / "support_tickets.parquet")
    truth = pd.read_parquet(intent_world / "ground_truth" / "text_truth.parquet")
    topic = truth[truth["kind"] == "ticket"].set_index("ticket_id")["topic"]
    data = tmp_path / "data"
    data.mkdir()
    for f in intent_world.glob("*.parquet"):
        (data / f.name).symlink_to(f)
    (data / "support_tickets.parquet").unlink()
    half = tickets["created_date"] <= tickets["created_date"].median()  # the earlier half
    labelled = tickets.assign(topic=topic.loc[tickets["ticket_id"]].where(half.to_numpy()).values)
    labelled.to_parquet(data / "support_tickets.parquet", index=False)
    ds = load_dataset(data)
    assert topic_reader(ds) == {"method": "classifier", "labelled_tickets": int(half.sum())}
    assert "classifier trained on the" in topic_reading_sentence(topic_reader(ds))
    sig = text_table(ds, None, TextConfig())
    got = sig.loc[sig["kind"] == "ticket", "topics"].to_numpy()
    bit = np.array([1 << TEXT_TOPICS.index(t) for t in topic.loc[tickets["ticket_id"]]])
    assert (got[half.to_numpy()] == bit[half.to_numpy()]).all()  # labels kept as given
    later = ~half.to_numpy()
    keywords = text_signals(tickets, None, TextConfig())["topics"].to_numpy()
    by_classifier, by_keywords = (got == bit)[later].mean(), (keywords == bit)[later].mean()
    assert by_classifier > 0.9 and by_classifier > by_keywords + 0.1
    # Too few labels: keywords, and the run says so.
    few = labelled.assign(topic=labelled["topic"].where(np.arange(len(labelled)) < 5))
    few_reading = topic_reader(_Tables(support_tickets=few))
    assert few_reading == {"method": "keywords", "labelled_tickets": 5, "needed": MIN_TOPIC_LABELS}
    assert "by keywords (5 labelled in support_tickets.topic" in topic_reading_sentence(few_reading)
    # A label outside the taxonomy: an error naming table, column, row and value.
    labelled.loc[3, "topic"] = "weather"
    labelled.to_parquet(data / "support_tickets.parquet", index=False)
    with pytest.raises(ContractError) as info:
        load_dataset(data)
    (found,) = [f for f in info.value.report.errors if f.column == "topic"]
    assert (found.table, found.rows, tuple(found.values)) == ("support_tickets", (4,), ("weather",))
    assert "not one of billing" in found.message


class _Tables(dict):
    """A stand-in dataset for :func:`topic_reader`: tables by name."""

    def has(self, name: str) -> bool:
        return name in self


def test_an_intent_without_text_is_refused(tmp_path, capsys):
    import typer

    from radar.data import generate

    out = tmp_path / "g"
    with pytest.raises(typer.Exit) as stop:  # in-process: a fresh `radar` costs ~10 s here
        generate(out=out, accounts=5, intent=True)
    assert stop.value.exit_code == 1
    err = capsys.readouterr().err
    assert "--intent shows only in ticket and survey text: give --text with it" in err
    assert "Traceback" not in err and not out.exists()
