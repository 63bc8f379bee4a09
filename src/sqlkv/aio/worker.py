"""The one thread that owns an ``sqlkv.aio`` connection's blocking DB-API connection.

Every call is a ``Job`` run on that thread in submission order, its result handed back to
the event loop with ``call_soon_threadsafe``: the loop never waits on SQLite, the engine or
the store. This module also owns what a cancelled ``await`` means:

- a job whose await was cancelled **before it started** never runs;
- a job cancelled **while it runs** runs to its end (SQLite and the engine commit cannot be
  stopped half-way; the engine applies a commit entirely or not at all);
- either way, once that job is settled the worker rolls back any transaction still open,
  so that the caller, who cannot know how far its work got, never has it committed later
  by accident. ``in_transaction`` is False afterwards and the connection stays usable;
  if that rollback fails (the database was taken over, the engine is unreachable) the
  connection is marked broken and every later call raises, saying why.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, ABANDONED = "queued", "running", "done", "abandoned"


class Job:
    """One call to run on the worker thread; ``state`` moves under ``lock`` only."""

    __slots__ = ("fn", "future", "lock", "loop", "settle_after", "state")

    def __init__(
        self,
        fn: Callable[[], Any],
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[Any] | None,
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future
        self.lock = threading.Lock()
        self.state = QUEUED
        self.settle_after = False  # roll back an open transaction once this job is done

    def cancel(self) -> bool:
        """The await was cancelled. True if the job had finished already (its outcome is
        known but was not delivered), False if it will never run or is running now (the
        worker settles the connection after it)."""
        with self.lock:
            if self.state == QUEUED:
                self.state = ABANDONED
            if self.state == DONE:
                return True
            self.settle_after = True
            return False


def _deliver(future: asyncio.Future[Any] | None, result: Any, error: BaseException | None) -> None:
    if future is None or future.done():  # cancelled meanwhile: the canceller settles the connection
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Worker(threading.Thread):
    """Runs jobs in order; ``settle`` is called after a cancelled job (roll back)."""

    def __init__(self, name: str, settle: Callable[[], None]) -> None:
        # daemon: a connection the program forgot to close must not keep it from exiting;
        # a commit cut off by exit is not half-applied (the engine commit is atomic)
        super().__init__(name=name, daemon=True)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._settle = settle

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread."""
        self._jobs.put(None)

    def run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with job.lock:
                if job.state == ABANDONED:
                    run = False
                else:
                    job.state = RUNNING
                    run = True
            result: Any = None
            error: BaseException | None = None
            if run:
                try:
                    result = job.fn()
                except BaseException as exc:  # handed to the awaiting task
                    error = exc
            with job.lock:
                settle = job.settle_after
                job.state = DONE
            if settle or job.future is None:
                if error is not None:
                    log.debug("call nobody awaits failed", extra={"error": repr(error)})
                if settle:
                    self._settle_quietly()
                continue
            assert job.loop is not None
            try:
                job.loop.call_soon_threadsafe(_deliver, job.future, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                log.debug("event loop closed before a result could be delivered")

    def settle_now(self) -> None:
        """Queue a settle (for a job that finished before its await was cancelled)."""
        job = Job(lambda: None, asyncio.get_running_loop(), None)
        job.settle_after = True
        self._jobs.put(job)

    def _settle_quietly(self) -> None:
        try:
            self._settle()
        except BaseException as exc:
            log.warning("settling after a cancelled call failed", extra={"error": repr(exc)})
