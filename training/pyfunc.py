"""The pyfunc wrapper MLflow serves: a :class:`ModelBundle` whose predict gives probabilities."""

from __future__ import annotations

import mlflow
import pandas as pd

from training.forecasts import with_forecasts
from training.model import ModelBundle


class RenewalRadarModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper of a :class:`ModelBundle`: predict returns probabilities.

    Input: one row per account and date with the feature columns (absent ones are missing);
    output: one ``p_<head>`` column per head.
    """

    def load_context(self, context) -> None:  # noqa: D102 (MLflow's hook)
        path = context.artifacts["bundle"]
        self.bundle = with_forecasts(ModelBundle.load(path), path)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: D102
        return self.bundle.predict(pd.DataFrame(model_input))
