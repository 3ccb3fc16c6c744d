"""Daily-run speed beyond scoring: CTAs, escalation, outbox, on N accounts.

Targets (issue 27): 20,000 accounts in under a minute beyond scoring; an unchanged second run
opens no CTA and writes no message. Records are synthetic with the columns `radar score`
writes (scoring is timed by bench_score.py): 50 CSMs (a team of 10 per manager), alerts and
plays drawn from the catalogue, 5% of accounts without ARR. Messages go to a JSON webhook on
loopback (apprise ``json://``), so sending is timed too. Each repeat runs on a fresh store;
the peak resident memory is that of the process (it holds the records).

    .venv/bin/python benchmarks/bench_daily.py --accounts 2000 --repeat 3
    .venv/bin/python benchmarks/bench_daily.py --accounts 20000 --store postgresql://...
    .venv/bin/python benchmarks/bench_daily.py --accounts 0 --page-ctas 50000 --page-events 500000

Pages (``--page-ctas``): that many CTAs (10% open, over 50 CSMs) and events are inserted into
a fresh store, the CTA app is served by uvicorn on loopback, and "My CTAs" of one CSM and
one account's timeline are each fetched 200 times as a signed-in CSM: p50 and p95.
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
from scoring.plays import ScoringConfig

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


def fill(url: str, n_ctas: int, n_events: int) -> None:
    """Insert ``n_ctas`` CTAs (10% open, 50 CSMs) and ``n_events`` events spread over them."""
    from sqlalchemy import insert

    from actions.models import Event, User

    store = open_store(url)
    t = datetime(2026, 10, 1, tzinfo=UTC)
    with store.session() as s:
        s.execute(
            insert(User), [{"name": f"csm-{i:02d}", "role": "csm", "created": t} for i in range(50)]
        )
        ids = dict(s.execute(select(User.name, User.id)).all())
        s.execute(
            insert(Cta),
            [
                {
                    "account_id": f"acc-{i // 3:06d}",
                    "cause": f"alert:a{i % 3}",
                    "play": "usage_recovery",
                    "severity": "medium",
                    "owner_id": ids[f"csm-{(i // 3) % 50:02d}"],
                    "opened": t,
                    "due": t,
                    "status": "open" if i % 10 == 0 else "closed",
                    "level": 0,
                    "figures": {"arr": 1000.0 + i, "p_churn_90d": 0.2},
                    "last_seen": t.date(),
                    "absent_runs": 0,
                }
                for i in range(n_ctas)
            ],
        )
        s.execute(
            insert(Event),
            [
                {
                    "cta_id": 1 + i % n_ctas,
                    "account_id": f"acc-{(i % n_ctas) // 3:06d}",
                    "at": t + timedelta(minutes=i),
                    "actor": "csm-00",
                    "kind": "note",
                    "payload": {"reason": "bench"},
                }
                for i in range(n_events)
            ],
        )
    store.close()


def pages(url: str, n_ctas: int, n_events: int) -> dict:
    """p50 and p95 of "My CTAs" and an account timeline, served by uvicorn, as csm-00."""
    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from actions.models import User
    from serving import cta_routes

    fill(url, n_ctas, n_events)
    cta_routes._store = open_store(url)
    with cta_routes._store.session() as s:
        user = s.scalars(select(User).where(User.name == "csm-00")).one()
    app = Starlette(routes=[Mount("/ctas", app=cta_routes.app)])
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}/ctas"
    out = {"page_ctas": n_ctas, "page_events": n_events}
    with httpx.Client(cookies={cta_routes.COOKIE: cta_routes.session_value(user)}) as client:
        for name, path in (("my_ctas", "/"), ("timeline", "/accounts/acc-000000")):
            times = []
            for _ in range(200):
                start = time.perf_counter()
                r = client.get(base + path)
                times.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text[:300]
            out[f"{name}_p50_ms"] = round(1000 * float(np.percentile(times, 50)), 1)
            out[f"{name}_p95_ms"] = round(1000 * float(np.percentile(times, 95)), 1)
    srv.should_exit = True
    thread.join(timeout=10)
    return out


def main() -> None:
    """Time first and unchanged second daily runs; print one JSON line of figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--store", default=None, help="A PostgreSQL URL (default: SQLite files).")
    ap.add_argument("--page-ctas", type=int, default=0, help="Also time the pages on this many.")
    ap.add_argument("--page-events", type=int, default=0)
    args = ap.parse_args()
    if args.page_ctas:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.store or f"sqlite:///{Path(tmp) / 'pages.db'}"
            print(json.dumps(pages(url, args.page_ctas, args.page_events)))
    if not args.accounts:
        return
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
