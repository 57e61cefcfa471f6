"""Operator files gone wrong: a bad config stops start-up naming the key; corrupt user files degrade per line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.support.httpclient import Client, basic
from tests.support.proxyproc import REPO_ROOT

MARK = basic("mark", "pusherpwd")

BAD_CONFIGS = {
    "limits.max_connections": {"limits": {"max_connections": "many"}},
    "limits.header_timout": {"limits": {"header_timout": 5}},
    "throttle.enabled": {"throttle": {"enabled": "yes"}},
    "throttle.failures": {"throttle": {"failures": 0}},
    "acess": {"acess": {"push": ["pusher"]}},
    "timeouts.grace": {"timeouts": {"grace": [1]}},
    "access.push": {"access": {"push": "pushers-group"}},
    "listen": {"listen": 5043},
}


@pytest.mark.parametrize("key", sorted(BAD_CONFIGS))
def test_bad_config_stops_start_naming_the_key(proxy_factory, key):
    proxy = proxy_factory(start=False)
    config = dict(proxy.config)
    config.update(BAD_CONFIGS[key])
    proxy.config_path.parent.mkdir(parents=True, exist_ok=True)
    proxy.config_path.write_text(yaml.safe_dump(config))
    run = subprocess.run([sys.executable, "-m", "proxy", "serve", "--config", str(proxy.config_path)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, (run.returncode, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("registry-auth-proxy: config error: ")
    assert f": {key}: " in lines[0], lines[0]


def test_corrupt_htpasswd_and_group_lines_are_skipped(proxy_factory, tls_files):
    proxy = proxy_factory(start=False)
    htpasswd = proxy.workdir / "users.htpasswd"
    good = htpasswd.read_text()
    htpasswd.write_text("garbage line without colon\n:nouser\nplain:plaintextpassword\n"
                        "trunc:$2y$05$short\n\x00\xff binary junk\n" + good + "mark:$apr1$second$line\n")
    (proxy.workdir / "users.groups").write_text("no colon here\n: nogroup\npusher: mark\nbad group: reader\n")
    proxy.start()
    client = Client(proxy.url, tls_files.ca_cert)
    assert client.request("POST", "/v2/files/ok/blobs/uploads/", [("Authorization", MARK)], body=b"").status == 202
    assert client.request("GET", "/v2/", [("Authorization", basic("reader", "readerpwd"))]).status == 200
    assert client.request("POST", "/v2/files/ok/blobs/uploads/", [("Authorization", basic("reader", "readerpwd"))],
                          body=b"").status == 403  # "bad group: reader" did not make reader a pusher
    assert client.request("GET", "/v2/", [("Authorization", basic("plain", "plaintextpassword"))]).status == 401
    log = proxy.log_text()
    assert "no 'user:hash' here; line ignored" in log
    assert "'plain' has an unrecognised or plaintext hash; user disabled" in log
    assert "expected 'group: user1 user2'; line ignored" in log
    assert "plaintextpassword" not in log
