"""The pages' session cookie: ``Secure`` over HTTPS, and signing out (kept beside ``ui``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

COOKIE = "radar_key"  # the name serving.pages.ui sets


def over_https(request: Request) -> bool:
    """Whether the page was asked for over HTTPS (directly, or from a trusted proxy).

    uvicorn sets the scheme from ``X-Forwarded-Proto`` only for the proxies in
    ``$RADAR_TRUSTED_PROXIES`` (see :mod:`serving.http_guard`).
    """
    return request.url.scheme == "https"


async def logout(request: Request) -> Response:
    """Sign out: the cookie is removed and the login form shown (POST, from every page)."""
    root = request.scope.get("root_path", "")
    response = RedirectResponse(f"{root}/login", status_code=303)
    response.delete_cookie(
        COOKIE, path=root or "/", secure=over_https(request), httponly=True, samesite="strict"
    )
    return response
