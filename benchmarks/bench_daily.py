"""Daily-run speed beyond scoring: CTAs, escalation, outbox, on N accounts.

Targets (issue 27): 20,000 accounts in under a minute beyond scoring; an unchanged second run
opens no CTA and writes no message. Records are synthetic with the columns `radar score`
writes (scoring is timed by bench_score.py): 50 CSMs (a team of 10 per manager), alerts and
plays drawn from the catalogue, 5% of accounts without ARR. Messages go to a JSON webhook on
loopback (apprise ``json://``), so sending is timed too. Each repeat runs on a fresh store;
the peak resident memory is that of the process (it holds the records).

    .venv/bin/python benchmarks/bench_daily.py --accounts 2000 --repeat 3
    .venv/bin/python benchmarks/bench_daily.py --accounts 20000 --store postgresql://...
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from actions.config import ActionsConfig, Channel, Person, TeamConfig
from actions.models import Cta, Outbox
from actions.run import run_once
from actions.store import open_store
from features.words import ALERT_WORDS, PLAYS
from serving.plays import ScoringConfig

CSMS_PER_MANAGER = 10


def records(n: int, seed: int = 1) -> pd.DataFrame:
    """``n`` synthetic scoring records: owners, alerts, plays, ARR (5% missing), risk."""
    rng = np.random.default_rng(seed)
    alerts = list(ALERT_WORDS)
    n_alerts = rng.choice([0, 0, 0, 1, 1, 2], size=n)
    arr = rng.lognormal(10.5, 1.2, size=n)
    arr[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "account_id": [f"acc-{i:06d}" for i in range(n)],
            "csm_owner": [f"csm-{i % 50:02d}" for i in range(n)],
            "alerts": [list(rng.choice(alerts, size=k, replace=False)) for k in n_alerts],
            "play": rng.choice(list(PLAYS), size=n),
            "play_reason": "synthetic",
            "needs_action": rng.random(n) < 0.4,
            "arr": arr,
            "p_churn_30d": rng.beta(1, 12, size=n),
            "p_churn_90d": rng.beta(1, 6, size=n),
            "health_score": rng.uniform(10, 95, size=n),
            "as_of": pd.Timestamp("2026-10-31"),
        }
    )


def receiver() -> tuple[ThreadingHTTPServer, list[int]]:
    """A webhook receiver on loopback counting the messages it gets."""
    got: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            got.append(1)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def config(n: int, port: int) -> ActionsConfig:
    """Teams of 10 CSMs under a manager, one executive; every message to the webhook."""
    csms = [Person(name=f"csm-{i:02d}", email=f"csm{i}@example.com") for i in range(50)]
    teams = tuple(
        TeamConfig(
            name=f"team-{t}",
            manager=Person(name=f"mgr-{t}", email=f"mgr{t}@example.com"),
            executive=Person(name="exec", email="exec@example.com"),
            csms=tuple(csms[t * CSMS_PER_MANAGER : (t + 1) * CSMS_PER_MANAGER]),
        )
        for t in range(5)
    )
    hook = Channel(name="hook", url=f"json://127.0.0.1:{port}/radar")
    return ActionsConfig(teams=teams, channels=(hook,))


def main() -> None:
    """Time first and unchanged second daily runs; print one JSON line of figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--store", default=None, help="A PostgreSQL URL (default: SQLite files).")
    args = ap.parse_args()
    df = records(args.accounts)
    server, got = receiver()
    cfg = config(args.accounts, server.server_address[1])
    high = ScoringConfig().high_severity_alerts
    t0 = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    firsts, seconds, out = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            url = args.store or f"sqlite:///{Path(tmp) / f'r{r}.db'}"
            store = open_store(url)
            if args.store:  # a fresh store each repeat: empty the tables
                from actions.models import Base

                Base.metadata.drop_all(store.engine)
                store.engine.dispose()
                from sqlalchemy import text

                with store.engine.begin() as c:
                    c.execute(text("DROP TABLE IF EXISTS alembic_version"))
                store = open_store(url)
            got.clear()
            start = time.perf_counter()
            first = run_once(store, df, t0, cfg, high)
            firsts.append(time.perf_counter() - start)
            start = time.perf_counter()
            second = run_once(store, df, t0 + timedelta(minutes=5), cfg, high)
            seconds.append(time.perf_counter() - start)
            with store.session() as s:
                n_ctas = s.scalar(select(func.count()).select_from(Cta))
                n_msgs = s.scalar(select(func.count()).select_from(Outbox))
            out = {
                "accounts": args.accounts,
                "store": "postgresql" if args.store else "sqlite",
                "ctas": n_ctas,
                "held_back_by_capacity": first.held_back,
                "messages_first_run": first.queued,
                "delivered": len(got),
                "second_run_new_ctas": second.opened,
                "second_run_messages": second.queued + second.sent,
                "outbox_rows": n_msgs,
            }
            store.close()
    server.shutdown()
    out |= {
        "first_run_s_median": round(statistics.median(firsts), 3),
        "second_run_s_median": round(statistics.median(seconds), 3),
        "repeats": args.repeat,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
