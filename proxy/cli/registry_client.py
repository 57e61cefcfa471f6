"""A small registry API client that logs in the way docker does: Basic or the token flow.

Used by ``registry-auth-proxy registry ...``. It sends a request, and on a
401 reads the challenge: ``Bearer`` -> fetch a token from the realm for the
scope (with Basic credentials if a user was given) and retry; ``Basic`` ->
retry with Basic credentials. Tokens are cached per scope for the run.
Standard library only (urllib), so the CLI needs nothing beyond the proxy.

Credentials go to one origin only, the ``--url`` the operator named: a
``Link`` header is the registry's (or anyone upstream's) text, and following
an absolute link to another host would hand it the password or a token.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

__all__ = ["RegistryClient", "RegistryError", "Reply", "next_link", "origin", "parse_challenge"]

_PARAM = re.compile(r'(\w+)="([^"]*)"')
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RegistryError(Exception):
    """Something the operator must act on; ``str()`` is the whole message."""


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> object:
        return json.loads(self.body or b"null")

    def error_text(self) -> str:
        try:
            errors = json.loads(self.body)["errors"]
            return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except (ValueError, KeyError, TypeError):
            return self.body[:200].decode(errors="replace") or f"HTTP {self.status}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect (e.g. blob to storage) is returned to the caller as is


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = value.partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what "same server" means.

    Raises RegistryError for a URL whose port is not a number, so a garbled
    ``Link`` stops the walk with a message rather than a traceback.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise RegistryError(f"{url}: not a valid URL (bad port)") from None
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def _show_origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class RegistryClient:
    def __init__(self, url: str, user: str | None = None, password: str | None = None,
                 cacert: str | None = None, timeout: float = 60) -> None:
        self.base = url.rstrip("/")
        self.origin = origin(self.base)
        self.user = user
        self.password = password
        self.timeout = timeout
        ctx = ssl.create_default_context(cafile=cacert) if cacert else ssl.create_default_context()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), _NoRedirect())
        self.tokens: dict[str, str] = {}
        self.basic_mode = False

    def url_for(self, path: str) -> str:
        """The full URL for ``/v2/...`` or for a full URL, refusing any other origin than ``--url``."""
        if path.startswith("/") and not path.startswith("//"):
            return self.base + path
        return self._same_origin(urllib.parse.urljoin(self.base + "/", path))

    def follow(self, target: str, page_url: str) -> str:
        """Resolve a ``Link`` target against the page it came from (RFC 8288), same origin only."""
        if target.startswith("/") and not target.startswith("//"):
            return self.base + target  # the usual case: </v2/_catalog?last=...>
        return self._same_origin(urllib.parse.urljoin(page_url, target))

    def _same_origin(self, url: str) -> str:
        if origin(url) != self.origin:
            raise RegistryError(f"refusing to follow a link to {_show_origin(url)}: not the registry at "
                                f"{_show_origin(self.base)} (credentials are only sent to --url)")
        return url

    def _basic(self) -> str:
        raw = f"{self.user}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _send(self, method: str, url: str, headers: dict[str, str]) -> Reply:
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as resp:
                return Reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read())
        except urllib.error.URLError as exc:
            raise RegistryError(f"cannot reach {self.base}: {exc.reason}") from None
        except OSError as exc:
            raise RegistryError(f"cannot reach {self.base}: {exc}") from None

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self.tokens:
            return {"Authorization": "Bearer " + self.tokens[scope]}
        if self.basic_mode and self.user:
            return {"Authorization": self._basic()}
        return {}

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None) -> Reply:
        """``path`` is absolute (``/v2/...``) or a full URL on the same origin as ``--url``."""
        url = self.url_for(path)
        base_headers = dict(headers or {})
        if self.user and not self._auth_header(scope):
            self._log_in(scope)
        reply = self._send(method, url, {**base_headers, **self._auth_header(scope)})
        if reply.status != 401:
            return reply
        scheme, params = parse_challenge(reply.headers.get("WWW-Authenticate", ""))
        if scheme == "bearer" and "realm" in params:
            self.tokens[scope] = self._token(params, scope)
        elif scheme == "basic" and self.user and not self.basic_mode:
            self.basic_mode = True
        else:
            raise self._refused(reply)
        reply = self._send(method, url, {**base_headers, **self._auth_header(scope)})
        if reply.status == 401:
            raise self._refused(reply)
        return reply

    def _log_in(self, scope: str) -> None:
        """Get credentials for ``scope`` before asking: a read open to anyone is answered without them.

        The catalog is filtered by the caller's pull rights, so an anonymous
        answer would be the anonymous view; the ping always challenges a
        client without credentials, so it says how to log in.
        """
        reply = self._send("GET", self.base + "/v2/", {})
        if reply.status != 401:
            return
        scheme, params = parse_challenge(reply.headers.get("WWW-Authenticate", ""))
        if scheme == "bearer" and "realm" in params:
            self.tokens[scope] = self._token(params, scope)
        elif scheme == "basic":
            self.basic_mode = True

    def _token(self, params: dict[str, str], scope: str) -> str:
        query = {"service": params.get("service", "")}
        query["scope"] = scope or params.get("scope", "")
        url = params["realm"] + "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        headers = {"Authorization": self._basic()} if self.user else {}
        reply = self._send("GET", url, headers)
        if reply.status != 200:
            raise self._refused(reply)
        body = reply.json()
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise RegistryError(f"the token endpoint {params['realm']} answered without a token")
        return token

    def _refused(self, reply: Reply) -> RegistryError:
        who = f"as {self.user!r}" if self.user else "anonymously (give --user)"
        return RegistryError(f"refused {who}: HTTP {reply.status}: {reply.error_text()}")


def next_link(reply: Reply) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header as written; resolve it with :meth:`RegistryClient.follow`."""
    for part in (reply.headers.get("Link") or "").split(","):
        m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if m:
            return m.group(1)
    return None
