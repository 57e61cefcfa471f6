"""What ``check-config`` reads from outside the config: the TLS files, the user files, the ports, the backend.

Each is loaded with the function ``serve`` uses (the TLS pair with
``proxy.config.tlsfiles.load_cert_chain``, the user files with the store's
parsers), so a config that passes here starts, and one that does not fails
with the same sentence. Every check appends to the caller's lists:
``refused`` (serve would not start), ``failing`` (serve would start and every
client would fail) and ``warnings``.

The user files are parsed here, not through ``UserStore``: the store logs
each warning of the files as it reads them, and check-config printed them
too, so every warning appeared twice (once on stderr, once on stdout).
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

from auth.userfiles.groups import GroupData, parse_groups
from auth.userfiles.hashing import odd_hashes
from auth.userfiles.htpasswd import HtpasswdData, parse_htpasswd, parse_line
from proxy.config import Config, TLSConfig, parse_host_port
from proxy.config.hostport import WILDCARDS
from proxy.config.tlsfiles import EXAMPLE_CERT_SHA256, TLSFileError, leaf_certificate, load_cert_chain
from proxy.ops.backend import backend_problem

__all__ = ["RENEW_WITHIN", "check_backend", "check_tls", "listen_clash", "user_files"]

RENEW_WITHIN = timedelta(days=30)


def _backend_status(url: str) -> tuple[int | None, str]:
    """The status ``GET /v2/`` answers with; or None and why there was no answer.

    Straight to the backend, as the proxy connects: no ``http_proxy`` from the environment.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/v2/", timeout=3) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def check_backend(backend: str, failing: list[str], warnings: list[str]) -> None:
    """A backend that demands auth is an error; one that does not answer only warns (it may start later)."""
    status, why = _backend_status(backend)
    if status is None:
        warnings.append(f"backend {backend} does not answer GET /v2/ ({why}), so whether it demands its own "
                        "auth could not be checked; clients will get 502 until it answers")
        return
    problem = backend_problem(backend, status)
    if problem is not None:
        (failing if status == 401 else warnings).append(problem)


def check_tls(tls: TLSConfig, now: datetime, refused: list[str], failing: list[str], warnings: list[str]) -> None:
    """Load the pair as ``serve`` does; then the served certificate's dates, and whether it is the example."""
    try:
        load_cert_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls.cert, tls.key)
    except TLSFileError as exc:
        refused.append(str(exc))
        return
    leaf = leaf_certificate(tls.cert)
    if leaf is None:
        return
    if leaf.sha256 == EXAMPLE_CERT_SHA256:
        warnings.append(f"tls.cert {tls.cert} is the example certificate from certs-example/, for localhost only "
                        "(its key is public): replace it (README, \"Real certificates\")")
    end = f"{leaf.not_after:%Y-%m-%d %H:%M} UTC"
    if leaf.not_after <= now:
        failing.append(f"tls.cert {tls.cert}: expired on {end}, so clients refuse it; renew it, then "
                       "`registry-auth-proxy reload`")
    elif leaf.not_after - now <= RENEW_WITHIN:
        warnings.append(f"tls.cert {tls.cert}: expires on {end}, in {(leaf.not_after - now).days} day(s); "
                        "renew it, then `registry-auth-proxy reload`")
    if leaf.not_before > now:
        warnings.append(f"tls.cert {tls.cert}: not valid before {leaf.not_before:%Y-%m-%d %H:%M} UTC; "
                        "clients refuse it until then (is this machine's clock right?)")


def _addresses(host: str) -> set[str]:
    """What a listener on ``host`` binds: the address itself, or what the name resolves to."""
    try:
        return {str(ip_address(host))}
    except ValueError:
        pass
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return {host.lower()}


def listen_clash(config: Config) -> str | None:
    """Why ``admin.listen`` cannot bind beside ``listen``: the same port on overlapping addresses.

    Judged from the addresses alone (no bind test: the proxy may be running).
    A wildcard overlaps everything: ``0.0.0.0`` and ``::`` take the port on
    every address (on Linux ``::`` takes IPv4 too).
    """
    if config.admin.listen is None:
        return None
    host, port = parse_host_port(config.admin.listen)
    mine = config.listen_host
    if port != config.listen_port:
        return None
    if not (host in WILDCARDS or mine in WILDCARDS or _addresses(host) & _addresses(mine)):
        return None
    return (f"admin.listen {config.admin.listen} takes port {port} of listen {config.listen}: serve cannot bind "
            "both; give admin.listen another port (the default is 127.0.0.1:9102) or set `admin: {listen: off}`")


def _read_user_file(label: str, path: Path | None, refused: list[str], warnings: list[str]) -> str | None:
    """The text as the store reads it; None when absent (serve then starts, and nobody is in it)."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        warnings.append(f"auth.{label} {path} does not exist: " + (
            "nobody can log in until it does" if label == "htpasswd" else "every group is empty until it does"))
    except OSError as exc:  # the store raises these at start-up: serve refuses
        refused.append(f"auth.{label} {path}: {exc.strerror or exc}")
    return None


def _duplicate_users(text: str, source: str) -> Iterator[str]:
    """Once per repeated line of a user: the proxy (like Apache) uses the first and ignores the others."""
    first: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_line(raw)
        except ValueError:
            continue  # parse_htpasswd already warns about this line
        if parsed is not None and first.setdefault(parsed[0], number) != number:
            yield (f"{source}:{number}: user {parsed[0]!r} again (first on line {first[parsed[0]]}); "
                   "the first line is used, this one is ignored")


def _members_without_password(users: HtpasswdData, groups: GroupData, source: str, htpasswd: Path) -> Iterator[str]:
    """Once per user the group file names and the htpasswd file does not have: a typo, or a removed user."""
    missing: dict[str, list[str]] = {}
    for group, members in sorted(groups.members.items()):
        for user in sorted(members - set(users.hashes) - users.disabled):
            missing.setdefault(user, []).append(group)
    for user, where in sorted(missing.items()):
        yield (f"{source}: user {user!r} is in group{'s' if len(where) > 1 else ''} {', '.join(where)} but not "
               f"in {htpasswd}, so cannot log in: a typo, or a removed user "
               f"(`registry-auth-proxy group remove {where[0]} {user}`)")


def user_files(config: Config, refused: list[str], warnings: list[str]) -> tuple[HtpasswdData, GroupData]:
    """Both files through the proxy's own parsers, with every warning once (the store would log them too)."""
    htpasswd, groups = config.auth.htpasswd, config.auth.groups
    users_text = _read_user_file("htpasswd", htpasswd, refused, warnings)
    groups_text = _read_user_file("groups", groups, refused, warnings)
    users = parse_htpasswd(users_text or "", str(htpasswd))
    members = parse_groups(groups_text or "", str(groups or "groups"))
    warnings.extend(users.warnings)
    if users_text is not None:
        warnings.extend(_duplicate_users(users_text, str(htpasswd)))
    warnings.extend(members.warnings)
    if users_text is not None:
        warnings.extend(_members_without_password(users, members, str(groups), htpasswd))
    warnings.extend(odd_hashes(users.hashes))
    return users, members
