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
