"""One way for a test to wait for something the services do asynchronously: poll a check.

A message is published, a case is written a moment later: tests poll for the outcome instead of
sleeping for a guessed time. The deadline only catches a hang, so it is generous (a busy
two-core machine is slow); how fast things happen is measured in `bench/`, never here.
"""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

Check = Callable[[], Any] | Callable[[], Awaitable[Any]]


async def eventually(
    check: Check,
    timeout: float = 60.0,
    interval: float = 0.05,
    progress: Callable[[], Any] | None = None,
) -> Any:
    """Poll `check` (plain or async) until it returns something truthy, and return that; fail
    with its last value (and `progress()`, what the test saw so far) after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            seen = f"; seen: {progress()!r}" if progress is not None else ""
            raise AssertionError(f"not reached within {timeout} s; last: {last!r}{seen}")
        await asyncio.sleep(interval)


def eventually_blocking(
    check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2
) -> Any:
    """`eventually` for synchronous tests (the browser tests drive Playwright's sync API)."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s; last: {last!r}")
        time.sleep(interval)
