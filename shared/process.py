"""How a long-running worker process runs its event loop and its garbage collector.

The HTTP services get both from uvicorn (uvloop when installed); worker-only processes
(broadcast's sender replicas, analytics' counting process) set them up here.
"""

import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def collect_less_often() -> None:
    """Garbage-collect a busy worker less often (call once, after start-up imports).

    Workers keep tens of thousands of tracked objects in flight (messages, decoded events), and
    with CPython's default thresholds (700, 10, 10) collections took 17 % of analytics' wall
    time at 27k events/s, the full ones walking every object of the imported libraries
    (measured in bench.analytics). What exists at start-up is frozen out of the collector, and
    a young collection runs every 50,000 net allocations instead of 700.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_worker(main: Coroutine[Any, Any, T]) -> T:
    """Run a worker's main coroutine on uvloop, as uvicorn runs the HTTP services: its
    callbacks, sockets and timers cost less CPU than asyncio's own loop (measured on the Zalo
    client: ~12 % less per call)."""
    collect_less_often()
    return uvloop.run(main)


def log_failure(task: "asyncio.Task[Any]") -> None:
    """A done callback: a background loop that ended with an exception says so at once (by
    default asyncio reports it only when the task object is collected)."""
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger(__name__).error(
            "background task failed", exc_info=task.exception(), extra={"task": task.get_name()}
        )


async def stop_task(task: "asyncio.Task[Any]") -> None:
    """Cancel `task` and wait until it has ended; re-raise what it failed with, if anything.

    Cancelled again until done: a library call that swallows a cancellation (Python 3.11's
    `wait_for` does when its result arrives at that moment) must not hang shutdown.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
    if not task.cancelled():
        task.result()
