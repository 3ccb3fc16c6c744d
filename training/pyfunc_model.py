"""MLflow "model from code" entry: MLflow runs this file to build the served pyfunc.

Logging the model as code rather than as a pickled object keeps the artifact free of pickles:
the bundle itself is plain files (LightGBM text models, JSON calibrators and feature spec).
"""

import mlflow

from training.pyfunc import RenewalRadarModel

mlflow.models.set_model(RenewalRadarModel())
