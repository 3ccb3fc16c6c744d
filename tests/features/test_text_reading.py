"""Reading many texts: worker processes give the same scores as one process."""

from __future__ import annotations

import numpy as np

from features.text import TextConfig, sentiment


def test_sentiment_in_worker_processes_equals_one_process():
    texts = [f"This is really frustrating, the export fails again ({i})." for i in range(200)]
    texts += ["Thanks, great support!", None, "", "Die Rechnung ist falsch, bitte prüfen Sie."]
    texts += texts[:50]  # repeated texts: read once, the same score everywhere
    one = sentiment(texts, TextConfig(), workers=1)
    many = sentiment(texts, TextConfig(), workers=2)
    assert np.array_equal(one, many, equal_nan=True)
    assert (one[:200] < 0).all() and one[200] > 0.3 and np.isnan(one[201:204]).all()


def test_the_faster_vader_scores_as_vader_does():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from features.text import _analyser

    stock = SentimentIntensityAnalyzer()
    stock.lexicon.update(TextConfig().lexicon)
    texts = [
        "I don't love it",
        "This is not good at all",
        "never so happy",
        "without doubt great",
        "It isn't bad, but not great either",
        "Nobody was helpful, never again",
        "we can't say it is not terrible",
        "Not bad. Not bad at all!",
        "so this is not so good",
        "Never this good",
        "I aint happy",
        "without a doubt the worst",
        "hardly helpful and not useful, doesn't work",
        "This is really frustrating. The export fails again and nobody fixes it.",
        "Thanks for the great support, we love the product!",
        "kind of good, sort of ok",
        "  GREAT product, BAD support!!! :) ",
        "😀 love it",
        "not bad 👍",
    ]
    texts += [a + " " + b for a, b in zip(texts, texts[::-1], strict=True)]
    ours = [_analyser(TextConfig()).polarity_scores(t) for t in texts]
    assert ours == [stock.polarity_scores(t) for t in texts]  # every score, not only compound
    assert len({round(s["compound"], 2) for s in ours}) > 10  # negations, boosters, emoji...
