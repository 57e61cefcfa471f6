"""Garbage collection without a firewall: writes off, wait for writes in flight, collect, writes on.

A push during ``registry garbage-collect`` can leave a manifest pointing at
blobs the collector just deleted, so the seed had to stop (or firewall) the
registry. Here the maintenance file refuses writes on every replica within a
second, the admin listeners' ``/inflight`` says when the last write has
finished, and the file goes away again whatever the collector did.

After the collector ran, every replica's digest cache is emptied through the
same admin URLs (``DELETE /cache``): any manifest or blob may be gone now,
and a proxy must not go on answering it from memory. The admin listener
rather than the maintenance flag, because replicas see the flag only when a
request asks for it: one that served no request during the collection would
never notice it came and went, and would keep what was deleted.

Standard library only (``urllib``, ``subprocess``): the CLI runs this without
importing aiohttp or the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

from proxy.config import Config, connect_host, format_host_port, parse_host_port
from proxy.ops.maintenance import INTERVAL, switch_off, switch_on

__all__ = ["NO_ADMIN_WAIT", "POLL", "admin_urls", "clear_caches", "run", "wait_for_writes", "writes_in_flight"]

POLL = 0.2
NO_ADMIN_WAIT = 2.0


def admin_urls(config: Config, extra: list[str]) -> list[str]:
    """The admin listeners to ask: ``--admin`` URLs if given, else this config's ``admin.listen`` on loopback."""
    if extra:
        return [u.rstrip("/") for u in extra]
    if not config.admin.listen:
        return []
    host, port = parse_host_port(config.admin.listen)
    return [f"http://{format_host_port(connect_host(host), port)}"]


def writes_in_flight(url: str) -> int | None:
    """The proxy's in-flight write count; None if it does not answer (not running)."""
    try:
        with urllib.request.urlopen(url + "/inflight", timeout=2) as resp:
            return int(json.load(resp)["writes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wait_for_writes(urls: list[str], timeout: float, force: bool = False) -> bool:
    """Wait until every proxy reports no write in flight; False on timeout or when one does not answer.

    A proxy that does not answer may be running with a broken admin listener
    and a push in flight, and collecting then can delete blobs that push is
    about to reference: refused unless ``force`` (the operator knows it is down).
    """
    time.sleep(2 * INTERVAL)  # every replica has now re-read the flag; later writes are refused
    if not urls:
        print(f"gc: warning: admin listener is off; cannot see writes in flight, waiting {NO_ADMIN_WAIT:g}s",
              file=sys.stderr)
        time.sleep(NO_ADMIN_WAIT)
        return True
    deadline = time.monotonic() + timeout
    while True:
        counts = {url: writes_in_flight(url) for url in urls}
        busy = {u: n for u, n in counts.items() if n}
        silent = [url for url, n in counts.items() if n is None]
        for url in silent:
            if not force:
                print(f"gc: {url}/inflight does not answer, so its writes in flight cannot be seen; "
                      "not collecting (pass --force if that proxy is stopped)", file=sys.stderr)
                return False
            print(f"gc: warning: {url}/inflight does not answer; --force: assuming that proxy is stopped",
                  file=sys.stderr)
        if not busy:
            return True
        if time.monotonic() >= deadline:
            print(f"gc: writes still in flight after {timeout:g}s: {busy}", file=sys.stderr)
            return False
        time.sleep(POLL)
        urls = list(busy)


def clear_caches(urls: list[str], ttl: float) -> bool:
    """Empty every proxy's digest cache; False (and said, with what follows) if one does not answer."""
    if not urls:
        print(f"gc: warning: admin listener is off; what the proxy keeps in memory by digest expires within "
              f"cache.ttl ({ttl:g}s)", file=sys.stderr)
        return False
    ok = True
    for url in urls:
        request = urllib.request.Request(url + "/cache", method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                cleared = int(json.load(resp)["cleared"])
            print(f"gc: {url}: digest cache cleared ({cleared} entries)", flush=True)
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
            print(f"gc: warning: {url}/cache does not answer; that proxy may answer deleted content from memory "
                  f"for up to cache.ttl ({ttl:g}s)", file=sys.stderr)
    return ok


def run(config: Config, command: str, timeout: float, admin_urls: list[str], force: bool = False) -> int:
    """Run ``command`` (a shell line) with writes switched off; its exit code, or 1 if writes never drained.

    Maintenance is switched off afterwards whatever happened, unless it was
    already on before: then the operator switched it on for a reason of their
    own, and ending it is theirs to do.
    """
    flag = config.maintenance_file
    was_on = flag.exists()
    if not was_on:
        switch_on(flag, "garbage collection")
    print(f"gc: maintenance on ({flag}); waiting for writes in flight", flush=True)
    try:
        if not wait_for_writes(admin_urls, timeout, force):
            print("gc: not running the command", file=sys.stderr)
            return 1
        print(f"gc: running: {command}", flush=True)
        started = time.monotonic()
        code = subprocess.run(command, shell=True, check=False).returncode  # the operator's own command line
        print(f"gc: command exited {code} after {time.monotonic() - started:.1f}s", flush=True)
        clear_caches(admin_urls, config.cache.ttl)  # whatever the exit code: it may have deleted some
        return code
    finally:
        if was_on:
            print("gc: maintenance was already on before gc; leaving it on", flush=True)
        else:
            switch_off(flag)
            print("gc: maintenance off; writes accepted again", flush=True)
