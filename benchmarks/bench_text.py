"""What ticket and survey text adds: reading accuracy against the truth, and the heads' lift.

Two synthetic worlds with text (same seed): in one the tone follows the latent state (the
default), in the other it is noise (``tone_health = tone_change = 0``, the control). For
each: the analyser's sentiment and topic accuracy against ``ground_truth/text_truth.parquet``
(keywords; and a supervised classifier trained on the earlier half of the tickets' true
topics, tested on the later half), then every head's test ROC-AUC trained with and without
the text features (``text_features: false``), on the same snapshots and splits. Target: the
text features add where the generator put signal and cost nothing in the control.

    .venv/bin/python benchmarks/bench_text.py --accounts 4000 --months 24
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from features.catalogue import TEXT_TONES, TEXT_TOPICS
from features.config import FeatureConfig
from features.pipeline import run_features
from features.text import TextConfig, fit_topic_classifier, text_signals, tones, topic_codes


def world(out: Path, accounts: int, months: int, seed: int, signal: bool) -> Path:
    """``radar generate --text`` (with the tone made noise when ``signal`` is False)."""
    args = ["--accounts", str(accounts), "--months", str(months), "--seed", str(seed)]
    args += ["--out", str(out), "--text"]
    if not signal:
        cfg = out.parent / f"{out.name}.yaml"
        cfg.write_text(yaml.safe_dump({"text": {"tone_health": 0.0, "tone_change": 0.0}}))
        args += ["--config", str(cfg)]
    subprocess.run([sys.executable, "-m", "radar.cli", "generate", *args], check=True)
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
    return out


CHILD = """
import json, sys
from training.config import TrainConfig
from training.train import from_snapshots, train
cfg = TrainConfig()
result = train(from_snapshots(sys.argv[1], cfg), cfg)
rows = [r for r in result.evaluation if r["segment"] == "all"]
print(json.dumps({f"{r['head']}/{r['predictor']}": r["roc_auc"] for r in rows}))
"""


def test_auc(features: Path) -> dict:
    """Every head's test ROC-AUC by predictor, trained in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(features)], check=True, capture_output=True, text=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def lift(data: Path, tmp: Path) -> dict:
    """Test ROC-AUC of each head's model with the text features and without them."""
    out = {}
    for name, on in (("with_text", None), ("without_text", False)):
        features = tmp / f"{data.name}_{name}"
        run_features(data, features, FeatureConfig(text_features=on))
        out[name] = test_auc(features)
    heads = sorted({k.split("/")[0] for k in out["with_text"]})
    return {
        h: {
            "with": round(out["with_text"][f"{h}/model"], 4),
            "without": round(out["without_text"][f"{h}/model"], 4),
            "delta": round(out["with_text"][f"{h}/model"] - out["without_text"][f"{h}/model"], 4),
            "oracle": round(out["with_text"].get(f"{h}/oracle", float("nan")), 4),
        }
        for h in heads
    }


def main() -> None:
    """Run both worlds and print the figures as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=4000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, help="Write the figures as JSON here too.")
    a = p.parse_args()
    figures: dict = {"accounts": a.accounts, "months": a.months, "seed": a.seed}
    with tempfile.TemporaryDirectory() as tmp:
        for label, signal in (("signal", True), ("control", False)):
            data = world(Path(tmp) / label, a.accounts, a.months, a.seed, signal)
            figures[label] = {"reading": reading(data), "roc_auc": lift(data, Path(tmp))}
            print(json.dumps({label: figures[label]}, indent=1), flush=True)
    if a.out:
        a.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
