"""The pyfunc wrapper MLflow serves: a :class:`ModelBundle` whose predict gives probabilities."""

from __future__ import annotations

import mlflow
import pandas as pd

from training.forecasts import with_forecasts
from training.model import ModelBundle
from training.table import coerce_rows, trained_on_table


class RenewalRadarModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper of a :class:`ModelBundle`: predict returns probabilities.

    Input: one row per account and date with the feature columns (absent ones are missing);
    output: one ``p_<head>`` column per head.
    """

    def load_context(self, context) -> None:  # noqa: D102 (MLflow's hook)
        path = context.artifacts["bundle"]
        self.bundle = with_forecasts(ModelBundle.load(path), path)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: D102
        frame = pd.DataFrame(model_input)
        if trained_on_table(self.bundle.metadata):  # read as `radar train --table` read it
            spec = self.bundle.spec
            frame, _ = coerce_rows(
                frame, spec.numeric, spec.categorical, "model_input", require_all=False
            )
        return self.bundle.predict(frame)
