"""A ready workspace for the notebooks: synthetic data, its snapshots and an MLflow store.

Made once under ``root`` (``$RADAR_WORKSPACE``, else ``build/notebooks``) and reused, so each
notebook runs top to bottom on its own and the next one starts where it left off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("build/notebooks")


@dataclass(frozen=True)
class Workspace:
    """Where a notebook's inputs and outputs live."""

    root: Path
    data: Path  # raw tables (`radar generate`)
    features: Path  # snapshots (`radar features`)
    tracking_uri: str  # sqlite MLflow store beside them

    @property
    def experiment(self) -> str:
        """The MLflow experiment the notebooks train into."""
        return "notebooks"


NOTEBOOK_MIN_POSITIVES = 10


def demo_workspace(
    root: str | Path | None = None, accounts: int = 600, months: int = 24, seed: int = 7
) -> Workspace:
    """The workspace at ``root``, generating the data and building the snapshots if absent."""
    from features.config import FeatureConfig
    from features.pipeline import run_features
    from features.store import MANIFEST_FILE
    from features.synthetic.dataset import generate_dataset

    base = Path(root or os.environ.get("RADAR_WORKSPACE") or DEFAULT_ROOT).resolve()
    ws = Workspace(base, base / "data", base / "features", f"sqlite:///{base / 'mlflow.db'}")
    base.mkdir(parents=True, exist_ok=True)
    if not (ws.data / "accounts.parquet").exists() and not any(ws.data.glob("accounts.*")):
        generate_dataset(ws.data, accounts, months, seed)
    if not (ws.features / MANIFEST_FILE).exists():
        run_features(ws.data, ws.features, FeatureConfig())
    return ws


def champion(ws: Workspace, **overrides: object):
    """The workspace's ``champion`` model; trained, logged and promoted first if there is none.

    ``overrides`` are :class:`training.config.TrainConfig` settings (dotted names) for that
    first training.
    """
    from mlflow.exceptions import MlflowException

    from training.config import TrainConfig
    from training.registry import NoStoreError, load_model, require_store
    from training.train import from_snapshots
    from training.workflow import train_and_register

    # The demo portfolio is small: its 30-day churn windows hold fewer positives than the
    # default floor (min_positives: 30), so the notebooks lower it (and say so in 02).
    overrides = {"min_positives": NOTEBOOK_MIN_POSITIVES, **overrides}
    cfg = TrainConfig.from_yaml(None, experiment=ws.experiment, **overrides)
    uri = f"models:/{cfg.registered_model}@champion"
    try:
        require_store(ws.tracking_uri)  # a read-only load refuses a missing store
        return load_model(uri, ws.tracking_uri)
    except (MlflowException, NoStoreError):  # no store, model or alias yet: make one
        data = from_snapshots(ws.features, cfg)
        train_and_register(data, cfg, uri=ws.tracking_uri, promote=True)
        return load_model(uri, ws.tracking_uri)
