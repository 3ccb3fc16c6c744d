"""``radar daily`` (score the latest date, work the CTAs, send messages) and ``radar actions``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from radar.common import (
    CHAMPION_URI,
    FutureRows,
    ModelUri,
    Now,
    TrackingUri,
    console,
    data_options,
    err,
    fail,
    progress,
)

StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Work-item store: sqlite:///FILE or postgresql://... (default: the config's "
        "store_url, sqlite:///radar-actions.db).",
    ),
]
ActionsYaml = Annotated[
    Path | None,
    typer.Option("--actions-config", help="YAML: severity rules, capacity, teams, channels."),
]


def _clock(text: str | None) -> datetime:
    """The run's clock: now, or ``--clock`` (an ISO time, UTC unless it says otherwise)."""
    if text is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"--clock: not an ISO date or time: {text!r}") from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _records(data, as_of, scores_file, model_uri, tracking_uri, config, data_options, update):
    """Scoring records with their ``needs_action`` flag: scored now, or read from a file."""
    import pandas as pd

    from scoring.plays import ScoringConfig, needs_action

    cfg = ScoringConfig.from_yaml(config)
    if scores_file is not None:
        if scores_file.suffix.lower() != ".parquet":
            raise ValueError(f"{scores_file}: --scores reads the .parquet of `radar score`")
        records = pd.read_parquet(scores_file)
    else:
        from scoring.batch import score_dataset
        from training.registry import load_model

        model = load_model(model_uri, tracking_uri)
        records = score_dataset(data, as_of, model, cfg, progress=update, **data_options).records
    records = records.assign(as_of=pd.to_datetime(records["as_of"]))
    return records.assign(needs_action=needs_action(records, cfg)), cfg.high_severity_alerts


def daily(
    data: Annotated[
        str | None, typer.Option(help="Directory with one file per raw table (scored now).")
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option(help="Or: the records `radar score` wrote (.parquet) instead of scoring."),
    ] = None,
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of", help="With --data: the date to score (default 'latest': the last day)."
        ),
    ] = "latest",
    store: StoreUrl = None,
    actions_config: ActionsYaml = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML with segment, play and driver settings.")
    ] = None,
    model_uri: ModelUri = CHAMPION_URI,
    tracking_uri: TrackingUri = None,
    now: Now = None,
    future_rows: FutureRows = "error",
    clock: Annotated[
        str | None,
        typer.Option(help="The run's time for deadlines and digests (ISO; default: now)."),
    ] = None,
) -> None:
    """Score the latest date, open and close CTAs, escalate, send the outbox; once at a time."""
    from mlflow.exceptions import MlflowException

    from actions.config import ActionsConfig
    from actions.run import run_once
    from actions.store import LockHeldError, open_store, run_lock
    from features.contract import ContractError

    if (data is None) == (scores is None):
        raise fail("give --data (score it now) or --scores (records of `radar score`)")
    t = _clock(clock)
    try:
        cfg = ActionsConfig.from_yaml(actions_config, store_url=store)
        options = data_options(now, future_rows)
        db = open_store(cfg.store_url)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # a store that cannot be reached or migrated: one line, no trace
        raise fail(f"cannot open the store {cfg.store_url}: {exc}") from exc
    try:
        with run_lock(db, cfg.lock_minutes), progress() as update:
            when = None if as_of == "latest" else as_of
            records, high = _records(
                data, when, scores, model_uri, tracking_uri, config, options, update
            )
            summary = run_once(db, records, t, cfg, high, progress=update)
    except LockHeldError as exc:
        raise fail(f"{exc}: nothing done") from exc
    except MlflowException as exc:
        raise fail(f"cannot load {model_uri}: {exc.message}") from exc
    except (ContractError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    finally:
        db.close()
    console.print(f"daily at as-of {summary.as_of}: {summary.line()}", highlight=False)
    if summary.failed:
        err.print(f"{summary.failed} message(s) not sent: retried on the next run")


actions_app = typer.Typer(help="The work-item store: calls to action and what was done.")


@actions_app.command("export")
def export_actions(
    out: Annotated[Path, typer.Option(help="Directory to write csm_actions.parquet into.")],
    store: StoreUrl = None,
    actions_config: ActionsYaml = None,
) -> None:
    """Write the event log as the contract table csm_actions (for `radar validate`, effects)."""
    from actions.config import ActionsConfig
    from actions.export import export
    from actions.store import open_store

    try:
        cfg = ActionsConfig.from_yaml(actions_config, store_url=store)
        db = open_store(cfg.store_url)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    try:
        path = export(db, out)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc}") from exc
    finally:
        db.close()
    console.print(f"wrote {path}")


@actions_app.command("user")
def add_user(
    name: Annotated[str, typer.Argument(help="The person's name (the accounts' csm_owner).")],
    role: Annotated[str, typer.Option(help="csm, manager or admin.")] = "csm",
    email: Annotated[str | None, typer.Option(help="Where messages go.")] = None,
    team: Annotated[str | None, typer.Option(help="Team name (created if new).")] = None,
    manager: Annotated[str | None, typer.Option(help="Their manager's name.")] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(help="File whose first line is the password for the pages (never argv)."),
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Also make a personal API token with this label.")
    ] = None,
    store: StoreUrl = None,
    actions_config: ActionsYaml = None,
) -> None:
    """Create or update a user; set a password; print a new personal token once."""
    from actions.accounts import add_user as add
    from actions.accounts import new_token, set_password
    from actions.config import ActionsConfig
    from actions.store import now_utc, open_store

    try:
        cfg = ActionsConfig.from_yaml(actions_config, store_url=store)
        password = None
        if password_file is not None:
            lines = password_file.read_text().splitlines()
            password = lines[0] if lines else ""
        db = open_store(cfg.store_url)
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    try:
        with db.session() as s:
            u = add(s, name, role, now_utc(), email=email, team=team, manager=manager)
            if password is not None:
                set_password(u, password)
            made = None if token is None else new_token(s, u, token, now_utc())
    except ValueError as exc:
        raise fail(str(exc)) from exc
    finally:
        db.close()
    console.print(f"user {name} ({role}) saved")
    if made is not None:
        console.print(f"personal token (shown once): {made}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``radar daily`` and ``radar actions`` to the command."""
    app.command()(daily)
    app.add_typer(actions_app, name="actions")
