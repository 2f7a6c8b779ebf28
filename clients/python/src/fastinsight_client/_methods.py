"""Turns an operation (a function building a ``Call``) into a client method with the
operation's own signature and docstring, for the sync and the async client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from fastinsight_client._call import Call

P = ParamSpec("P")
T = TypeVar("T")


class Sender(Protocol):
    def send(self, call: Call[T]) -> T: ...


class AsyncSender(Protocol):
    def send(self, call: Call[T]) -> Awaitable[T]: ...




def _describe(method: Callable[..., object], factory: Callable[..., object]) -> None:
    method.__name__ = factory.__name__
    method.__qualname__ = factory.__qualname__
    method.__doc__ = factory.__doc__
    method.__wrapped__ = factory  # type: ignore[attr-defined]  # inspect.signature shows the operation's


def sync_method(factory: Callable[P, Call[T]]) -> Callable[Concatenate[Sender, P], T]:
    def method(self: Sender, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(factory(*args, **kwargs))

    _describe(method, factory)
    return method


def async_method(factory: Callable[P, Call[T]]) -> Callable[Concatenate[AsyncSender, P], Awaitable[T]]:
    async def method(self: AsyncSender, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(factory(*args, **kwargs))

    _describe(method, factory)
    return method
