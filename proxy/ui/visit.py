"""One page view: who is asking (from the session cookie only), what they may do, and the answer's headers.

Every judgement goes through the same :class:`auth.decision.Policy` as the
API: ``may_pull`` for what is shown (the lookup the filtered ``/v2/_catalog``
uses), ``anonymous_ok``/``judge_identity`` on the very ``Route`` the API
would build for ``GET /v2/_catalog`` or ``DELETE /v2/NAME/manifests/DIGEST``.
A signed-in visitor is the user the cookie names *as the user files say
now*: a deleted user, a new password or other groups end the session.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from auth.access import Identity
from auth.decision import Origin
from auth.errors import ProxyError
from auth.routes import Route
from proxy.http.runtime import Runtime
from proxy.ui.backend import RegistryReader
from proxy.ui.pages import Chrome
from proxy.ui.session import Session, SessionKeys, new_browser_id
from proxy.ui.state import UIState

__all__ = ["BROWSER_COOKIE", "CSP", "SESSION_COOKIE", "Visit", "harden"]

SESSION_COOKIE = "__Secure-rap_session"  # __Secure-: only ever set over HTTPS, and then Secure
BROWSER_COOKIE = "__Secure-rap_browser"  # the per-browser half of every CSRF token
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
ANY_DIGEST = "sha256:" + "0" * 64  # a delete's verdict depends on the repository only
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def harden(response: web.StreamResponse, cache: str = "no-store") -> web.StreamResponse:
    """The headers every catalog answer carries; pages are one visitor's view, so never stored."""
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache
    return response


@dataclass
class Visit:
    request: web.Request
    runtime: Runtime
    state: UIState
    origin: Origin
    keys: SessionKeys
    session: Session | None
    who: Identity | None
    browser: str
    _set_browser: bool = False
    _drop_session: bool = False
    _new_session: Session | None = field(default=None, repr=False)

    @classmethod
    def begin(cls, request: web.Request, runtime: Runtime, state: UIState, origin: Origin) -> Visit:
        keys = SessionKeys(runtime.token_key)
        sent = request.cookies.get(SESSION_COOKIE)
        session = keys.open(sent, time.time())
        who = None
        if session is not None:
            snapshot = runtime.gate.store.snapshot()
            who = snapshot.identity(session.user)
            if who is None or snapshot.fingerprint(session.user) != session.fingerprint:
                session, who = None, None
        browser = request.cookies.get(BROWSER_COOKIE, "")
        fresh = _BROWSER_ID.fullmatch(browser) is None
        visit = cls(request, runtime, state, origin, keys, session, who, new_browser_id() if fresh else browser,
                    _set_browser=fresh, _drop_session=sent is not None and session is None)
        return visit

    # -- judgements ---------------------------------------------------------------------
    def may_pull(self, name: str) -> bool:
        return self.runtime.gate.policy.may_pull(self.who, name, self.origin)

    def catalog_refusal(self) -> ProxyError | None:
        route = self.runtime.router.parse("GET", "/v2/_catalog")
        return self._refusal(route, "The catalog is not listed to you.")

    def delete_refusal(self, name: str, digest: str = ANY_DIGEST) -> ProxyError | None:
        route = self.runtime.router.parse("DELETE", f"/v2/{name}/manifests/{digest}")
        return self._refusal(route, f"You may not delete in {name}.")

    def _refusal(self, route: Route, text: str) -> ProxyError | None:
        policy = self.runtime.gate.policy
        if self.who is None:
            return None if policy.anonymous_ok(route, self.origin) else ProxyError(403, "DENIED", text)
        try:
            policy.judge_identity(route, self.who, self.origin)
        except ProxyError as err:  # the API's own words, without its challenge headers
            return ProxyError(403, "DENIED", err.message)
        return None

    def same_origin(self) -> bool:
        """A form post from a page of this origin: ``Sec-Fetch-Site`` and ``Origin`` when the browser sends them."""
        site = self.request.headers.get("Sec-Fetch-Site")
        if site is not None and site != "same-origin":
            return False
        sent = self.request.headers.get("Origin")
        if sent is None:
            return True
        try:
            return urlsplit(sent).netloc.lower() == self.origin.host.lower()
        except ValueError:
            return False

    def csrf_ok(self, token: object) -> bool:
        sent = self.request.cookies.get(BROWSER_COOKIE)
        return self.same_origin() and not self._set_browser and self.keys.csrf_ok(token, sent, self.session)

    # -- what the page needs ----------------------------------------------------------------
    def chrome(self) -> Chrome:
        session = self._new_session or self.session
        user = self.who.name if self.who is not None and session is not None else None
        assets, base, here = self.state.assets, self.state.base, self.request.raw_path
        return Chrome(base=base, host=self.origin.host, user=user, csrf=self.keys.csrf(self.browser, session),
                      here=base if here.startswith(base + "sign") else here,
                      css=assets.css_url, js=assets.js_url, icon=assets.icon_url, version=self.state.version)

    def reader(self) -> RegistryReader:
        return RegistryReader(self.runtime.upstream, self.state.cache, self.request, self.origin.client_ip)

    # -- cookies ------------------------------------------------------------------------------
    def sign_in(self, session: Session, who: Identity) -> None:
        self._new_session, self.who = session, who

    def sign_out(self) -> None:
        self.session, self.who, self._drop_session = None, None, True

    def finish(self, response: web.StreamResponse) -> web.StreamResponse:
        """Security headers, and the cookies this visit changed (all HttpOnly, Secure, SameSite=Strict)."""
        base = self.state.base
        if self._set_browser:
            response.set_cookie(BROWSER_COOKIE, self.browser, path=base, secure=True, httponly=True,
                                samesite="Strict")
        if self._new_session is not None:
            response.set_cookie(SESSION_COOKIE, self.keys.seal(self._new_session), path=base, secure=True,
                                httponly=True, samesite="Strict", max_age=self.runtime.config.ui.session_ttl)
        elif self._drop_session:
            response.set_cookie(SESSION_COOKIE, "", path=base, secure=True, httponly=True, samesite="Strict",
                                max_age=0)
        return harden(response)
