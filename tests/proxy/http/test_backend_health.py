"""A backend outage is logged once per change of state, with the errno and the address.

Unit tests with a fake clock, then the real forwarder in-process against a
closed port that later starts answering.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from proxy.http.backend_health import BackendHealth, describe
from tests.proxy.http.conftest import FakeRegistry, World

HEALTH_LOG = "proxy.http.backend_health"
ORIGIN = "http://127.0.0.1:5000"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == HEALTH_LOG and r.levelno == level]


def test_describe_names_the_errno_as_the_os_says_it() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 5000, False, True, None, None, None),
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5000)"))
    assert describe(refused) == "[Errno 111] Connection refused"
    assert describe(socket.gaierror(-2, "Name or service not known")) == "[Errno -2] Name or service not known"
    assert describe(aiohttp.ConnectionTimeoutError()) == "no connection within timeouts.connect"
    assert describe(aiohttp.ServerDisconnectedError()) == "Server disconnected"
    wrapped = aiohttp.ClientOSError()
    wrapped.__cause__ = ConnectionResetError(104, "reset")
    assert describe(wrapped) == "[Errno 104] Connection reset by peer"


def test_one_warning_down_one_info_up_debug_per_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=HEALTH_LOG)
    clock = Clock()
    health = BackendHealth(ORIGIN, clock)
    health.answered()  # up while up: silent
    for _ in range(20):
        health.unreachable(ConnectionRefusedError(111, "x"), "GET /v2/")
        clock.now += 0.5
    assert not health.up
    health.answered()
    health.answered()
    assert health.up
    assert _messages(caplog, logging.WARNING) == [f"backend {ORIGIN} unreachable: [Errno 111] Connection refused"]
    assert _messages(caplog, logging.INFO) == [f"backend {ORIGIN} reachable again after 10.0 s "
                                               "(20 requests failed meanwhile)"]
    assert len(_messages(caplog, logging.DEBUG)) == 20  # one per failed request, for whoever wants them


def test_a_second_outage_is_logged_again_and_a_silent_backend_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=HEALTH_LOG)
    clock = Clock()
    health = BackendHealth(ORIGIN, clock)
    health.unreachable(ConnectionRefusedError(111, "x"), "GET /v2/")
    health.answered()
    health.silent(30.0, "GET /v2/x/blobs/y")
    health.silent(30.0, "GET /v2/x/blobs/y")
    clock.now += 2
    health.answered()
    assert _messages(caplog, logging.WARNING) == [
        f"backend {ORIGIN} unreachable: [Errno 111] Connection refused",
        f"backend {ORIGIN} not answering: no response within 30s (timeouts.read)"]
    assert _messages(caplog, logging.INFO) == [
        f"backend {ORIGIN} reachable again after 0.0 s (1 requests failed meanwhile)",
        f"backend {ORIGIN} reachable again after 2.0 s (2 requests failed meanwhile)"]


async def test_the_forwarder_logs_an_outage_once_and_the_recovery_once(
    make_world: Callable[..., Awaitable[World]], aiohttp_server: Callable[..., Awaitable[TestServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with socket.socket() as probe:  # a port nobody listens on (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    world = await make_world(backend_url=origin)
    for _ in range(20):
        assert (await world.client.get("/v2/team/app/manifests/latest")).status == 502
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING
                and r.name in (HEALTH_LOG, "proxy.http.forward")]
    assert [r.getMessage() for r in warnings] == [f"backend {origin} unreachable: [Errno 111] Connection refused"]
    backend = FakeRegistry()
    await aiohttp_server(backend.app(), port=port)
    assert (await world.client.get("/v2/team/app/manifests/latest")).status == 200
    assert (await world.client.get("/v2/team/app/manifests/latest")).status == 200
    recovered = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(recovered) == 1 and recovered[0].startswith(f"backend {origin} reachable again after ")
    assert "(20 requests failed meanwhile)" in recovered[0]
    assert not [r for r in caplog.records if "ClientConnectorError" in r.getMessage()]


def test_the_state_belongs_to_the_upstream_not_the_module() -> None:
    import proxy.http.backend_health as module

    state = [name for name, value in vars(module).items()
             if not name.startswith("__") and isinstance(value, (dict, list, set, BackendHealth))]
    assert state == []
