"""The event log as the optional contract table ``csm_actions`` (what part 2 learns from)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from actions.models import Cta, Event
from actions.store import Store
from features.io import atomic_file
from features.schema import CSM_ACTION_KINDS, CSM_ACTIONS

TABLE_FILE = f"{CSM_ACTIONS.name}.parquet"
# Where a row's reason is in an event's payload, by preference.
REASON_KEYS = ("reason", "text", "note")


def csm_actions(store: Store) -> pd.DataFrame:
    """One row per event of a kind the contract knows (others, such as ``reopened``, stay in)."""
    with store.session() as s:
        rows = s.execute(
            select(Event, Cta.play)
            .outerjoin(Cta, Event.cta_id == Cta.id)
            .where(Event.kind.in_(CSM_ACTION_KINDS))
            .order_by(Event.id)
        ).all()
    out = [
        {
            "account_id": e.account_id,
            "date": pd.Timestamp(e.at.date()),
            "action": e.kind,
            "play": e.payload.get("play") or play,
            "outcome": e.payload.get("outcome"),
            "owner": e.actor,
            "reason": next((e.payload[k] for k in REASON_KEYS if e.payload.get(k)), None),
            "cta_id": None if e.cta_id is None else str(e.cta_id),
        }
        for e, play in rows
    ]
    cols = [c.name for c in CSM_ACTIONS.columns]
    df = pd.DataFrame(out, columns=cols)
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[s]")
    for c in cols:
        if c != "date":
            df[c] = df[c].astype("str").where(df[c].notna(), None)
    return df


def export(store: Store, out_dir: str | Path) -> Path:
    """Write ``csm_actions.parquet`` into ``out_dir`` (atomically); returns its path."""
    target = Path(out_dir) / TABLE_FILE
    df = csm_actions(store)
    with atomic_file(target) as tmp:
        df.to_parquet(tmp, index=False)
    return target
