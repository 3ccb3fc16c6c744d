"""The registry's names, spelled once: light enough for the CLI to import at start.

:mod:`training.registry` (and through it the service) and ``radar`` read them here.
"""

REGISTERED_MODEL = "renewal-radar"
CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MODEL_URI = f"models:/{REGISTERED_MODEL}@{CHAMPION}"
# The run tag saying what a run is (train, head, backtest, monitor): the monitor page finds the
# latest monitor run by it without importing the training code.
KIND_TAG = "radar.kind"
