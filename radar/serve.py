"""``radar serve``: the BentoML scoring service and its pages."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from radar.common import (
    CHAMPION_URI,
    ModelUri,
    TrackingUri,
    fail,
    store_uri,
)
from serving.http_guard import TRUSTED_PROXIES_ENV
from serving.throttle import STATE_DIR_ENV


def serve(
    features: Annotated[
        Path | None,
        typer.Option(
            help="Output directory of `radar features` (not with a `radar train --table` "
            "model: it scores rows only, at POST /v1/score/rows)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    model_uri: ModelUri = CHAMPION_URI,
    api_key: Annotated[
        str | None,
        typer.Option(help="Require this key (default $RADAR_API_KEY); visible in `ps`."),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(help="Require the key on this file's first line ($RADAR_API_KEY_FILE)."),
    ] = None,
    max_request_bytes: Annotated[
        int, typer.Option(min=1024, help="Larger request bodies get 413.")
    ] = 1 << 20,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (scoring is CPU-bound: one per core).")
    ] = 2,
    keepalive_requests: Annotated[
        int,
        typer.Option(
            min=1, help="Answers per keep-alive connection before it is closed (spreads clients)."
        ),
    ] = 32,
    prediction_log: Annotated[
        Path | None,
        typer.Option(help="Append what the service scores by id to this prediction log."),
    ] = None,
    monitor: Annotated[
        Path | None,
        typer.Option(help="Folder `radar monitor --out` writes: shown at /ui/monitor."),
    ] = None,
    effects: Annotated[
        Path | None,
        typer.Option(
            help="Folder `radar effects --out` writes: shown at /ui/effects and on accounts."
        ),
    ] = None,
    tracking_uri: TrackingUri = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Folder the workers share (wrong-key counts); default: a new temp one."),
    ] = None,
    trusted_proxies: Annotated[
        str,
        typer.Option(help="Proxy addresses whose X-Forwarded-For is believed (comma-separated)."),
    ] = "",
) -> None:
    """Start the scoring service (BentoML) for the latest snapshots of FEATURES.

    A model trained with ``radar train --table`` is served without FEATURES: it scores rows
    of its table at ``POST /v1/score/rows``.
    """
    import shutil
    import sys

    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    env = {
        **os.environ,
        "RADAR_MODEL_URI": _served_version(model_uri, tracking_uri),
        "RADAR_MAX_REQUEST_BYTES": str(max_request_bytes),
        "RADAR_WORKERS": str(workers),
        "RADAR_KEEPALIVE_REQUESTS": str(keepalive_requests),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    env.pop("RADAR_FEATURES", None)  # only the store given here, none for a table's model
    if features is not None:
        env["RADAR_FEATURES"] = str(features.resolve())
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    if api_key:
        env["RADAR_API_KEY"] = api_key
    if prediction_log:
        env["RADAR_PREDICTION_LOG"] = str(prediction_log.resolve())
    if monitor:
        env["RADAR_MONITOR"] = str(monitor.resolve())
    if effects:
        env["RADAR_EFFECTS"] = str(effects.resolve())
    if api_key_file is not None:
        if not api_key_file.is_file():
            raise fail(f"--api-key-file {api_key_file}: no such file")
        env["RADAR_API_KEY_FILE"] = str(api_key_file.resolve())
    env |= hardening_env(state_dir, trusted_proxies)
    cmd = [bentoml, "serve", "serving.service:RenewalRadar", "--host", host, "--port", str(port)]
    # Become the server (no child left behind): signals such as SIGTERM reach BentoML itself.
    os.execvpe(bentoml, cmd, env)


def _served_version(model_uri: str, tracking_uri: str | None) -> str:
    """The version an alias points to now, so every worker serves that one (see docs/serving.md).

    A registry that cannot answer leaves the alias as given: the service then says why it is
    not ready.
    """
    from training.registry import bound_registry_calls, resolve_version

    store_uri(tracking_uri)
    bound_registry_calls()
    try:
        return resolve_version(model_uri, tracking_uri)
    except Exception as exc:  # MLflow's errors vary by store; the service reports it
        logging.getLogger("renewal_radar.cli").warning("cannot resolve %s: %s", model_uri, exc)
        return model_uri


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(serve)


def hardening_env(state_dir: Path | None, trusted_proxies: str) -> dict[str, str]:
    """``$RADAR_STATE_DIR`` (made if absent) and the trusted proxies for the workers.

    Without ``state_dir`` a new private folder is made, so the workers of this server (and
    no other) share their wrong-key counts.
    """
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="radar-serve-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    proxies = ",".join(p.strip() for p in trusted_proxies.split(",") if p.strip())
    return {
        STATE_DIR_ENV: str(state_dir.resolve()),
        TRUSTED_PROXIES_ENV: proxies,
        "FORWARDED_ALLOW_IPS": proxies,
    }
