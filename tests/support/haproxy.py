"""A real HAProxy (Debian's package) in TCP mode in front of several proxy replicas.

TCP mode passes TLS through, so each replica terminates TLS itself, as in
the scale-out the README describes; round-robin spreads client connections.
``send_proxy=True`` adds ``send-proxy-v2`` (a PROXY v2 header before the
client's bytes) and health checks (which then carry a LOCAL header);
``source`` is the address HAProxy connects to the replicas from, so a test
can tell the balancer (trusted) from direct clients on 127.0.0.1.
"""

from __future__ import annotations

import atexit
import subprocess
from pathlib import Path

from tests.support.ports import free_port, wait_port

CONFIG = """global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend registry
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
"""


class HAProxy:
    def __init__(self, workdir: Path, backends: list[tuple[str, int]], *, send_proxy: bool = False,
                 source: str | None = None) -> None:
        self.workdir = workdir
        self.send_proxy = send_proxy
        self.source = source
        self.port = free_port()
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.backends = backends
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host_port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> HAProxy:
        options = "".join([" send-proxy-v2 check inter 500ms" if self.send_proxy else "",
                           f" source {self.source}" if self.source else ""])
        servers = "\n".join(f"    server r{i} {host}:{port}{options}" for i, (host, port) in enumerate(self.backends))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG.format(port=self.port, servers=servers))
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.config_path)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
