"""Links to an account's pages, for any account id (``EU/0001``, ``ACME#7``, ``X?y=1``).

Ids are the customer's own text. Put in a link as they are, ``#`` and ``?`` cut the link
short and ``/`` made another path (the page then 404'd), so the pages' links carry the id
percent-encoded, every reserved character included, and the pages' routes take the whole
rest of the path as the id (``{account_id:path}``). An id of ``.`` or ``..`` cannot be a
path segment at all (browsers resolve it even encoded): those few have no page link.
"""

from __future__ import annotations

from urllib.parse import quote


def account_url(account_id: object) -> str:
    """``account_id`` as one path segment: every character but letters, digits, ``_.-~`` encoded."""
    return quote(str(account_id), safe="")
