"""DeferredReports: the queue an integration's observed calls wait in for the sender thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from producers.deferred import DeferredReports
from producers.integrations import anthropic_streams
from producers.integrations.anthropic import deferring_to
from producers.problems import InputProblems

Adder = Callable[[DeferredReports], Callable[[tuple[Any, ...]], None]]


def _c_appender(deferred: DeferredReports) -> Callable[[tuple[Any, ...]], None]:
    anthropic_streams.use_c(True)
    add = deferring_to(deferred)
    assert type(add).__name__ == "Appender"
    return add


@pytest.fixture(params=["python", "c"] if anthropic_streams.c_extension() else ["python"])
def adder(request: pytest.FixtureRequest) -> Iterator[Adder]:
    """Each test adds with DeferredReports.add and with the C appender the anthropic
    integration uses in its place (when the extension is built)."""
    was_c = anthropic_streams.c_extension() is not None
    if request.param == "python":
        yield lambda deferred: deferred.add
    else:
        yield _c_appender
    anthropic_streams.use_c(was_c)


def test_jobs_run_once_in_order_and_a_failing_one_is_counted_not_raised(adder: Adder) -> None:
    problems = InputProblems()
    deferred = DeferredReports(problems, wake_at=1000)
    add = adder(deferred)
    done: list[int] = []

    def fail() -> None:
        raise RuntimeError("broken job")

    add((done.append, 1))
    add((fail,))
    add((done.append, 2))
    assert len(deferred) == 3 and done == []  # adding runs nothing
    deferred.run()
    deferred.run()
    assert done == [1, 2] and len(deferred) == 0
    assert problems.counts() == {"internal_error": 1}


def test_a_job_added_while_running_runs_in_the_same_pass(adder: Adder) -> None:
    deferred = DeferredReports(InputProblems(), wake_at=1000)
    add = adder(deferred)
    done: list[str] = []
    add((lambda: add((done.append, "second")),))
    deferred.run()
    assert done == ["second"]


def test_the_sender_is_woken_once_per_backlog_of_wake_at_jobs(adder: Adder) -> None:
    deferred = DeferredReports(InputProblems(), wake_at=3)
    add = adder(deferred)
    wakes: list[None] = []
    deferred.wake_with(lambda: wakes.append(None))
    add((print,))
    add((print,))
    assert wakes == []
    for _ in range(8):
        add((print,))
    assert len(wakes) == 1  # not once per job while the sender has not run yet
    deferred.run()  # the sender's round answers the wake
    for _ in range(3):
        add((len, ()))
    assert len(wakes) == 2


def test_concurrent_runners_keep_the_order(adder: Adder) -> None:
    deferred = DeferredReports(InputProblems(), wake_at=10**9)
    add = adder(deferred)
    done: list[int] = []
    for i in range(20_000):
        add((done.append, i))
    runners = [threading.Thread(target=deferred.run) for _ in range(4)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert done == list(range(20_000))


def test_the_c_appender_takes_exactly_one_job_and_survives_a_failing_wake() -> None:
    if anthropic_streams.c_extension() is None:
        pytest.skip("the C extension is not built (no compiler)")
    deferred = DeferredReports(InputProblems(), wake_at=1)
    add = deferring_to(deferred)
    with pytest.raises(TypeError, match="one job"):
        add((print,), (print,))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="one job"):
        add(job=(print,))  # type: ignore[call-arg]
    assert len(deferred) == 0

    def broken_wake() -> None:
        raise RuntimeError("no sender")

    deferred.wake_with(broken_wake)
    with pytest.raises(RuntimeError, match="no sender"):  # as DeferredReports.add would
        add((print,))
    assert len(deferred) == 1  # the job was queued before the wake failed
