"""What ticket and survey text adds: reading accuracy against the truth, and the heads' lift.

Two synthetic worlds with text (same seed). In the **signal** world (``radar generate --text
--intent``) some renewals carry a hidden intent to leave that raises churn and shows only in
what the account writes (features.synthetic.intent): the text carries something nothing else
does. In the **control** world (``--text`` alone) the text's tone and topics follow the
latent health that usage, support and NPS already show. For each: the analyser's sentiment
and topic accuracy against ``ground_truth/text_truth.parquet`` (keywords; and a supervised
classifier trained on the earlier half of the tickets' true topics, tested on the later
half), then every head's test ROC-AUC and ECE trained with and without the text features
(``text_features: false``), on the same snapshots and splits, with a paired bootstrap 95%
interval of the ROC-AUC difference. Target: a clear lift in the signal world, none (within
noise) in the control.

    .venv/bin/python benchmarks/bench_text.py --accounts 4000 --months 24

The text path of scoring many accounts (texts of the last 180 days, made distinct, read in
one process and in worker processes; see ``scoring_volume``):

    .venv/bin/python benchmarks/bench_text.py --data DIR --score-accounts 100000

With ``--warm``: the same date read with the reading cache (features.text_cache) kept by a
cold read one month earlier, so only the month's new texts are read (see ``warm_volume``):

    .venv/bin/python benchmarks/bench_text.py --data DIR --score-accounts 100000 --warm
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.catalogue import TEXT_TONES, TEXT_TOPICS
from features.config import FeatureConfig
from features.pipeline import run_features
from features.text import TextConfig, fit_topic_classifier, text_signals, tones, topic_codes
from features.text_cache import ReadingCache


def world(out: Path, accounts: int, months: int, seed: int, signal: bool) -> Path:
    """``radar generate --text``, with ``--intent`` in the signal world."""
    args = ["--accounts", str(accounts), "--months", str(months), "--seed", str(seed)]
    args += ["--out", str(out), "--text"] + (["--intent"] if signal else [])
    subprocess.run(
        [sys.executable, "-m", "radar.cli", "generate", *args], check=True, capture_output=True
    )
    return out


def reading(data: Path) -> dict:
    """Sentiment and topic accuracy of the analyser against the generator's truth."""
    tickets = pd.read_parquet(data / "support_tickets.parquet")
    nps = pd.read_parquet(data / "nps_responses.parquet")
    truth = pd.read_parquet(data / "ground_truth" / "text_truth.parquet")
    cfg = TextConfig()
    start = time.perf_counter()
    sig = text_signals(tickets, nps, cfg)
    seconds = time.perf_counter() - start
    t_truth = truth[truth["kind"] == "ticket"].set_index("ticket_id").loc[tickets["ticket_id"]]
    c_truth = truth[truth["kind"] == "comment"]
    keys = ["account_id", "contact_id", "date"]
    c_truth = nps[nps["comment"].notna()][keys].merge(c_truth, on=keys, how="left")
    out: dict = {"texts": len(sig), "analyse_s": round(seconds, 2)}
    # Synthetic texts repeat (read once each); real ones rarely do: time distinct texts too.
    sample = tickets.head(20_000)
    unique = sample.assign(
        body=sample["body"].fillna("") + [f" Ref {i}." for i in range(len(sample))]
    )
    start = time.perf_counter()
    text_signals(unique, None, cfg)
    out["distinct_ticket_us"] = round((time.perf_counter() - start) / len(unique) * 1e6, 1)
    for kind, tr in (("ticket", t_truth["tone"].to_numpy()), ("comment", c_truth["tone"])):
        s = sig[sig["kind"] == kind]
        read = s["read"].to_numpy()
        said = np.asarray(TEXT_TONES, dtype=object)[tones(s["sentiment"].to_numpy(), cfg)[read]]
        tr = np.asarray(tr)[read]
        out[f"{kind}_read_share"] = round(float(read.mean()), 4)
        out[f"{kind}_tone_accuracy"] = round(float((said == tr).mean()), 4)
        out[f"{kind}_frustrated_accuracy"] = round(
            float(((said == "frustrated") == (tr == "frustrated")).mean()), 4
        )
    # Topics of tickets: the keyword taxonomy, and a classifier on the earlier half's labels.
    true_topic = t_truth["topic"].to_numpy()
    bit = np.array([1 << TEXT_TOPICS.index(t) for t in true_topic])
    mask = sig.loc[sig["kind"] == "ticket", "topics"].to_numpy()
    out["topic_keyword_exact"] = round(float((mask == bit).mean()), 4)
    out["topic_keyword_found"] = round(float(((mask & bit) > 0).mean()), 4)
    texts = (tickets["subject"].fillna("") + ". " + tickets["body"].fillna("")).to_numpy()
    order = np.argsort(tickets["created_date"].to_numpy(), kind="stable")
    half = len(order) // 2
    clf = fit_topic_classifier(texts[order[:half]], true_topic[order[:half]])
    got = topic_codes(list(texts[order[half:]]), cfg, clf)
    out["topic_classifier_accuracy"] = round(float((got == bit[order[half:]]).mean()), 4)
    later = mask[order[half:]] == bit[order[half:]]
    out["topic_keyword_exact_later_half"] = round(float(later.mean()), 4)
    if "intent" in truth.columns and truth["intent"].any():  # what intending accounts wrote
        leaving = (1 << TEXT_TOPICS.index("pricing")) | (1 << TEXT_TOPICS.index("competitor"))
        said = sig["topics"].to_numpy() & leaving > 0
        flag = np.concatenate(
            [t_truth["intent"].to_numpy(), c_truth["intent"].fillna(False).to_numpy()]
        )
        out["intent_text_share"] = round(float(flag.mean()), 4)
        out["pricing_or_competitor_found_intent"] = round(float(said[flag].mean()), 4)
        out["pricing_or_competitor_found_other"] = round(float(said[~flag].mean()), 4)
    return out


CHILD = """
import json, sys
from training.config import TrainConfig
from training.train import from_snapshots, train
cfg = TrainConfig()
result = train(from_snapshots(sys.argv[1], cfg), cfg)
rows = [r for r in result.evaluation if r["segment"] == "all"]
for head, h in result.heads.items():  # the test rows' labels and the model's probability
    h.test[["y", "model"]].reset_index(drop=True).to_parquet(f"{sys.argv[2]}/{head}.parquet")
got = {f"{r['head']}/{r['predictor']}/{m}": r[m] for r in rows for m in ("roc_auc", "ece")}
print(json.dumps(got))
"""


def test_metrics(features: Path, tests: Path) -> dict:
    """Every head's test ROC-AUC and ECE by predictor, trained in a fresh process."""
    tests.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(features), str(tests)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def paired_delta(with_text: Path, without: Path, draws: int = 1000) -> list[float]:
    """95% paired bootstrap interval of ROC-AUC with minus without text, on the same test rows."""
    a, b = pd.read_parquet(with_text), pd.read_parquet(without)
    if len(a) != len(b) or not (a["y"].to_numpy() == b["y"].to_numpy()).all():
        return [float("nan"), float("nan")]
    y, pa_, pb = a["y"].to_numpy(), a["model"].to_numpy(), b["model"].to_numpy()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            out.append(roc_auc_score(y[i], pa_[i]) - roc_auc_score(y[i], pb[i]))
    lo, hi = np.percentile(out, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def lift(data: Path, tmp: Path) -> dict:
    """Test ROC-AUC and ECE of each head's model with the text features and without them."""
    out = {}
    for name, on in (("with_text", None), ("without_text", False)):
        features = tmp / f"{data.name}_{name}"
        run_features(data, features, FeatureConfig(text_features=on))
        out[name] = test_metrics(features, tmp / f"{data.name}_{name}_tests")
    heads = sorted({k.split("/")[0] for k in out["with_text"]})
    got = {}
    for h in heads:
        w, wo = out["with_text"], out["without_text"]
        got[h] = {
            "with": round(w[f"{h}/model/roc_auc"], 4),
            "without": round(wo[f"{h}/model/roc_auc"], 4),
            "delta": round(w[f"{h}/model/roc_auc"] - wo[f"{h}/model/roc_auc"], 4),
            "delta_95": paired_delta(
                tmp / f"{data.name}_with_text_tests" / f"{h}.parquet",
                tmp / f"{data.name}_without_text_tests" / f"{h}.parquet",
            ),
            "ece_with": round(w[f"{h}/model/ece"], 4),
            "ece_without": round(wo[f"{h}/model/ece"], 4),
            "oracle": round(w.get(f"{h}/oracle/roc_auc", float("nan")), 4),
        }
    return got


def scoring_volume(data: Path, accounts: int, sample: int, runs: int) -> dict:
    """The text path of scoring one date for ``accounts`` accounts, from a sample of texts.

    Scoring reads the texts of the last 180 days (the longest text window). Their number at
    ``accounts`` is the world's last 180 days scaled by accounts; ``sample`` of them, each
    made distinct (real tickets rarely repeat; the synthetic ones do and would be read once),
    are read by ``text_signals`` in one process and in worker processes, ``runs`` times;
    seconds per text times the volume gives the time at scale (medians).
    """
    tickets = pd.read_parquet(data / "support_tickets.parquet")
    nps = pd.read_parquet(data / "nps_responses.parquet")
    end = tickets["created_date"].max()
    lo = end - pd.Timedelta(days=180)
    recent_t = tickets[tickets["created_date"] > lo]
    recent_c = nps[(nps["date"] > lo) & nps["comment"].notna()]
    world_accounts = pd.read_parquet(data / "accounts.parquet")["account_id"].nunique()
    volume = (len(recent_t) + len(recent_c)) * accounts / world_accounts
    reps = -(-sample // max(len(recent_t), 1))
    t = pd.concat([recent_t] * reps, ignore_index=True).head(sample)
    t = t.assign(body=t["body"].fillna("") + [f" Ref {i}." for i in range(len(t))])
    out: dict = {"accounts": accounts, "texts_180d": int(volume), "sample": len(t)}
    for name, workers in (("one_process", 1), ("workers", None)):
        cfg = TextConfig()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            if workers == 1:
                text_signals(t, None, cfg, workers=1)
            else:  # as scoring does at this volume: one worker per core (up to 8)
                text_signals(t, None, cfg, workers=min(os.cpu_count() or 1, 8))
            times.append(time.perf_counter() - start)
        per = float(np.median(times)) / len(t)
        out[f"{name}_us_per_text"] = round(per * 1e6, 1)
        out[f"{name}_s_at_scale"] = round(per * volume, 1)
    return out


def warm_volume(data: Path, accounts: int, sample: int, runs: int) -> dict:
    """The text path of scoring the last date with a cache kept by scoring a month earlier.

    Tickets of the last 210 days are repeated up to about ``sample`` of the last 180 days,
    each copy made distinct (real tickets rarely repeat) the same way in both reads. The cold
    read (the 180 days up to a month before the last date, an empty cache) keeps its
    readings; the warm read (the 180 days up to the last date) takes those from the cache and
    reads the month's new texts. Both include loading and saving the cache file. Seconds per
    text of the 180 days times the volume at ``accounts`` give the time at scale (medians of
    ``runs``; the warm runs each start from the cold read's file).
    """
    tickets = pd.read_parquet(data / "support_tickets.parquet")
    nps = pd.read_parquet(data / "nps_responses.parquet")
    end = tickets["created_date"].max()
    month = end - pd.Timedelta(days=30)
    lo = end - pd.Timedelta(days=180)
    recent_c = nps[(nps["date"] > lo) & nps["comment"].notna()]
    world_accounts = pd.read_parquet(data / "accounts.parquet")["account_id"].nunique()
    in_180 = tickets[tickets["created_date"] > lo]
    volume = (len(in_180) + len(recent_c)) * accounts / world_accounts
    reps = -(-sample // max(len(in_180), 1))
    span = tickets[tickets["created_date"] > month - pd.Timedelta(days=180)]
    t = pd.concat([span.assign(_rep=r) for r in range(reps)], ignore_index=True)
    ref = " Ref " + t["ticket_id"].astype(str) + "-" + t["_rep"].astype(str) + "."
    t = t.assign(body=t["body"].fillna("") + ref).drop(columns="_rep")
    cold = t[t["created_date"] <= month]
    warm = t[t["created_date"] > lo]
    out: dict = {
        "accounts": accounts,
        "texts_180d": int(volume),
        "cold_sample": len(cold),
        "warm_sample": len(warm),
        "new_share": round(float((warm["created_date"] > month).mean()), 4),
    }
    cfg = TextConfig()
    with tempfile.TemporaryDirectory() as tmp:
        kept = Path(tmp) / "cold.parquet"
        times = {"no_cache": [], "cold": [], "warm": []}
        for _ in range(runs):
            start = time.perf_counter()
            text_signals(warm, None, cfg, workers=1)
            times["no_cache"].append(time.perf_counter() - start)
            kept.unlink(missing_ok=True)
            start = time.perf_counter()
            cache = ReadingCache(kept)
            text_signals(cold, None, cfg, workers=1, cache=cache)
            cache.save()
            times["cold"].append(time.perf_counter() - start)
            path = Path(tmp) / "warm.parquet"
            shutil.copyfile(kept, path)
            start = time.perf_counter()
            cache = ReadingCache(path)
            got = text_signals(warm, None, cfg, workers=1, cache=cache)
            cache.save()
            times["warm"].append(time.perf_counter() - start)
            out["warm_read"], out["warm_reused"] = cache.read, cache.reused
        same = got.equals(text_signals(warm, None, cfg, workers=1))
    out["warm_equals_no_cache"] = bool(same)
    for name, sizes in (("no_cache", len(warm)), ("cold", len(cold)), ("warm", len(warm))):
        per = float(np.median(times[name])) / sizes
        out[f"{name}_us_per_text"] = round(per * 1e6, 1)
        out[f"{name}_s_at_scale"] = round(per * volume, 1)
    out["load_average"] = round(os.getloadavg()[0], 1)
    return out


def main() -> None:
    """Run both worlds and print the figures as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=4000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, help="Write the figures as JSON here too.")
    p.add_argument(
        "--worlds", nargs="+", default=["signal", "control"], choices=["signal", "control"]
    )
    p.add_argument("--data", type=Path, help="With --score-accounts: an existing text world.")
    p.add_argument(
        "--score-accounts",
        type=int,
        help="Only time the text path of scoring this many accounts (see scoring_volume).",
    )
    p.add_argument(
        "--warm",
        action="store_true",
        help="With --score-accounts: time a warm reading cache a month after a cold one.",
    )
    p.add_argument("--sample", type=int, default=40_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    figures: dict = {"accounts": a.accounts, "months": a.months, "seed": a.seed}
    if a.score_accounts:
        volume = warm_volume if a.warm else scoring_volume
        figures = volume(a.data, a.score_accounts, a.sample, a.runs)
        print(json.dumps(figures, indent=1))
        if a.out:
            a.out.write_text(json.dumps(figures, indent=1))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for label, signal in (("signal", True), ("control", False)):
            if label not in a.worlds:
                continue
            data = world(Path(tmp) / label, a.accounts, a.months, a.seed, signal)
            figures[label] = {"reading": reading(data), "roc_auc": lift(data, Path(tmp))}
            print(json.dumps({label: figures[label]}, indent=1), flush=True)
    if a.out:
        a.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
