"""Ids with reserved characters on the pages (issue 32, finding 16).

``EU/0001`` scored through the API but 404'd on its page and brief; ``ACME#7`` and ``X?y=1``
linked to the wrong page (links were not URL-encoded).
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from starlette.testclient import TestClient

from reports.links import account_url

IDS = ["EU/0001", "ACME#7", "X?y=1", "a b", "Zürich&Co", "plain"]


def test_links_encode_every_reserved_character():
    assert account_url("EU/0001") == "EU%2F0001"
    assert account_url("ACME#7") == "ACME%237"
    assert account_url("X?y=1") == "X%3Fy%3D1"
    assert account_url("A000042") == "A000042"


@pytest.fixture
def pages(monkeypatch):
    """The pages with a stand-in service that knows the accounts of ``IDS``."""
    from serving.pages import ui

    seen: list[str] = []

    def account(account_id):
        seen.append(account_id)
        return None  # the page then says "No account ..." with the id it was given

    portfolio = pd.DataFrame(
        {
            "account_id": IDS,
            "name": [f"N{i}" for i in range(len(IDS))],
            "csm_owner": "o",
            "segment": "smb",
            "health_band": "red",
            "renewal_stage": "open",
            "alerts": [[] for _ in IDS],
            "needs_action": True,
            "arr_at_risk_90d": 1.0,
            "arr": 1.0,
        }
    )
    svc = SimpleNamespace(
        state=SimpleNamespace(as_of=pd.Timestamp("2026-10-31")),
        views=SimpleNamespace(portfolio=lambda: portfolio, account=account),
        briefs=SimpleNamespace(brief=lambda account_id: seen.append(account_id)),
    )
    monkeypatch.delenv("RADAR_API_KEY", raising=False)
    monkeypatch.delenv("RADAR_API_KEY_FILE", raising=False)
    monkeypatch.setattr(ui, "_service", lambda: svc)
    return TestClient(ui.app, root_path=""), seen


@pytest.mark.parametrize("account_id", IDS)
def test_each_id_reaches_its_own_page_and_brief(pages, account_id):
    client, seen = pages
    for suffix in ("", "/brief"):
        seen.clear()
        r = client.get(f"/accounts/{account_url(account_id)}{suffix}")
        assert r.status_code == 404  # the stand-in knows no record: the handler ran
        assert seen == [account_id], (suffix, seen)


def test_every_page_link_to_an_account_is_encoded():
    """The portfolio, account and brief templates put the id through ``account_url``."""
    from serving.pages import ui

    for name in ("portfolio.html", "account.html", "brief.html"):
        source = ui.templates().loader.get_source(ui.templates(), name)[0]
        links = [
            part for part in source.split('href="')[1:] if part.startswith("{{ root }}/accounts/")
        ]
        assert links and all("| account_url }}" in link.split('"')[0] for link in links), name
    link = ui.templates().from_string("{{ i | account_url }}")
    assert [link.render(i=i) for i in IDS[:3]] == ["EU%2F0001", "ACME%237", "X%3Fy%3D1"]
