"""The model registry: where MLflow is, loading a served model, and train -> log -> promote.

Everything that reads or writes the registry goes through here: the CLI, the service, the
notebooks' workspace and the tests. MLflow is imported on first use, not with this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.model import ModelBundle
from training.names import (  # noqa: F401 (the registry's names, re-exported)
    CHALLENGER,
    CHAMPION,
    DEFAULT_MODEL_URI,
    KIND_TAG,
    REGISTERED_MODEL,
)

if TYPE_CHECKING:  # pragma: no cover
    from features.config import FeatureConfig

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri(uri: str | None = None) -> str:
    """Point MLflow at ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    import mlflow

    resolved = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    return resolved


# Registry calls of read-only commands and the service: bounded, not MLflow's 120 s x 7
# retries (about 250 s of silence with an unreachable server).
HTTP_TIMEOUT_S = "10"
HTTP_RETRIES = "1"
SQLITE_HEADER = b"SQLite format 3\x00"


def bound_registry_calls() -> None:
    """Bound MLflow's HTTP calls (timeout, retries) unless the environment sets them."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_S)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)


class NoStoreError(ValueError):
    """The tracking URI names a sqlite file that is not there."""


def require_store(uri: str | None = None) -> str:
    """The tracking URI; ValueError if it names a sqlite file that is missing or not a database.

    MLflow would create an empty store there, and a read-only command (score, serve,
    compare, promote) would then report "no such model" about a store nobody trained into.
    """
    resolved = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if resolved.startswith("sqlite:///"):
        path = Path(resolved.removeprefix("sqlite:///"))
        if not path.is_file():
            raise NoStoreError(
                f"{path}: no MLflow store there (tracking URI {resolved}); give the store "
                "`radar train` wrote with --tracking-uri (a read-only command creates none)"
            )
        with path.open("rb") as fh:
            if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise ValueError(f"{path}: not an SQLite database (tracking URI {resolved})")
    return resolved


def resolve_version(model_uri: str, tracking: str | None = None) -> str:
    """``models:/name@alias`` as the version it points to now (``models:/name/3``).

    The service resolves once at start (``radar serve``), so every worker, restarted or not,
    serves the same version after a promotion.
    """
    from mlflow.tracking import MlflowClient

    if not model_uri.startswith("models:/") or "@" not in model_uri:
        return model_uri
    tracking_uri(require_store(tracking))
    name, alias = model_uri.removeprefix("models:/").split("@", 1)
    version = aliased_version(MlflowClient(), name, alias).version
    return f"models:/{name}/{version}"


def aliased_version(client, name: str, alias: str):
    """The model version ``name@alias`` points to; ValueError saying what to run when none does.

    MLflow's own message ("alias champion not found") names no way out: a store where
    `radar train` ran without --promote has a challenger and no champion.
    """
    from mlflow.exceptions import MlflowException  # MLflow stays off the import path

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if alias == CHALLENGER:
            hint = "run `radar train` to register one"
        else:
            hint = (
                f"run `radar promote` (or `radar train --promote`), or pass "
                f"--model-uri models:/{name}@{CHALLENGER} to use the latest trained version"
            )
        raise ValueError(f"no version of {name} has the alias {alias!r}: {hint}") from exc


def load_bundle(model_uri: str) -> ModelBundle:
    """The :class:`ModelBundle` behind a registered pyfunc (``models:/name@alias``)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training.artifacts import CorruptArtifactError

    try:
        loaded = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, CorruptArtifactError, OSError):
        raise  # they name the alias, version or file themselves
    except Exception as exc:  # MLmodel empty or garbage: YAML, decode or attribute errors
        raise CorruptArtifactError(
            f"{model_uri}: its MLmodel file cannot be read ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); the artifact is corrupt; register the "
            "model again"
        ) from exc
    return loaded.unwrap_python_model().bundle


@dataclass(frozen=True)
class ScoringModel:
    """A model bundle and where it came from."""

    bundle: ModelBundle
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None

    @property
    def label(self) -> str:
        """Display name: ``renewal-radar v3``, or the URI when not a registry version."""
        return f"{self.name} v{self.version}" if self.version else self.uri


def load_model(model_uri: str = DEFAULT_MODEL_URI, tracking: str | None = None) -> ScoringModel:
    """Load a registered bundle (``models:/name@alias`` or ``models:/name/version``)."""
    from mlflow.tracking import MlflowClient

    bound_registry_calls()
    tracking_uri(require_store(tracking))
    name = version = run_id = None
    load_uri = model_uri
    if model_uri.startswith("models:/"):
        ref = model_uri.removeprefix("models:/")
        client = MlflowClient()
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = aliased_version(client, name, alias)
            # The version the alias names now: a promotion meanwhile cannot mix two versions.
            load_uri = f"models:/{name}/{mv.version}"
        else:
            name, _, number = ref.partition("/")
            mv = client.get_model_version(name, number)
        version, run_id = str(mv.version), mv.run_id
    return ScoringModel(load_bundle(load_uri), model_uri, name, version, run_id)


def feature_config(bundle: ModelBundle) -> FeatureConfig:
    """The feature configuration the bundle was trained on (defaults for a table of one's own).

    Bundles from before it was recorded carry it inside their data manifest.
    """
    from features.config import FeatureConfig

    meta = bundle.metadata
    raw = meta.get("feature_config")
    if raw is None:
        raw = meta.get("source", {}).get("manifest", {}).get("config")
    raw = dict(raw or {})
    # Bundles from before per-product-feature columns have none: scoring builds none either.
    raw.setdefault("product_features", [])
    return FeatureConfig.model_validate(raw)
