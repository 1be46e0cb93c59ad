"""Reports whose building waits for the sender thread, so the caller's thread only appends.

An integration that observes someone else's calls (producers/integrations/) must add next to
nothing to them: on the caller's thread it appends one tuple of raw references
`(function, *args)`; building the event, pricing it and queueing it happen here, in order,
when the sender next delivers, or sooner when a reader needs them (flush(), stats(),
get_events(), get_costs()).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from producers.problems import InputProblems

Job = tuple[Any, ...]
"""`(function, *args)`: called as function(*args); it reports its own failures."""


class DeferredReports:
    """FIFO of jobs; `add` is the caller's whole cost, `run` executes them in order."""

    __slots__ = ("_jobs", "_lock", "_problems", "_wake", "_wake_at", "_woken")

    def __init__(self, problems: InputProblems, wake_at: int) -> None:
        self._jobs: deque[Job] = deque()
        self._lock = threading.Lock()
        self._problems = problems
        self._wake_at = wake_at
        self._wake: Callable[[], None] | None = None
        self._woken = False  # asked once; the next run() answers it

    def wake_with(self, wake: Callable[[], None]) -> None:
        """Who to wake once `wake_at` jobs wait (the sender), as emit() does for events."""
        self._wake = wake

    def add(self, job: Job) -> None:
        jobs = self._jobs
        jobs.append(job)
        if len(jobs) >= self._wake_at:
            self.wake_due()

    def parts(self) -> tuple[deque[Job], int, Callable[[], None]]:
        """(jobs, wake_at, wake_due): what a faster `add` needs (the anthropic integration's
        C one: append to jobs, and call wake_due once wake_at jobs wait)."""
        return self._jobs, self._wake_at, self.wake_due

    def wake_due(self) -> None:
        """Enough jobs wait: wake the sender, once until its next run."""
        if not self._woken and self._wake is not None:
            self._woken = True
            self._wake()

    def __len__(self) -> int:
        return len(self._jobs)

    def run(self) -> None:
        """Run every waiting job, oldest first (one runner at a time keeps their order)."""
        jobs = self._jobs
        if not jobs:
            return
        with self._lock:
            self._woken = False
            while jobs:
                job = jobs.popleft()
                try:
                    job[0](*job[1:])
                except Exception as exc:  # a job reports its own failures; this is a last guard
                    self._problems.report(
                        "internal_error", f"a deferred report failed: {exc!r:.200}"
                    )
                del job  # its references go now, not when the next job replaces it

    def clear(self) -> None:
        """In a forked child: the parent's jobs are the parent's to send."""
        self._jobs.clear()
        self._lock = threading.Lock()
        self._woken = False
