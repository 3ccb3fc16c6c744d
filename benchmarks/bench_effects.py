"""Which plays work: the issue's figures on a synthetic world with plays, and `radar effects` time.

For each run (a fresh process, so peak RSS is its own): generate N accounts x 24 months with
plays (seed = run), then time the effects analysis (snapshots + estimate + policy evaluation
+ worklist, what `radar effects` does before logging) and report against the oracle: each
play's average effect vs the truth, 90% interval coverage, Qini, naive errors; ARR saved per
CSM hour of the worklist, the rule policy and risk ranking (DR with bootstrap intervals, and
the truth); risk-if-nothing-is-done models vs the oracle's untreated probability. Times and
memory are medians over runs; the figures are those of every run, and with several runs
the coverage and the policies' order over all of them.

    .venv/bin/python benchmarks/bench_effects.py --accounts 2000 --runs 1
    .venv/bin/python benchmarks/bench_effects.py --accounts 2000 --runs 2 --pilot 0.2
    .venv/bin/python benchmarks/bench_effects.py --accounts 20000 --runs 3
    .venv/bin/python benchmarks/bench_effects.py --accounts 20000 --runs 5 --first-seed 4 \
        --save more.json
    .venv/bin/python benchmarks/bench_effects.py --load first.json more.json  # runs joined
    .venv/bin/python benchmarks/bench_effects.py --accounts 100000 --runs 1 --time-only
    .venv/bin/python benchmarks/bench_effects.py --data DIR --runs 2 --time-only  # a world made
        # before (radar generate --plays; generating 100,000 accounts takes about 18 minutes)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
import pandas as pd
from features.synthetic.dataset import generate_dataset
from features.synthetic.process import SyntheticConfig
from effects.config import EffectsConfig
from effects.run import analyse, load_from_data, truth_of
from effects.risk import against_truth, untreated_risk
n, out, seed, time_only = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
pilot, given = float(sys.argv[5]), sys.argv[6] == "1"
t = time.perf_counter()
plays = {"enabled": True, "pilot": pilot}
if not given:
    generate_dataset(out, n, 24, seed, SyntheticConfig.from_yaml(None, plays=plays))
gen = time.perf_counter() - t
cfg = EffectsConfig()
t = time.perf_counter()
table, actions = load_from_data(out, cfg)
load = time.perf_counter() - t
truth = truth_of(out)
report = analyse(table, cfg, actions, None if time_only else truth)
wall = time.perf_counter() - t
res = {"generate_s": gen, "snapshots_s": load, "effects_s": wall,
       "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
       "rows": len(report.result.rows),
       "pilot_plays": int(report.result.rows["pilot_propensity"].notna().sum())}
if not time_only:
    res["oracle"] = report.oracle.to_dict(orient="records")
    res["policies"] = [vars(v) for v in report.policies]
    late, preds = untreated_risk(report.result, cfg)
    res["risk"] = against_truth(late, preds, truth).to_dict(orient="records")
print(json.dumps(res, default=float))
"""


def run_once(
    accounts: int, seed: int, time_only: bool, pilot: float = 0.0, data: str | None = None
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(accounts),
                data or str(Path(tmp) / "data"),
                str(seed),
                "1" if time_only else "0",
                str(pilot),
                "1" if data else "0",
            ],
            capture_output=True,
            text=True,
        )
    if proc.returncode:
        sys.exit(f"run with seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=1, help="Seeds first-seed, +1, ...")
    ap.add_argument("--time-only", action="store_true", help="Skip the oracle figures.")
    ap.add_argument(
        "--pilot",
        type=float,
        default=0.0,
        help="Share of the plays given as a randomised pilot (recorded chance); 0: none.",
    )
    ap.add_argument("--data", help="Time (and judge) this world instead of generating one per run.")
    ap.add_argument("--save", help="Also write every run's figures to this JSON file.")
    ap.add_argument(
        "--load", nargs="+", help="Print the figures of --save files, runs joined (no runs)."
    )
    args = ap.parse_args()
    if args.load:
        runs = [r for path in args.load for r in json.loads(Path(path).read_text())]
    else:
        seeds = range(args.first_seed, args.first_seed + args.runs)
        runs = [run_once(args.accounts, s, args.time_only, args.pilot, args.data) for s in seeds]
    if args.save:
        Path(args.save).write_text(json.dumps(runs, default=float))
    keys = ("generate_s", "snapshots_s", "effects_s", "peak_rss_gib", "rows")
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    pilot = f", pilot share {args.pilot:g}" if args.pilot else ""
    world = f"the world in {args.data}" if args.data else f"{args.accounts:,} accounts x 24 months"
    print(f"{world} with plays{pilot}, {len(runs)} run(s), medians:")
    print(
        f"  generate {med['generate_s']:.0f} s; radar effects {med['effects_s']:.0f} s "
        f"(snapshots {med['snapshots_s']:.0f} s), {med['rows']:,.0f} labelled rows, "
        f"peak RSS {med['peak_rss_gib']:.2f} GiB"
    )
    if args.time_only:
        return
    for i, r in enumerate(runs, 1):
        pilots = f" ({r['pilot_plays']} randomised pilot plays)" if r.get("pilot_plays") else ""
        print(f"run {i}: each play's average effect on 90-day churn vs the truth{pilots}")
        print(
            f"  {'play':20s} {'n':>5s} {'estimate [90% interval]':>28s} {'true':>7s} "
            f"{'covered':>7s} {'naive':>7s} {'success':>7s} {'qini':>5s} {'qini_x':>6s} "
            f"{'row cov':>7s} {'robust':>6s} {'needs':>6s}"
        )
        for o in r["oracle"]:
            print(
                f"  {o['play']:20s} {o['treated']:5d} {o['estimate']:+.3f} "
                f"[{o['low']:+.3f}, {o['high']:+.3f}]      {o['true']:+.3f} "
                f"{str(o['covered']):>7s} {o['naive_difference']:+.3f} {o['success_rate']:7.1%} "
                f"{o['qini']:5.2f} {o.get('qini_expected', float('nan')):6.2f} "
                f"{o['cate_coverage']:7.2f} {o.get('robustness', float('nan')):6.2%} "
                f"{o.get('strength_needed', float('nan')):6.3%}"
            )
        cov = statistics.mean(o["covered"] for o in r["oracle"])
        err = statistics.mean(abs(o["error"]) for o in r["oracle"])
        nerr = statistics.mean(abs(o["naive_error"]) for o in r["oracle"])
        print(f"  coverage {cov:.2f}; mean |error| {err:.4f} (naive {nerr:.4f})")
        print("  ARR saved per CSM hour (DR estimate [90% bootstrap], truth):")
        for v in r["policies"]:
            print(
                f"    {v['policy']:9s} {v['per_hour']:9,.0f} [{v['low']:9,.0f}, {v['high']:9,.0f}]"
                f"  true {v['true_per_hour']:9,.0f}  ({v['plays']} plays, {v['hours']:,.0f} h)"
            )
        truth = {v["policy"]: v["true_per_hour"] for v in r["policies"]}
        for other, (est, lo, hi) in r["policies"][0].get("lead", {}).items():
            print(
                f"    worklist minus {other:5s} {est:9,.0f} [{lo:9,.0f}, {hi:9,.0f}]"
                f"  true {truth['worklist'] - truth[other]:9,.0f}  (paired bootstrap)"
            )
        print("  risk if nothing is done vs the oracle's untreated probability (later months):")
        for m in r["risk"]:
            print(
                f"    {m['model']:16s} ECE {m['ece_vs_untreated_oracle']:.4f}  treated rows: ECE "
                f"{m['ece_treated_rows']:.4f} bias {m['bias_treated_rows']:+.4f}  AUC "
                f"{m['auc_vs_untreated_draw']:.3f}  "
                f"Spearman {m['spearman_vs_untreated_oracle']:.3f}"
            )
    if len(runs) > 1:
        overall(runs)


def overall(runs: list[dict]) -> None:
    """Across runs: interval coverage, and how often the worklist leads and is set apart."""
    effects = [o for r in runs for o in r["oracle"]]
    covered = sum(bool(o["covered"]) for o in effects)
    print(
        f"over {len(runs)} runs: {covered} of {len(effects)} per-play 90% intervals cover the "
        f"truth ({covered / len(effects):.2f}; target 0.85-0.95)"
    )
    needs = [o["strength_needed"] for o in effects if not o["covered"] and "strength_needed" in o]
    if needs:
        print(
            f"  the misses' truth lies in the interval widened for unseen confounding of "
            f"{statistics.median(needs):.3%} (median), {max(needs):.3%} (most)"
        )
    first = apart = lead_true = leads = leads_above = policy_cover = 0
    for r in runs:
        v = {p["policy"]: p for p in r["policies"]}
        w, others = v["worklist"], [v[k] for k in v if k != "worklist"]
        lead_true += all(w["true_per_hour"] > o["true_per_hour"] for o in others)
        first += all(w["per_hour"] > o["per_hour"] for o in others)
        apart += all(w["low"] > o["high"] for o in others)
        policy_cover += sum(p["low"] <= p["true_per_hour"] <= p["high"] for p in v.values())
        for _, lo, _ in w.get("lead", {}).values():
            leads += 1
            leads_above += lo > 0
    n = len(runs)
    print(
        f"  the worklist saves the most in truth in {lead_true} of {n}; the evaluation ranks it "
        f"first in {first}; its interval lies above both others' in {apart} (target: all); "
        f"paired leads above zero {leads_above} of {leads}; policy intervals covering their "
        f"truth {policy_cover} of {3 * n}"
    )


if __name__ == "__main__":
    main()
