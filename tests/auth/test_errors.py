"""The one error type: a ProxyError survives every way it is raised, with all it carries.

The old ``Refusal`` was a frozen-dataclass exception: raised through a
``@contextmanager`` it arrived as ``FrozenInstanceError`` (the context
manager sets ``__traceback__`` on it), so a refusal inside a ``with`` block
became a 500.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
from collections.abc import AsyncIterator, Iterator

import pytest

from auth.errors import ProxyError

HEADERS = {"WWW-Authenticate": 'Bearer realm="https://h/token",service="h"', "Retry-After": "7"}


def make() -> ProxyError:
    return ProxyError(401, "UNAUTHORIZED", "log in first", HEADERS)


def assert_intact(err: BaseException) -> None:
    assert type(err) is ProxyError
    assert (err.status, err.code, err.message) == (401, "UNAUTHORIZED", "log in first")
    assert err.headers == HEADERS


@contextlib.contextmanager
def passing() -> Iterator[None]:
    yield


@contextlib.contextmanager
def cleaning_up(log: list[str]) -> Iterator[None]:
    try:
        yield
    finally:
        log.append("cleaned")


@contextlib.asynccontextmanager
async def apassing() -> AsyncIterator[None]:
    yield


@contextlib.asynccontextmanager
async def acleaning_up(log: list[str]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        log.append("cleaned")


def test_raised_through_a_contextmanager_arrives_as_itself() -> None:
    original = make()
    with pytest.raises(ProxyError) as info, passing():
        raise original
    assert info.value is original
    assert_intact(info.value)


def test_raised_through_nested_contextmanagers_with_cleanup() -> None:
    log: list[str] = []
    with pytest.raises(ProxyError) as info, cleaning_up(log), passing(), contextlib.ExitStack():
        raise make()
    assert_intact(info.value)
    assert log == ["cleaned"]


def test_raised_inside_the_contextmanager_itself() -> None:
    @contextlib.contextmanager
    def refusing() -> Iterator[None]:
        raise make()
        yield  # pragma: no cover

    with pytest.raises(ProxyError) as info, refusing():
        pass  # pragma: no cover
    assert_intact(info.value)


async def test_raised_through_an_asynccontextmanager_arrives_as_itself() -> None:
    log: list[str] = []
    original = make()
    with pytest.raises(ProxyError) as info:
        async with apassing(), acleaning_up(log):
            raise original
    assert info.value is original
    assert_intact(info.value)
    assert log == ["cleaned"]


def test_traceback_and_cause_can_be_set() -> None:
    err = make()
    try:
        raise err from KeyError("x")
    except ProxyError as caught:
        assert caught.__traceback__ is not None and isinstance(caught.__cause__, KeyError)
    err.__traceback__ = None  # what contextlib does; a frozen dataclass refused it
    assert_intact(err)


def test_is_a_plain_exception_with_the_message_as_text() -> None:
    err = make()
    assert isinstance(err, Exception)
    assert str(err) == "log in first"
    assert repr(err) == "ProxyError(401, 'UNAUTHORIZED', 'log in first')"


def test_headers_are_copied_and_default_to_empty() -> None:
    given = dict(HEADERS)
    err = ProxyError(429, "TOO_MANY_REQUESTS", "slow down", given)
    given["Retry-After"] = "999"
    assert err.headers["Retry-After"] == "7"
    assert ProxyError(404, "NOT_FOUND", "nothing here").headers == {}


def test_survives_copy_and_pickle() -> None:
    for clone in (copy.copy(make()), copy.deepcopy(make())):
        assert (clone.status, clone.code, clone.message, clone.headers) == (401, "UNAUTHORIZED", "log in first",
                                                                            HEADERS)
    restored = pickle.loads(pickle.dumps(make()))
    assert_intact(restored)
