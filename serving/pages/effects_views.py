"""What the pages show of the saved effects result (``radar effects --out DIR``).

The result comes from ``$RADAR_EFFECTS`` (``radar serve --effects DIR``). It is read again
when its files change (a new ``radar effects`` run shows without a restart), never computed
here: the estimate needs the history of plays, which the service does not hold. Absent (no
folder configured, nothing written there yet) the pages say so: never a 500.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from effects.artefact import (
    SUMMARY,
    fragile_plays,
    read_accounts,
    read_summary,
    robustness_values,
)
from features import words as w
from features.catalogue import horizon_days

ENV = "RADAR_EFFECTS"
NOT_YET = "No effects estimated yet"
NO_EVIDENCE = "no evidence yet"
POLICY_WORDS = {
    "worklist": "this product's worklist",
    "rule": "rule policy (troubled accounts, larger first)",
    "risk": "risk ranking (highest churn risk first)",
}
_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _folder() -> Path | None:
    folder = os.environ.get(ENV)
    return Path(folder) if folder else None


def how_to(folder: Path | None) -> str:
    """Where the pages look, and the commands that fill it, for the "not yet" message."""
    if folder is None:
        return (
            "The service was started without an effects folder: run `radar effects --data DIR "
            "--out EFFECTS` and start it with `radar serve --effects EFFECTS`."
        )
    return f"Nothing in {folder} yet: run `radar effects --data DIR --out {folder}`."


def loaded() -> tuple[dict | None, pd.DataFrame | None, Path | None]:
    """The saved summary and per-account effects (None, None where absent), and the folder.

    Kept until the summary's modification time changes: it is replaced last, naming the
    accounts file of its run (effects.artefact), so the two always come from one run.
    """
    folder = _folder()
    if folder is None:
        return None, None, None
    try:
        stamp = (folder / SUMMARY).stat().st_mtime_ns
    except FileNotFoundError:
        return None, None, folder
    with _lock:
        if _cache.get("key") != (str(folder), stamp):
            summary = read_summary(folder)
            accounts = read_accounts(folder, summary)
            if accounts is not None:
                accounts = accounts.drop_duplicates("account_id", keep="last")
                accounts = accounts.set_index("account_id")
            _cache.update(key=(str(folder), stamp), summary=summary, accounts=accounts)
        return _cache["summary"], _cache["accounts"], folder


def _saved(row: pd.Series, play: str) -> dict[str, Any]:
    """One play's expected saved ARR on one account, with its interval and evidence."""
    return {
        "play": play,
        "title": w.PLAYS.get(play, play),
        "estimated": True,
        "evidence": bool(row[f"evidence_{play}"]),
        "saved": float(row[f"saved_arr_{play}"]),
        "low": float(row[f"saved_low_{play}"]),
        "high": float(row[f"saved_high_{play}"]),
    }


def account_effects(account_id: str, recommended: str | None) -> dict[str, Any]:
    """The account page's section: the recommended play's expected saved ARR, or why none.

    ``recommended``: the play the scoring records recommend. Where the evidence points to
    another play for this account, that one is shown too.
    """
    summary, accounts, folder = loaded()
    if summary is None or accounts is None:
        return {"available": False, "message": f"{NOT_YET}. {how_to(folder)}"}
    estimated = {p["play"] for p in summary["plays"]}
    out: dict[str, Any] = {
        "available": True,
        "as_of": summary["period"][1],
        "confidence": summary["confidence"],
        "horizon": horizon_days(summary["outcome"]),
        "plays": [],
    }
    if account_id not in accounts.index:
        out["message"] = (
            f"The saved effects (up to {summary['period'][1]}) have no row for this account."
        )
        return out
    row = accounts.loc[account_id]
    shown = [recommended] if recommended else []
    if row["basis"] == "evidence" and row["play"] not in shown:
        shown.append(row["play"])
    robust = robustness_values(summary)
    weak = set(fragile_plays(robust, summary.get("fragile_below", 0.0)))
    for play in shown:
        if play in estimated:
            # The play's average effect rests on the no-unseen-confounding assumption: said.
            fragility = w.robustness_words(robust[play]) if play in weak else None
            out["plays"].append({**_saved(row, play), "fragile": fragility})
        else:
            out["plays"].append(
                {"play": play, "title": w.PLAYS.get(play, play), "estimated": False}
            )
    out["chosen"] = row["play"] if row["basis"] == "evidence" else None
    return out


def fragile(summary: dict, titles: dict[str, str]) -> str | None:
    """The sentence naming the plays an unseen factor under ``fragile_below`` would erase.

    None where none is, or where the result predates the robustness values (said by the
    table's dashes instead).
    """
    limit = summary.get("fragile_below")
    if limit is None:
        return None
    values = robustness_values(summary)
    named = [(titles[p].split(":")[0], values[p]) for p in fragile_plays(values, limit)]
    return w.fragile_sentence(named, limit)


def leader_view() -> dict[str, Any]:
    """The CS leader's page: observed success, causal effects, program ARR saved, ROI."""
    summary, _, folder = loaded()
    if summary is None:
        return {"summary": None, "message": f"{NOT_YET}. {how_to(folder)}", "folder": folder}
    segments = sorted({s for p in summary["plays"] for s in p["by_segment"]})
    causes = sorted({c for p in summary["plays"] for c in p["by_cause"]})
    titles = {p["play"]: w.PLAYS.get(p["play"], p["play"]) for p in summary["plays"]}
    return {
        "summary": summary,
        "plays": summary["plays"],
        "segments": segments,
        "causes": causes,
        "titles": titles,
        "fragile": fragile(summary, titles),
        # Plays saved with robustness values where one could not be read (a dash), named once.
        "no_bound": w.no_bound_sentence(
            [
                titles[p["play"]].split(":")[0]
                for p in summary["plays"]
                if "robustness" in p and p["robustness"] is None
            ]
        ),
        "policy_words": POLICY_WORDS,
        "folder": folder,
    }
