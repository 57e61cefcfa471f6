"""check-config checks what serve loads (issue 12): TLS files, user files, the two ports, the backend.

Each of these passed ``check-config`` as "config OK" and then failed at
``serve`` or at every request: a ``tls.key`` that is the certificate,
``admin.listen`` equal to ``listen``, a backend whose own htpasswd auth
answers 401. And every htpasswd warning was printed twice.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from auth.userfiles.hashing import DUMMY_HASHES
from proxy.cli.checks import check_config
from proxy.cli.checks_files import listen_clash
from proxy.cli.serve import warn_at_start
from proxy.config import ConfigError, parse_config
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
D5 = DUMMY_HASHES[5]
DEAD = "http://127.0.0.1:9"  # nothing listens: the backend check only warns
NOT_AFTER = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def folder(tmp_path: Path, ca: trustme.CA) -> Path:
    """A config folder with a good certificate pair and clean user files."""
    leaf = ca.issue_cert("localhost", not_after=NOT_AFTER)
    (tmp_path / "server.crt").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    (tmp_path / "server.key").write_bytes(leaf.private_key_pem.bytes())
    (tmp_path / "users.htpasswd").write_text(f"mark:{D5}\nreader:{D5}\n")
    (tmp_path / "users.groups").write_text("pusher: mark\n")
    return tmp_path


def config_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "listen": "127.0.0.1:15043", "backend": DEAD, "admin": {"listen": "off"},
        "tls": {"cert": "server.crt", "key": "server.key"},
        "auth": {"htpasswd": "users.htpasswd", "groups": "users.groups"},
    }
    data.update(overrides)
    return data


Check = Callable[..., tuple[int, list[str], str]]


@pytest.fixture
def check(folder: Path, capsys: pytest.CaptureFixture[str]) -> Check:
    """``check(now=None, **overrides) -> (exit code, warning and error lines, last line)``."""

    def run(now: datetime | None = None, **overrides: Any) -> tuple[int, list[str], str]:
        code = check_config(parse_config(config_data(**overrides), folder / "proxy.yml"), now=now)
        lines = capsys.readouterr().out.splitlines()
        return code, [x for x in lines if x.startswith(("warning: ", "error: "))], lines[-1]

    return run


# ------------------------------------------------------------------ TLS


def test_a_good_pair_passes(check: Check) -> None:
    code, found, last = check()
    assert code == 0 and last.startswith("config OK")
    assert not [x for x in found if "tls." in x]


def test_a_key_file_that_is_the_certificate_fails_as_serve_does(check: Check, folder: Path) -> None:
    code, found, last = check(tls={"cert": "server.crt", "key": "server.crt"})
    assert code == 1 and last == "config NOT OK: serve would refuse to start"
    assert f"error: tls.key {folder / 'server.crt'}: not a private key (it holds a certificate)" in found


def test_a_key_that_does_not_match_the_certificate(check: Check, folder: Path, ca: trustme.CA) -> None:
    (folder / "other.key").write_bytes(ca.issue_cert("localhost").private_key_pem.bytes())
    code, found, _ = check(tls={"cert": "server.crt", "key": "other.key"})
    assert code == 1 and any(x.startswith(f"error: tls.key {folder / 'other.key'}: does not match tls.cert")
                             for x in found)


def test_the_shipped_example_certificate_warns_once(check: Check) -> None:
    example = ROOT / "certs-example"
    code, found, _ = check(tls={"cert": str(example / "server.crt"), "key": str(example / "server.key")})
    named = [x for x in found if "example certificate" in x]
    assert code == 0 and len(named) == 1
    assert "for localhost only" in named[0] and "replace it" in named[0]


def test_a_certificate_that_expires_within_30_days_warns(check: Check) -> None:
    code, found, _ = check(now=NOT_AFTER - timedelta(days=10, hours=1))
    assert code == 0
    assert any(x.startswith("warning: tls.cert ") and "expires on 2031-05-06 07:08 UTC, in 10 day(s)" in x
               for x in found)
    assert not [x for x in check(now=NOT_AFTER - timedelta(days=31))[1] if "expires" in x]


def test_an_expired_certificate_is_an_error(check: Check) -> None:
    code, found, last = check(now=NOT_AFTER + timedelta(seconds=1))
    assert code == 1 and last == "config NOT OK: serve would start, but clients would fail"
    assert any(x.startswith("error: tls.cert ") and "expired on 2031-05-06 07:08 UTC" in x for x in found)


# ------------------------------------------------------------------ admin.listen beside listen


@pytest.mark.parametrize(("listen", "admin", "clash"), [
    ("127.0.0.1:15043", "127.0.0.1:15043", True),
    ("0.0.0.0:15043", "127.0.0.1:15043", True),  # a wildcard overlaps everything
    ("127.0.0.1:15043", "0.0.0.0:15043", True),
    ("[::]:15043", "10.1.2.3:15043", True),
    ("localhost:15043", "127.0.0.1:15043", True),  # names are resolved, not compared as text
    ("127.0.0.1:15043", "127.0.0.1:9102", False),
    ("127.0.0.1:15043", "127.0.0.2:15043", False),
    ("[::1]:15043", "127.0.0.1:15043", False),
])
def test_admin_listen_on_the_public_port(tmp_path: Path, listen: str, admin: str, clash: bool) -> None:
    config = parse_config({"listen": listen, "admin": {"listen": admin}}, tmp_path / "proxy.yml")
    message = listen_clash(config)
    assert (message is not None) == clash
    if message is not None:
        assert message.startswith(f"admin.listen {admin} takes port 15043 of listen ")
        assert "admin: {listen: off}" in message


def test_admin_listen_equal_to_listen_fails_check_config(check: Check) -> None:
    code, found, last = check(admin={"listen": "127.0.0.1:15043"})
    assert code == 1 and last == "config NOT OK: serve would refuse to start"
    assert [x for x in found if x.startswith("error: admin.listen 127.0.0.1:15043 takes port 15043")]


def test_fractional_throttle_failures_never_reach_check_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"throttle\.failures: expected a whole number"):
        parse_config({"throttle": {"failures": 1.5}}, tmp_path / "proxy.yml")


# ------------------------------------------------------------------ user files


def test_duplicate_users_and_members_without_a_password_are_named(check: Check, folder: Path) -> None:
    (folder / "users.htpasswd").write_text(f"mark:{D5}\nreader:{D5}\nmark:{D5}\n")
    (folder / "users.groups").write_text("pusher: mark ghost\nadmins: ghost\n")
    code, found, _ = check()
    assert code == 0
    htpasswd, groups = folder / "users.htpasswd", folder / "users.groups"
    assert (f"warning: {htpasswd}:3: user 'mark' again (first on line 1); the first line is used, "
            "this one is ignored") in found
    assert (f"warning: {groups}: user 'ghost' is in groups admins, pusher but not in {htpasswd}, so cannot "
            "log in: a typo, or a removed user (`registry-auth-proxy group remove admins ghost`)") in found


def test_an_unreadable_htpasswd_fails_as_serve_does(check: Check, folder: Path) -> None:
    (folder / "users.htpasswd").unlink()
    (folder / "users.htpasswd").mkdir()  # readable by nobody, root included
    code, found, last = check()
    assert code == 1 and last == "config NOT OK: serve would refuse to start"
    assert f"error: auth.htpasswd {folder / 'users.htpasswd'}: Is a directory" in found


def test_a_missing_htpasswd_warns_once_and_names_no_group_member(check: Check, folder: Path) -> None:
    (folder / "users.htpasswd").unlink()
    code, found, _ = check()
    assert code == 0
    assert [x for x in found if "users.htpasswd" in x] == [
        f"warning: auth.htpasswd {folder / 'users.htpasswd'} does not exist: nobody can log in until it does"]


def test_every_user_file_warning_is_printed_once(folder: Path) -> None:
    """Through the real command: the store's logger used to print each warning again on stderr."""
    (folder / "users.htpasswd").write_text(f"mark:{D5}\nbroken line\nplain:secret\nmark:{D5}\n")
    (folder / "users.groups").write_text("pusher: mark ghost\nnot a group line\n")
    (folder / "proxy.yml").write_text(
        "listen: 127.0.0.1:15043\nbackend: http://127.0.0.1:9\nadmin: off\ntls: {cert: server.crt, key: server.key}\n")
    result = subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config", str(folder / "proxy.yml")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    both = result.stdout + result.stderr
    for needle in ("users.htpasswd:2: no 'user:hash' here", "user 'plain' has an unrecognised or plaintext hash",
                   "users.htpasswd:4: user 'mark' again", "user 'ghost' is in group pusher",
                   "users.groups:2: expected 'group: user1 user2'"):
        assert both.count(needle) == 1, (needle, both)


# ------------------------------------------------------------------ the backend


@pytest.fixture
def backend() -> Iterator[Callable[[int], str]]:
    """``backend(status)``: the URL of a stub that answers every GET with ``status``."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(status: int) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="basic-realm"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_backend_that_demands_auth_fails_with_the_fix(check: Check, backend: Callable[[int], str]) -> None:
    url = backend(401)
    code, found, last = check(backend=url)
    assert code == 1 and last == "config NOT OK: serve would start, but clients would fail"
    [error] = [x for x in found if x.startswith("error: backend")]
    assert error.startswith(f"error: backend {url} demands its own auth (GET /v2/ answered 401)")
    assert "remove the `auth:` section from the registry's config.yml" in error and "the proxy does the auth" in error


def test_a_backend_that_answers_200_is_fine(check: Check, backend: Callable[[int], str]) -> None:
    code, found, last = check(backend=backend(200))
    assert code == 0 and last.startswith("config OK") and not [x for x in found if "backend" in x]


def test_an_unreachable_backend_only_warns_that_it_was_not_checked(check: Check) -> None:
    code, found, _ = check()
    assert code == 0
    assert [x for x in found if "backend" in x] == [
        f"warning: backend {DEAD} does not answer GET /v2/ ([Errno 111] Connection refused), so whether it "
        "demands its own auth could not be checked; clients will get 502 until it answers"]


def test_a_backend_with_another_status_warns(check: Check, backend: Callable[[int], str]) -> None:
    url = backend(503)
    code, found, _ = check(backend=url)
    assert code == 0
    assert f"warning: backend {url} answered GET /v2/ with 503, not 200: is it a registry, and healthy?" in found


# ------------------------------------------------------------------ serve says the same at start


def test_serve_logs_an_expired_certificate_at_start(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An operator who never runs check-config still reads, at start, that every client will refuse the certificate."""
    config = parse_config(config_data(), folder / "proxy.yml")
    with caplog.at_level("WARNING", logger="proxy.cli.serve"):
        warn_at_start(config, now=NOT_AFTER + timedelta(seconds=1))
    assert [(r.levelname, r.getMessage()[:9]) for r in caplog.records] == [("ERROR", "tls.cert ")]
    assert "expired on 2031-05-06 07:08 UTC" in caplog.records[0].getMessage()


def test_serve_logs_nothing_at_start_for_a_certificate_far_from_its_end(
        folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config(config_data(), folder / "proxy.yml")
    with caplog.at_level("WARNING", logger="proxy.cli.serve"):
        warn_at_start(config, now=NOT_AFTER - timedelta(days=365))
    assert caplog.records == []


def test_a_real_serve_warns_of_a_certificate_that_expires_soon_and_serves(folder: Path, ca: trustme.CA) -> None:
    leaf = ca.issue_cert("localhost", not_after=datetime.now(UTC) + timedelta(days=5))
    (folder / "soon.crt").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    (folder / "soon.key").write_bytes(leaf.private_key_pem.bytes())
    config_path = folder / "proxy.yml"
    config_path.write_text(json.dumps(config_data(listen=f"127.0.0.1:{free_port()}", pid_file="off",
                                                  tls={"cert": "soon.crt", "key": "soon.key"})))
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve", "--config", str(config_path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 60
        while "listening on" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline() if proc.stderr else ""
            assert line, f"serve exited or closed stderr: {seen}"
            seen += line
        assert "WARNING proxy.cli.serve: tls.cert " in seen and "day(s); renew it" in seen, seen
        assert proc.poll() is None  # a warning, not a refusal
    finally:
        proc.terminate()
        proc.wait(30)
