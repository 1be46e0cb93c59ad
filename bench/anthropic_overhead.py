"""What pulse.instrument_anthropic() adds to a call of the real anthropic client, in µs.

Run: .venv/bin/python bench/anthropic_overhead.py [--rounds 20] [--calls 160] [--loopback]
     [--modes create async_messages_stream ...]

Per mode (`messages.create`, `messages.create(stream=True)` read to the end,
`messages.stream()` read to the end; each with `Anthropic` and with `AsyncAnthropic`), five
real clients in the same run:
bare, a second bare one (the control), instrumented for a GenPulse, instrumented with
its reports dropped unbuilt, and the Python wrapper only (reports dropped, no stream watch:
what wrapping the client in Python costs at all; the others use the C paths when built).
Each sample calls all five in one of the 120 orders, in turn
(alternating, so no client is favoured by its place); a call is timed by this thread's CPU
time (`time.thread_time_ns`: waiting for a core of the shared machine is not counted).
Overhead = the median of the per-sample differences (instrumented - bare) with its 95 %
confidence interval; the control's median (bare - bare) shows what noise alone reads.
  - in-process (always): each client's httpx client gets a transport of ours (a real httpx
    transport; nothing of the client is patched) replaying the bytes recorded from
    tests/anthropic_server.py: a JSON message; an SSE stream, one chunk per event;
  - --loopback also: all talk to tests/anthropic_server.py over 127.0.0.1 (noisier).
The GenPulse delivers to Kafka (--bootstrap, default GENPULSE_KAFKA_BOOTSTRAP; when nothing
listens there, a private broker is started) on a topology created first
(streams.topics.ensure_topics, as the worker does), so its events are delivered, not left
buffered. Also printed: the hook's own work on the caller's thread step by step (replayed
alone on real httpx objects, best of rounds), the work it defers to the SDK's sender
thread, and `track()`'s median in this run (about 1 µs on a quiet core: the scale).
Target (issue 13): <= 5 µs median per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genpulse.devservices import start_kafka
from genpulse.devservices.ports import port_open
from producers import GenPulse
from producers.integrations import anthropic as integration
from producers.integrations import anthropic_streams
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.anthropic_server import MessagesServer, Reply, Usage

ASK: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Three benefits, please."}],
}
MODES = (
    "create",
    "async_create",
    "create_stream",
    "messages_stream",
    "async_create_stream",
    "async_messages_stream",
)
TARGET_US = 5.0
"""Issue 13: the instrumentation adds at most this much, median per call."""

Answer = tuple[int, list[tuple[bytes, bytes]], list[bytes]]


class Recorded(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class AsyncRecorded(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class ReplayTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers every request with a recorded response: JSON or SSE by the body's `stream`."""

    def __init__(self, plain: httpx.Response, streamed: httpx.Response) -> None:
        self.plain = _answer(plain, [plain.content])
        events = [part + b"\n\n" for part in streamed.content.split(b"\n\n") if part]
        self.streamed = _answer(streamed, events)

    def answer(self, request: httpx.Request) -> Answer:
        return self.streamed if b'"stream":true' in request.content else self.plain

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, chunks = self.answer(request)
        return httpx.Response(status, headers=headers, stream=Recorded(chunks))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, chunks = self.answer(request)
        return httpx.Response(status, headers=headers, stream=AsyncRecorded(chunks))


def _answer(response: httpx.Response, chunks: list[bytes]) -> Answer:
    headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"transfer-encoding"]
    return response.status_code, headers, chunks


def record(server: MessagesServer) -> ReplayTransport:
    with httpx.Client(base_url=server.url) as http:
        answers = []
        for stream in (False, True):
            server.script(
                Reply(text="Ship faster with fewer bugs.", usage=Usage(2000, 450, 300, 0, 1000))
            )
            answers.append(http.post("/v1/messages", json={**ASK, "stream": stream}))
    return ReplayTransport(*answers)


# -- the calls ------------------------------------------------------------------------------


def sync_call(mode: str) -> Callable[[anthropic.Anthropic], None]:
    def create(client: anthropic.Anthropic) -> None:
        client.messages.create(**ASK)

    def create_stream(client: anthropic.Anthropic) -> None:
        for _ in client.messages.create(stream=True, **ASK):
            pass

    def messages_stream(client: anthropic.Anthropic) -> None:
        with client.messages.stream(**ASK) as stream:
            for _ in stream:
                pass

    calls = {"create": create, "create_stream": create_stream, "messages_stream": messages_stream}
    return calls[mode]


def async_call(mode: str) -> Callable[[anthropic.AsyncAnthropic], Any]:
    async def create(client: anthropic.AsyncAnthropic) -> None:
        await client.messages.create(**ASK)

    async def create_stream(client: anthropic.AsyncAnthropic) -> None:
        async for _ in await client.messages.create(stream=True, **ASK):
            pass

    async def messages_stream(client: anthropic.AsyncAnthropic) -> None:
        async with client.messages.stream(**ASK) as stream:
            async for _ in stream:
                pass

    calls = {
        "async_create": create,
        "async_create_stream": create_stream,
        "async_messages_stream": messages_stream,
    }
    return calls[mode]


CLIENTS = ("bare", "control", "instrumented", "reports_dropped", "wrapper_only")
"""Per mode: a bare client, a second bare one (the control: what noise alone reads), one
instrumented for a GenPulse, and one instrumented whose reports are dropped unbuilt (the
hook on the caller's path without the sender thread's work beside it)."""
ORDERS = list(itertools.permutations(range(len(CLIENTS))))
"""Each sample runs the clients in one of the 120 orders, in turn, so none is favoured by
going first or last."""


def alternate(step: Callable[[int], int], rounds: int, calls: int) -> list[list[int]]:
    """`step(client)` -> ns of one call; per round, `calls` samples of every client."""
    samples: list[list[int]] = []
    for i in range(len(ORDERS)):  # warm up: pools, pydantic caches, the sender's connection
        for client in ORDERS[i % len(ORDERS)]:
            step(client)
    for _ in range(rounds * calls):
        sample = [0] * len(CLIENTS)
        for client in ORDERS[len(samples) % len(ORDERS)]:
            sample[client] = step(client)
        samples.append(sample)
    return samples


def _median(values: list[Any]) -> Any:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _median_ci(values: list[float]) -> tuple[float, float, float]:
    """The median and its 95 % confidence interval (order statistics: no normality assumed)."""
    ordered, n = sorted(values), len(values)
    half = 0.98 * math.sqrt(n)  # 1.96 * sqrt(n) / 2
    low, high = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half))
    return ordered[n // 2], ordered[low], ordered[high]


def measure_sync(
    mode: str,
    clients: tuple[anthropic.Anthropic, ...],
    rounds: int,
    calls: int,
) -> dict[str, Any]:
    call, clock = sync_call(mode), time.thread_time_ns

    def step(client: int) -> int:
        began = clock()
        call(clients[client])
        return clock() - began

    return figures(alternate(step, rounds, calls), calls)


def measure_async(
    mode: str,
    clients: tuple[anthropic.AsyncAnthropic, ...],
    rounds: int,
    calls: int,
) -> dict[str, Any]:
    call, clock = async_call(mode), time.thread_time_ns
    loop = asyncio.new_event_loop()

    async def timed(client: anthropic.AsyncAnthropic) -> int:
        began = clock()
        await call(client)
        return clock() - began

    def step(client: int) -> int:
        return loop.run_until_complete(timed(clients[client]))

    try:
        return figures(alternate(step, rounds, calls), calls)
    finally:
        loop.close()


def figures(samples: list[list[int]], calls: int) -> dict[str, Any]:
    """Overhead = the median of the paired differences (instrumented - bare, same sample);
    the control (second bare - bare) shows what the machine's noise alone gives."""
    us = [[ns / 1000.0 for ns in sample] for sample in samples]
    overhead, low, high = _median_ci([s[2] - s[0] for s in us])
    control, control_low, control_high = _median_ci([s[1] - s[0] for s in us])
    dropped, dropped_low, dropped_high = _median_ci([s[3] - s[0] for s in us])
    wrapper, wrapper_low, wrapper_high = _median_ci([s[4] - s[0] for s in us])
    rounds = [us[i : i + calls] for i in range(0, len(us), calls)]
    bare, watched = _median([s[0] for s in us]), _median([s[2] for s in us])
    return {
        "bare_median_us": round(bare, 2),
        "instrumented_median_us": round(watched, 2),
        "overhead_median_us": round(overhead, 2),
        "overhead_ci95_us": [round(low, 2), round(high, 2)],
        "overhead_ci95_halfwidth_us": round((high - low) / 2, 2),
        "overhead_within_target": overhead <= TARGET_US,
        "overhead_round_median_us": round(
            _median([_median([s[2] - s[0] for s in r]) for r in rounds]), 2
        ),
        "control_median_us": round(control, 2),
        "control_ci95_us": [round(control_low, 2), round(control_high, 2)],
        "reports_dropped_overhead_median_us": round(dropped, 2),
        "reports_dropped_ci95_us": [round(dropped_low, 2), round(dropped_high, 2)],
        "wrapper_only_overhead_median_us": round(wrapper, 2),
        "wrapper_only_ci95_us": [round(wrapper_low, 2), round(wrapper_high, 2)],
        "ratio": round(watched / bare, 4),
        "samples": len(us),
    }


# -- the hook's own steps, replayed alone -----------------------------------------------------


def hook_steps(pulse: GenPulse, replay: ReplayTransport, message: Any) -> dict[str, float]:
    """µs per call of what the instrumented client adds on the caller's thread, replayed
    alone on real objects (best of 9 rounds of 500), and of the work deferred to the sender."""
    jobs: deque[tuple[Any, ...]] = deque()
    pipeline = pulse._pipeline
    reporter = integration.Reporter(
        pipeline.emit, pulse.costs.record_model_call, lambda kind, detail: None, jobs.append
    )
    clock = time.thread_time_ns
    status, headers, chunks = replay.streamed

    def best(run: Callable[[int], None], n: int = 500) -> float:
        rounds = []
        for _ in range(9):
            began = clock()
            run(n)
            rounds.append((clock() - began) / n / 1000.0)
            jobs.clear()
        return min(rounds)

    def answer(path: str, **kwargs: Any) -> Any:  # what the client's own _post returns
        return message

    wrapped = integration._sync_post(answer, reporter)

    def bare_post(n: int) -> None:
        for _ in range(n):
            answer("/v1/messages", body=ASK, stream=False)

    def wrapped_post(n: int) -> None:
        for _ in range(n):
            wrapped("/v1/messages", body=ASK, stream=False)

    def responses(n: int) -> list[httpx.Response]:
        return [httpx.Response(status, headers=headers, stream=Recorded(chunks)) for _ in range(n)]

    def read(n: int, watch: bool) -> float:
        batch = responses(n)
        began = clock()
        for response in batch:
            if watch:
                integration.watch_stream(reporter, 0.0, ASK, (None, None), None, response)
            for _ in response.stream:  # type: ignore[union-attr]
                pass
            response.close()
        spent = clock() - began
        jobs.clear()
        return spent / n / 1000.0

    steps = {"caller_create_us": best(wrapped_post) - best(bare_post)}
    steps["stream_watch_us"] = min(read(500, True) for _ in range(9)) - min(
        read(500, False) for _ in range(9)
    )
    steps["caller_stream_us"] = steps["caller_create_us"] + steps["stream_watch_us"]

    def deferred(stream: bool) -> float:
        rounds = []
        for _ in range(5):
            for _ in range(500):
                if stream:
                    response = responses(1)[0]
                    integration.watch_stream(reporter, 0.0, ASK, (None, None), None, response)
                    for _ in response.stream:  # type: ignore[union-attr]
                        pass
                    response.close()
                else:
                    wrapped("/v1/messages", body=ASK, stream=False)
            count = len(jobs)
            began = clock()
            while jobs:
                job = jobs.popleft()
                job[0](*job[1:])
            rounds.append((clock() - began) / 500 / 1000.0)
            assert count
        return min(rounds)

    steps["sender_thread_create_us"] = deferred(False)
    steps["sender_thread_stream_us"] = deferred(True)
    return {key: round(value, 2) for key, value in steps.items()}


def track_median_us(pulse: GenPulse, calls: int = 20_000) -> float:
    """The SDK's own hot path in this run, to scale the figures to a quiet core (where it
    takes about 1 µs): on a loaded shared machine every figure grows alike."""
    clock, samples = time.thread_time_ns, []
    for _ in range(calls):
        began = clock()
        pulse.events.track("cache_hit", {"key": "k"})
        samples.append(clock() - began)
    return float(_median(samples)) / 1000.0


def wrapper_only(client: Any, dropping: integration.Reporter) -> Any:
    """`client` with the Python `_post` wrapper and its reports dropped, but no stream watch:
    what wrapping the client in Python costs before a stream is watched at all (the C paths,
    when built, are what the instrumented clients use)."""
    watch = integration.watch_stream
    integration.watch_stream = _drop  # (bound by the wrapper as it is made)
    c = integration.c_extension() is not None
    anthropic_streams.use_c(False)
    try:
        return integration.instrument(client, dropping)
    finally:
        integration.watch_stream = watch
        anthropic_streams.use_c(c)


def _drop(*args: Any) -> None:
    """A reporter's every output, dropped (the reports_dropped client)."""


_drop_job = deque(maxlen=0).append
"""Its deferred jobs, dropped by C code (as the instrumented client's C appender adds them:
producers/integrations/anthropic.py's deferring_to), so the rows compare the same hook."""


# -- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds per mode")
    parser.add_argument("--calls", type=int, default=160, help="calls per variant and round")
    parser.add_argument("--loopback", action="store_true", help="also over 127.0.0.1")
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="the modes to measure"
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        host, _, port = args.bootstrap.rpartition(":")
        bootstrap = args.bootstrap
        if not port_open(int(port), host or "127.0.0.1"):
            print(f"nothing at {bootstrap}: starting a private broker", file=sys.stderr)
            broker = start_kafka(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        print(json.dumps(run(args, bootstrap)))


def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    prefix = f"bench-{os.getpid()}"
    asyncio.run(ensure_topics(WorkerSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix)))
    pulse = GenPulse(
        service="bench",
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        follow_budget_state=False,
        local_view_size=0,
    )
    out: dict[str, Any] = {"bench": "anthropic_overhead", "clock": "thread_time"}
    out["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    with MessagesServer() as server:
        replay = record(server)
        places: dict[str, Callable[[], dict[str, Any]]] = {
            "in_process": lambda: {"transport": replay},
        }
        if args.loopback:
            places["loopback"] = dict
        for where, transport in places.items():

            def sync_client(
                options: Callable[[], dict[str, Any]] = transport,
            ) -> anthropic.Anthropic:
                return anthropic.Anthropic(
                    base_url=server.url, api_key="bench", http_client=httpx.Client(**options())
                )

            def async_client(
                options: Callable[[], dict[str, Any]] = transport,
            ) -> anthropic.AsyncAnthropic:
                return anthropic.AsyncAnthropic(
                    base_url=server.url, api_key="bench", http_client=httpx.AsyncClient(**options())
                )

            dropping = integration.Reporter(_drop, _drop, _drop, _drop_job)
            bare = sync_client()
            trio = (
                bare,
                sync_client(),
                pulse.instrument_anthropic(sync_client()),
                integration.instrument(sync_client(), dropping),
                wrapper_only(sync_client(), dropping),
            )
            atrio = (
                async_client(),
                async_client(),
                pulse.instrument_anthropic(async_client()),
                integration.instrument(async_client(), dropping),
                wrapper_only(async_client(), dropping),
            )
            for mode in args.modes:
                if mode.startswith("async_"):
                    got = measure_async(mode, atrio, args.rounds, args.calls)
                else:
                    got = measure_sync(mode, trio, args.rounds, args.calls)
                for key, value in got.items():
                    out[f"{where}_{mode}_{key}"] = value
                low, high = got["overhead_ci95_us"]
                print(
                    f"{where:>10} {mode:>15}: bare {got['bare_median_us']:7.1f} µs, "
                    f"instrumented {got['instrumented_median_us']:7.1f} µs, ratio "
                    f"{got['ratio']:.4f}; overhead {got['overhead_median_us']:6.2f} µs "
                    f"[{low:.2f}, {high:.2f}], reports dropped "
                    f"{got['reports_dropped_overhead_median_us']:6.2f} µs, wrapper only "
                    f"{got['wrapper_only_overhead_median_us']:6.2f} µs, control (bare vs bare) "
                    f"{got['control_median_us']:6.2f} µs",
                    file=sys.stderr,
                )
        message = bare.messages.create(**ASK)
        steps = hook_steps(pulse, replay, message)
    for key, value in steps.items():
        out[f"hook_{key}"] = value
    print("hook steps (µs per call): " + json.dumps(steps), file=sys.stderr)
    out["track_median_us"] = round(track_median_us(pulse), 3)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    before, after = out["load_average_before"], out["load_average_after"]
    print(f"load average before {before}, after {after}", file=sys.stderr)
    delivered = pulse.flush(timeout=30)
    stats = pulse.stats()
    out["events_delivered"] = stats.sent
    out["events_buffered"] = stats.buffered
    out["all_delivered"] = delivered and stats.buffered == 0
    out["invalid"] = stats.invalid
    pulse.close(timeout=5)
    return out


if __name__ == "__main__":
    main()
