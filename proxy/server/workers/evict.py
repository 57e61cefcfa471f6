"""A ``DELETE`` accepted through one worker evicts that digest in every worker's digest cache.

Each worker keeps its own digest cache (``proxy.http.cache``). Without
this, a manifest deleted through worker A would still be answered from
memory by worker B until ``cache.ttl``. So the worker that saw the
registry's 202 evicts locally (as a single process does) and tells the
supervisor, which relays the eviction to every other worker:

* worker -> supervisor: ``{"op": "evict", "repository", "kind", "digest"}``;
* supervisor -> each other worker: the same line.

Why the channel rather than each worker's admin socket: it is already open,
one line costs microseconds, and lines arrive in order and are never
dropped while the worker lives, so a worker that is briefly stopped or
busy finds the eviction waiting when it resumes (a request to its admin
socket would have timed out and been given up meanwhile). Best effort
still: the line to a worker whose channel is gone (it died, and its cache
with it) or that has :data:`MAX_BACKLOG` bytes unread (hung) is dropped
and logged; ``cache.ttl`` bounds what that worker may still answer.

There is no acknowledgement and nothing waits: the 202 has already been
sent to the client when the forwarder returns, so holding the handler
would order nothing. In practice the others have evicted within
milliseconds (a line over a local socketpair, relayed once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from auth.digestcache import KINDS, Key, cache_digest

if TYPE_CHECKING:
    from proxy.server.workers.process import WorkerProcess

__all__ = ["MAX_BACKLOG", "MAX_REPOSITORY", "apply_eviction", "eviction", "parse_eviction", "relay_eviction"]

log = logging.getLogger(__name__)

MAX_BACKLOG = 1024 * 1024  # bytes queued for a worker that does not read (stopped, hung): beyond, drop and log
MAX_REPOSITORY = 4096  # a repository name is bounded by the request line long before this


def eviction(key: Key) -> dict[str, Any]:
    """The line that names one evicted ``(repository, kind, digest)``."""
    repository, kind, digest = key
    return {"op": "evict", "repository": repository, "kind": kind, "digest": digest}


def parse_eviction(message: dict[str, Any]) -> Key:
    """The key an ``evict`` line names; ValueError when it is not one the digest cache could hold."""
    repository, kind, digest = message.get("repository"), message.get("kind"), message.get("digest")
    if not isinstance(repository, str) or not repository or len(repository) > MAX_REPOSITORY:
        raise ValueError("evict: no repository")
    if kind not in KINDS:
        raise ValueError(f"evict: kind must be one of {sorted(KINDS)}")
    if not isinstance(digest, str) or cache_digest(digest) is None:
        raise ValueError("evict: not a digest the cache keeps")
    return (repository, kind, digest)


def relay_eviction(origin: WorkerProcess, workers: Iterable[WorkerProcess], message: dict[str, Any]) -> int:
    """Tell every worker but ``origin`` to evict what ``message`` names; how many were told.

    Raises ValueError (nothing relayed) for a malformed line: a worker
    cannot make the others evict anything but a digest in a repository.
    """
    line = eviction(parse_eviction(message))
    told = 0
    for worker in workers:
        if worker is origin or not worker.alive:
            continue  # origin evicted already; a dead worker's cache died with it
        if worker.backlog() > MAX_BACKLOG:
            log.error("worker %d reads nothing from its channel (%d bytes queued): eviction of %s@%s not sent; "
                      "it may answer it from memory for up to cache.ttl", worker.index, worker.backlog(),
                      line["repository"], line["digest"])
        elif worker.send(line):
            told += 1
        else:
            log.warning("worker %d: its channel is closed; eviction of %s@%s not sent", worker.index,
                        line["repository"], line["digest"])
    return told


def apply_eviction(message: dict[str, Any], evict: Callable[[Key], object] | None) -> None:
    """A worker's side: evict what the supervisor relayed (``evict`` is None while still starting: empty)."""
    try:
        key = parse_eviction(message)
    except ValueError as exc:
        log.error("unusable eviction from the supervisor: %s", exc)
        return
    if evict is not None:
        evict(key)
