"""The whole analysis of ``radar effects``: estimate, evaluate policies, build the worklist.

Inputs are a data folder (snapshots built with :mod:`features.pipeline`, plays from
``csm_actions``) or a table of one's own with a treatment and an outcome column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from effects.config import EffectsConfig
from effects.data import (
    NO_PLAY_RECORDS,
    NONE,
    EffectsError,
    causes,
    check_actions,
    effect_table,
    policy_split,
    rule_play,
)
from effects.estimate import (
    EffectsResult,
    covariates,
    design_matrix,
    estimate_effects,
    lgbm,
    predict,
)
from effects.evaluate import TRUTH_FILE, evaluate, true_effects
from effects.policy import (
    PolicyValue,
    capacity_hours,
    choose_plays,
    evaluate_policies,
    evidence,
    expected_effects,
    team_size,
    worklist,
)
from features.words import PLAYS

log = logging.getLogger(__name__)


@dataclass
class EffectsReport:
    """What ``radar effects`` prints and logs."""

    result: EffectsResult
    capacity: float
    csms: int
    policies: list[PolicyValue] = field(default_factory=list)
    worklist: pd.DataFrame | None = None
    # The latest date's accounts with each play's effect, its evidence and the chosen play.
    accounts: pd.DataFrame | None = None
    oracle: pd.DataFrame | None = None  # per play against the truth (synthetic data)
    # Accounts in the data, and those the estimate learned from (fewer past max_accounts).
    accounts_total: int = 0
    accounts_learned: int = 0
    # Every account's labelled rows of an estimated play, where the estimate learned from a
    # sample: the program's plays and ARR saved count all of them (None: the estimate's rows).
    played: pd.DataFrame | None = None


def load_from_data(data: str | Path, cfg: EffectsConfig, progress=None):
    """The effect table and the ``csm_actions`` rows of a data folder (validated)."""
    from features.config import FeatureConfig
    from features.pipeline import build_snapshots
    from features.snapshots import as_of_dates, data_end
    from features.sources import open_data

    fcfg = FeatureConfig()
    with open_data(data) as ds:
        actions = ds.tables.get("csm_actions")
        if actions is None or len(actions) == 0:
            raise EffectsError(NO_PLAY_RECORDS)
        first = pd.Timestamp(as_of_dates(ds, fcfg).min())
        check_actions(actions, first, pd.Timestamp(data_end(ds, fcfg)))  # before any work
        snaps = build_snapshots(ds, fcfg, progress).snapshots
    return effect_table(snaps, actions, cfg), actions


def load_table(path: str | Path, treatment: str, outcome: str, cfg: EffectsConfig) -> pd.DataFrame:
    """A feature table of one's own: ``treatment`` holds play codes (empty or none: no play)."""
    path = Path(path)
    if not path.exists():
        raise EffectsError(f"{path}: no such file")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    for col in (treatment, outcome):
        if col not in df:
            raise EffectsError(f"{path.name}: no column {col!r}")
    t = df[treatment].astype(object).where(df[treatment].notna(), NONE)
    t = t.replace({"": NONE})
    bad = ~t.isin([NONE, *PLAYS])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise EffectsError(
            f"{path.name} row {row}: unknown play {t.iloc[row]!r} in column {treatment!r} "
            f"(known: none, {', '.join(PLAYS)})"
        )
    y = pd.to_numeric(df[outcome], errors="coerce")
    if not y.dropna().isin([0, 1]).all():
        raise EffectsError(f"{path.name}: column {outcome!r} must hold 0/1 outcomes")
    out = df.assign(treatment=t, outcome=y)
    if "account_id" not in out:
        out["account_id"] = np.arange(len(out)).astype(str)
    if "as_of" not in out:
        out["as_of"] = pd.Timestamp("1970-01-01")
    out["as_of"] = pd.to_datetime(out["as_of"])
    if "plays_before_180d" not in out:
        out["plays_before_180d"] = 0
    flags = causes(out, cfg)
    for c in flags:
        if f"cause_{c}" not in out:
            out[f"cause_{c}"] = flags[c].to_numpy()
    if "rule_play" not in out:
        out["rule_play"] = rule_play(flags).to_numpy()
    if "arr" not in out:
        out["arr"] = 0.0
    return out


def _risk(train: pd.DataFrame, rows: pd.DataFrame, cfg: EffectsConfig) -> np.ndarray:
    """Churn risk as today's model sees it: a classifier of the outcome on the signals."""
    cols = covariates(train)
    model = lgbm(cfg, cfg.seed + 7).fit(design_matrix(train, cols), train["outcome"].astype(int))
    return model.predict_proba(design_matrix(rows, cols))[:, 1]


def learning_sample(table: pd.DataFrame, cfg: EffectsConfig) -> pd.DataFrame:
    """The rows of at most ``cfg.max_accounts`` accounts drawn at random (seeded), all months."""
    ids = table["account_id"].unique()
    if len(ids) <= cfg.max_accounts:
        return table
    keep = np.random.default_rng(cfg.seed).choice(ids, cfg.max_accounts, replace=False)
    return table[table["account_id"].isin(keep)]


def analyse(
    table: pd.DataFrame,
    cfg: EffectsConfig,
    actions: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
) -> EffectsReport:
    """Estimate effects; with several as-of dates, evaluate the policies and build a worklist.

    The worklist's own estimate learns from the as-of dates before the first
    ``POLICY_SHARE`` of them (:mod:`effects.data`), less a gap as long as the outcome's
    horizon; the later dates score it with the full estimate's cross-fitted DR scores.
    Past ``cfg.max_accounts`` accounts, the estimates and the evaluation learn from a random
    sample of them (the evaluation with the sample's share of the hours); the worklist
    covers every account.
    """
    learn = learning_sample(table, cfg)
    result = estimate_effects(learn, cfg)
    accounts = table["account_id"].nunique()
    csms = team_size(cfg, actions, accounts)
    capacity = capacity_hours(cfg, csms)
    report = EffectsReport(result, capacity, csms)
    report.accounts_total, report.accounts_learned = accounts, learn["account_id"].nunique()
    share = report.accounts_learned / max(accounts, 1)
    if report.accounts_learned < accounts:
        estimated = [p.play for p in result.plays]
        report.played = table[table["treatment"].isin(estimated) & table["outcome"].notna()]
    if truth is not None:
        report.oracle = evaluate(result, truth)
    dates = np.sort(learn.loc[learn["outcome"].notna(), "as_of"].unique())
    if len(dates) >= 4:
        cut, learn_end = policy_split(dates, cfg)
        early = learn[(learn["as_of"] < learn_end) & learn["outcome"].notna()]
        try:
            early_res = estimate_effects(early, cfg)
        except EffectsError as exc:
            log.warning("no policy evaluation: %s", exc)
            early_res = None
        if early_res is not None:
            rows = result.rows[result.rows["as_of"] >= cut]
            drop = [c for c in rows if c.split("_")[0] in ("cate", "low", "high", "saved")]
            drop.append("base_risk")  # the worklist's estimate predicts its own
            late = rows.drop(columns=drop)
            late = pd.concat([late, predict(early_res, late)], axis=1)
            late["risk"] = _risk(early, late, cfg)
            t = None
            if truth is not None:
                t = true_effects(result, truth).loc[late.index]
            report.policies = evaluate_policies(late, early_res, cfg, capacity * share, t)
    latest = table[table["as_of"] == table["as_of"].max()]
    if len(latest):
        now = pd.concat([latest, predict(result, latest)], axis=1)
        if "outcome" in learn and len(learn.dropna(subset=["outcome"])):
            now["risk"] = _risk(learn.dropna(subset=["outcome"]), now, cfg)
        report.worklist = worklist(now, result, cfg, capacity)
        report.accounts = account_effects(now, result, cfg)
    return report


def account_effects(now: pd.DataFrame, result: EffectsResult, cfg: EffectsConfig) -> pd.DataFrame:
    """``now`` with the chosen play, its basis, and each play's evidence and expected effect.

    ``now``: the rows of one date with :func:`effects.estimate.predict`'s columns.
    """
    now = now.copy()
    chosen = choose_plays(now, result, cfg)
    now["chosen_play"], now["chosen_basis"] = chosen["play"], chosen["basis"]
    for play, mask in evidence(now, result).items():
        now[f"evidence_{play}"] = mask
    for play, e in expected_effects(now, result).items():
        now[f"expected_{play}"] = e["estimate"]
        now[f"expected_low_{play}"], now[f"expected_high_{play}"] = e["low"], e["high"]
    return now


def truth_of(data: str | Path) -> pd.DataFrame | None:
    """The synthetic world's true play effects, where the data folder has them."""
    path = Path(data) / "ground_truth" / TRUTH_FILE
    return pd.read_parquet(path) if path.exists() else None
