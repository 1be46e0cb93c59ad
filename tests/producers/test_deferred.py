"""DeferredReports: the queue an integration's observed calls wait in for the sender thread."""

from __future__ import annotations

import threading

from producers.deferred import DeferredReports
from producers.problems import InputProblems


def test_jobs_run_once_in_order_and_a_failing_one_is_counted_not_raised() -> None:
    problems = InputProblems()
    deferred = DeferredReports(problems, wake_at=1000)
    done: list[int] = []

    def fail() -> None:
        raise RuntimeError("broken job")

    deferred.add((done.append, 1))
    deferred.add((fail,))
    deferred.add((done.append, 2))
    assert len(deferred) == 3 and done == []  # adding runs nothing
    deferred.run()
    deferred.run()
    assert done == [1, 2] and len(deferred) == 0
    assert problems.counts() == {"internal_error": 1}


def test_a_job_added_while_running_runs_in_the_same_pass() -> None:
    deferred = DeferredReports(InputProblems(), wake_at=1000)
    done: list[str] = []
    deferred.add((lambda: deferred.add((done.append, "second")),))
    deferred.run()
    assert done == ["second"]


def test_the_sender_is_woken_once_per_backlog_of_wake_at_jobs() -> None:
    deferred = DeferredReports(InputProblems(), wake_at=3)
    wakes: list[None] = []
    deferred.wake_with(lambda: wakes.append(None))
    for _ in range(10):
        deferred.add((print,))
    assert len(wakes) == 1  # not once per job while the sender has not run yet
    deferred.run()  # the sender's round answers the wake
    for _ in range(3):
        deferred.add((len, ()))
    assert len(wakes) == 2


def test_concurrent_runners_keep_the_order() -> None:
    deferred = DeferredReports(InputProblems(), wake_at=10**9)
    done: list[int] = []
    for i in range(20_000):
        deferred.add((done.append, i))
    runners = [threading.Thread(target=deferred.run) for _ in range(4)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert done == list(range(20_000))
