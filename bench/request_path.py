"""Which project modules one authenticated PATCH passes through, from TLS accept to the response.

    python -m bench.request_path            # from the repository root; needs docker-registry

Starts the real registry and the real proxy (in this process, TLS with the
example certificate), warms up (login cached, upload session open), then
records every function call made in the repository's own modules while one
``PATCH`` with Basic credentials is answered, in every thread, and prints
the modules in first-call order. Works on any revision of the tree: it only
needs ``python -m proxy serve``'s ``serve(config)`` coroutine.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import importlib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OURS = (str(ROOT / "auth"), str(ROOT / "proxy"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    def __init__(self) -> None:
        self.on = False
        self.seen: dict[str, None] = {}

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.on and event == "call":
            name = frame.f_code.co_filename
            if name.startswith(OURS):
                self.seen.setdefault(str(Path(name).relative_to(ROOT)), None)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="request-path-"))
    reg_port, proxy_port = _free_port(), _free_port()
    (work / "registry.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work}/data\n"
        f"http:\n  addr: 127.0.0.1:{reg_port}\n")
    registry = subprocess.Popen(["docker-registry", "serve", str(work / "registry.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hashed = subprocess.run(["htpasswd", "-nbB", "-C", "5", "mark", "pusherpwd"], capture_output=True, text=True,
                            check=True).stdout.strip()
    (work / "users.htpasswd").write_text(hashed + "\n")
    (work / "users.groups").write_text("pusher: mark\n")
    certs = ROOT / "certs-example"
    (work / "proxy.yml").write_text(
        f"listen: 127.0.0.1:{proxy_port}\nbackend: http://127.0.0.1:{reg_port}\n"
        f"tls: {{cert: {certs}/server.crt, key: {certs}/server.key}}\nadmin: off\nlog: {{access: true}}\n")
    sys.path.insert(0, str(ROOT))
    config_mod = importlib.import_module("proxy.config")
    server_mod = importlib.import_module("proxy.server")
    config = config_mod.load_config(work / "proxy.yml")
    recorder = Recorder()
    done = threading.Event()

    def client() -> None:
        time.sleep(1.5)
        ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        auth = "Basic " + base64.b64encode(b"mark:pusherpwd").decode()
        conn = http.client.HTTPSConnection("localhost", proxy_port, context=ctx)
        conn.request("POST", "/v2/trace/app/blobs/uploads/", headers={"Authorization": auth})
        resp = conn.getresponse()
        resp.read()
        location = resp.getheader("Location", "")
        path = location.split(str(proxy_port), 1)[1]
        conn.close()
        time.sleep(0.5)  # the POST's access-log hook and connection close are done
        conn = http.client.HTTPSConnection("localhost", proxy_port, context=ctx)  # a new connection: TLS accept
        recorder.on = True
        conn.request("PATCH", path, body=b"x" * 1024, headers={
            "Authorization": auth, "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        resp.read()
        time.sleep(0.3)  # the access-log hook runs after the last byte
        recorder.on = False
        conn.close()
        print(f"PATCH -> {resp.status}")
        done.set()
        import os
        import signal
        os.kill(os.getpid(), signal.SIGTERM)

    threading.setprofile(recorder)
    sys.setprofile(recorder)
    threading.Thread(target=client, daemon=True).start()
    try:
        asyncio.run(server_mod.serve(config))
    finally:
        sys.setprofile(None)
        registry.terminate()
    print(f"{len(recorder.seen)} project modules:")
    for name in recorder.seen:
        print("  " + name)
    return 0 if done.is_set() else 1


if __name__ == "__main__":
    raise SystemExit(main())
