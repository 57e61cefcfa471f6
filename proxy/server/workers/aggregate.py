"""The supervisor's admin listener: the same URLs as one process's, answering for all workers.

Each worker serves the ordinary admin app (``proxy.observability.admin``)
on a private unix socket; this app asks every serving worker and combines:

* ``/metrics``: summed (``proxy.server.workers.merge``), plus
  ``registry_auth_proxy_workers`` and ``..._worker_restarts``;
* ``/inflight``: summed. If a running worker does not answer, 503: ``gc``
  must not collect while a write it cannot see may be in flight;
* ``/readyz``: ready when at least one worker is (any of them accepts
  connections from the shared socket); ``/healthz``: alive, with counts;
* ``/throttle``: the supervisor's own throttle, the one all workers use;
* ``/cache``: every worker's digest cache (its own memory), numbers summed;
  a ``DELETE`` that does not reach every worker is a 503, so ``gc`` says so;
* ``/workers`` (only here): each worker's pid, restarts and requests
  answered, to see that the load is spread and who was restarted.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.observability.admin import throttle_routes
from proxy.observability.metrics import PREFIX

if TYPE_CHECKING:
    from proxy.server.workers.process import WorkerProcess
    from proxy.server.workers.supervisor import Supervisor

__all__ = ["ASK_TIMEOUT", "SETTINGS", "WorkerAdmins", "create_supervisor_admin", "sum_json"]

ASK_TIMEOUT = 5.0
Answer = tuple[int, Any] | None  # (status, JSON or text), None when the worker did not answer


SETTINGS = frozenset({"enabled", "max_bytes", "max_item", "ttl"})  # the same in every worker: not added up


def sum_json(values: list[Any]) -> Any:
    """Numbers added, objects merged key by key the same way (settings: the first's), anything else the first's."""
    first = values[0]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sum(values)
    if all(isinstance(v, dict) for v in values):
        keys = dict.fromkeys(k for v in values for k in v)
        return {k: first.get(k) if k in SETTINGS and k in first else sum_json([v[k] for v in values if k in v])
                for k in keys}
    return first


class WorkerAdmins:
    """HTTP over each worker's private admin socket (one connection per question: they are rare)."""

    def __init__(self) -> None:
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    async def ask(self, worker: WorkerProcess, method: str, path: str, *, text: bool = False) -> Answer:
        session = self._sessions.get(worker.index)
        if session is None:
            connector = aiohttp.UnixConnector(path=worker.admin_socket, force_close=True)
            session = self._sessions[worker.index] = aiohttp.ClientSession(connector=connector)
        try:
            async with session.request(method, "http://worker" + path,
                                       timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT)) as resp:
                body = await resp.text()
                return resp.status, body if text else json.loads(body)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return None

    async def ask_all(self, workers: list[WorkerProcess], method: str, path: str,
                      *, text: bool = False) -> list[Answer]:
        return list(await asyncio.gather(*(self.ask(w, method, path, text=text) for w in workers)))

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


def create_supervisor_admin(supervisor: Supervisor) -> web.Application:
    admins = WorkerAdmins()

    def serving() -> list[WorkerProcess]:
        return [w for w in supervisor.workers if w.ready]

    def counts() -> dict[str, int]:
        return {"serving": len(serving()), "configured": len(supervisor.workers)}

    async def metrics_handler(request: web.Request) -> web.Response:
        workers = serving()
        for worker, answer in zip(workers, await admins.ask_all(workers, "GET", "/metrics", text=True),
                                  strict=True):
            if answer is not None and answer[0] == 200:
                supervisor.merger.update(worker.index, answer[1])
        own = generate_latest(supervisor.registry).decode()
        body = supervisor.merger.exposition(own, [w.index for w in supervisor.workers if w.alive])
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "workers": counts()})

    async def readyz(request: web.Request) -> web.Response:
        answers = [a for a in await admins.ask_all(serving(), "GET", "/readyz") if a is not None]
        ready = [body for status, body in answers if status == 200]
        if ready:
            return web.json_response({**ready[0], "workers": counts()})
        body = answers[0][1] if answers and isinstance(answers[0][1], dict) else {"status": "starting"}
        return web.json_response({**body, "workers": counts()}, status=503)

    async def inflight(request: web.Request) -> web.Response:
        """What ``gc`` polls: every serving worker's writes in flight, or 503 if one cannot say."""
        workers = serving()
        answers = await admins.ask_all(workers, "GET", "/inflight")
        silent = [w.index for w, a in zip(workers, answers, strict=True)
                  if (a is None or a[0] != 200) and w.alive]
        if silent:
            return web.json_response({"error": f"worker(s) {silent} do not answer: writes in flight unknown"},
                                     status=503)
        known = [a[1] for a in answers if a is not None and a[0] == 200]
        total = sum_json(known) if known else {"writes": 0, "requests": 0}
        return web.json_response({**total, "workers": counts()})

    async def cache(request: web.Request) -> web.Response:
        """Every worker's digest cache: ``GET`` sums what they hold, ``DELETE`` empties them all."""
        workers = serving()
        answers = await admins.ask_all(workers, request.method, "/cache")
        if not workers or any(a is None or a[0] != 200 for a in answers):
            missing = [w.index for w, a in zip(workers, answers, strict=True) if a is None or a[0] != 200]
            return web.json_response({"error": f"worker(s) {missing or 'none serving'} did not answer"},
                                     status=503)
        return web.json_response({**sum_json([a[1] for a in answers if a is not None]), "workers": counts()})

    async def workers_handler(request: web.Request) -> web.Response:
        """One entry per worker slot: pid, serving, restarts, requests answered (from its /metrics)."""
        up = serving()
        requests: dict[int, float] = {}
        for worker, answer in zip(up, await admins.ask_all(up, "GET", "/metrics", text=True), strict=True):
            if answer is not None and answer[0] == 200:
                supervisor.merger.update(worker.index, answer[1])
                family = supervisor.merger.last[worker.index].get(f"{PREFIX}_requests")
                requests[worker.index] = sum(family.samples.values()) if family else 0.0
        return web.json_response({"workers": [
            {"index": w.index, "pid": w.pid, "serving": w.ready, "restarts": w.restarts,
             "requests": requests.get(w.index)} for w in supervisor.workers]})

    async def close(app: web.Application) -> None:
        await admins.close()

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/inflight", inflight)
    app.router.add_routes(throttle_routes(lambda: supervisor.throttle))
    app.router.add_get("/cache", cache)
    app.router.add_delete("/cache", cache)
    app.router.add_get("/workers", workers_handler)
    app.on_cleanup.append(close)
    return app
