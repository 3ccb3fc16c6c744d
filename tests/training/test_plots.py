from __future__ import annotations

import io

import numpy as np
import pandas as pd

from training import plots


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_shap_summary_is_its_own_figure_not_the_importance_one():
    """summary_plot draws on the current figure: the importance bars must not be reused."""
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(6)]
    rows = rng.normal(size=(200, 6))
    contributions = np.column_stack([rows * np.arange(1, 7), np.full(200, -2.0)])
    importance = pd.Series(np.arange(6, 0, -1.0), index=names)

    imp = plots.importance_figure("churn_90d", importance)  # still open, i.e. current
    summary = plots.shap_summary_figure("churn_90d", contributions, rows, names)
    try:
        assert summary is not imp
        assert len(imp.axes) == 1 and imp.axes[0].get_xlabel() == "total gain"
        assert "SHAP" in summary.axes[0].get_xlabel()
        assert "SHAP summary" in summary._suptitle.get_text()
        assert _png(summary) != _png(imp)
    finally:
        plots.plt.close(imp)
        plots.plt.close(summary)


def test_shap_summary_of_an_all_missing_column_warns_nothing():
    """A feature missing on every row (its table absent) must not leak NumPy's warnings."""
    import warnings

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(100, 3))
    rows[:, 1] = np.nan
    contributions = np.column_stack([rows, np.zeros(100)])
    contributions[:, 1] = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plots.shap_summary_figure("churn_90d", contributions, rows, ["a", "b", "c"])
    plots.plt.close(fig)
    assert not [w for w in caught if "All-NaN" in str(w.message)]
