"""What pulse.instrument_anthropic() adds to a call of the real anthropic client, in µs.

Run: .venv/bin/python bench/anthropic_overhead.py [--calls 3000] [--loopback-calls 300]

Both clients are the real `anthropic.Anthropic`; one is instrumented. Side by side in the
same run, in interleaved blocks so machine noise hits both alike:
  - in-process: each client's httpx client gets a transport of ours that replays answers
    recorded from tests/anthropic_server.py (a JSON message; an SSE stream chunked per
    event), so the figure is the instrumentation's CPU cost without socket jitter;
  - loopback: both clients talk to tests/anthropic_server.py over 127.0.0.1 (noisier).
Calls: `messages.create(...)` and `messages.create(stream=True)` read to the end. The
instrumented client reports to a GenPulse delivering to Kafka (--bootstrap, default
GENPULSE_KAFKA_BOOTSTRAP; when nothing listens there, a private broker is started for the
run), so the buffer drains as in production.
Overhead = median(instrumented) - median(bare). Target (issue 13): <= 5 µs median per call.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genpulse.devservices import start_kafka
from genpulse.devservices.ports import port_open
from producers import GenPulse
from tests.anthropic_server import MessagesServer, Reply, Usage

ASK: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Three benefits, please."}],
}
BLOCK = 100


class Recorded(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class ReplayTransport(httpx.BaseTransport):
    """Answers every request with a recorded response: JSON or SSE by the body's `stream`."""

    def __init__(self, plain: httpx.Response, streamed: httpx.Response) -> None:
        self._plain = (plain.status_code, list(plain.headers.raw), [plain.content])
        body = streamed.content
        events = [part + b"\n\n" for part in body.split(b"\n\n") if part]
        self._streamed = (streamed.status_code, list(streamed.headers.raw), events)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, chunks = (
            self._streamed if b'"stream":true' in request.content else self._plain
        )
        headers = [(k, v) for k, v in headers if k.lower() != b"transfer-encoding"]
        return httpx.Response(status, headers=headers, stream=Recorded(chunks))


def record(server: MessagesServer) -> ReplayTransport:
    with httpx.Client(base_url=server.url) as http:
        answers = []
        for stream in (False, True):
            server.script(
                Reply(text="Ship faster with fewer bugs.", usage=Usage(2000, 450, 300, 0, 1000))
            )
            answers.append(http.post("/v1/messages", json={**ASK, "stream": stream}))
    return ReplayTransport(*answers)


def call_plain(client: anthropic.Anthropic) -> None:
    client.messages.create(**ASK)


def hand_reported(pulse: GenPulse) -> Callable[[anthropic.Anthropic], None]:
    """What a service does without the integration: record_model_call() from `usage`."""

    def call(client: anthropic.Anthropic) -> None:
        began = time.perf_counter()
        usage = client.messages.create(**ASK).usage
        pulse.costs.record_model_call(
            ASK["model"],
            usage.input_tokens,
            usage.output_tokens,
            cache_write_tokens=usage.cache_creation_input_tokens or 0,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            duration_ms=(time.perf_counter() - began) * 1000.0,
        )

    return call


def call_stream(client: anthropic.Anthropic) -> None:
    for _ in client.messages.create(stream=True, **ASK):
        pass


Variant = tuple[anthropic.Anthropic, Callable[[anthropic.Anthropic], None]]


def measure(variants: dict[str, Variant], calls: int) -> dict[str, float]:
    """Median µs per call of each variant, interleaved in blocks."""
    samples: dict[str, list[int]] = {name: [] for name in variants}
    clock = time.thread_time_ns  # this thread's CPU time: no waiting for a core counted
    for client, call in variants.values():  # warm up: imports, pools, pydantic caches
        for _ in range(20):
            call(client)
    done = 0
    while done < calls:
        for name, (client, call) in variants.items():
            into = samples[name]
            for _ in range(BLOCK):
                began = clock()
                call(client)
                into.append(clock() - began)
        done += BLOCK
    return {name: sorted(s)[len(s) // 2] / 1000.0 for name, s in samples.items()}


def hooks_us(
    pulse: GenPulse, client: anthropic.Anthropic, replay: ReplayTransport
) -> dict[str, float]:
    """The instrumentation's own work for one call, replayed alone: best of 9 rounds of 500,
    µs per call, minus the same steps without it (reading the recorded body and closing).
    The steps are those the client's call triggers, on a real Message and httpx objects."""
    from producers.integrations import anthropic as integration

    reporter = integration.Reporter(
        pulse.events.track, pulse.costs.record_model_call, lambda kind, detail: None
    )
    message = client.messages.create(**ASK)
    request = httpx.Request("POST", "http://127.0.0.1/v1/messages")

    def responses(stream: bool) -> list[httpx.Response]:
        status, headers, chunks = replay._streamed if stream else replay._plain
        return [
            httpx.Response(status, headers=headers, stream=Recorded(chunks)) for _ in range(500)
        ]

    def observed(stream: bool, response: httpx.Response) -> None:
        call = integration._begin(reporter, {"body": ASK, "stream": stream})
        token = integration._CALL.set(call)
        integration._on_request(request)
        integration._on_response(response)
        integration._CALL.reset(token)
        for _ in response.stream:
            pass
        response.close()
        integration._end_returned(call, None if stream else message)

    def unobserved(stream: bool, response: httpx.Response) -> None:
        for _ in response.stream:
            pass
        response.close()

    def best(step: Callable[[bool, httpx.Response], None], stream: bool) -> float:
        rounds = []
        for _ in range(9):
            batch = responses(stream)
            began = time.thread_time_ns()
            for response in batch:
                step(stream, response)
            rounds.append((time.thread_time_ns() - began) / len(batch) / 1000.0)
        return min(rounds)

    return {
        kind: best(observed, stream) - best(unobserved, stream)
        for kind, stream in (("create", False), ("stream", True))
    }


def track_median_us(pulse: GenPulse, calls: int = 20_000) -> float:
    """The SDK's own hot path in this run, to scale the figures (about 1 µs on a quiet core)."""
    clock, samples = time.thread_time_ns, []
    for _ in range(calls):
        began = clock()
        pulse.events.track("cache_hit", {"key": "k"})
        samples.append(clock() - began)
    return sorted(samples)[calls // 2] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="in-process calls per variant")
    parser.add_argument(
        "--loopback-calls", type=int, default=300, help="loopback calls per variant"
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
    pulse = GenPulse(
        service="bench",
        bootstrap_servers=bootstrap,
        topic_prefix=f"bench-{os.getpid()}",
        follow_budget_state=False,
    )
    figures: dict[str, Any] = {"bench": "anthropic_overhead"}
    with MessagesServer() as server:
        replay = record(server)

        variants = {
            "in_process": lambda: {"http_client": httpx.Client(transport=replay)},
            "loopback": lambda: {},
        }
        for where, options in variants.items():
            bare = anthropic.Anthropic(base_url=server.url, api_key="bench", **options())
            watched = pulse.instrument_anthropic(
                anthropic.Anthropic(base_url=server.url, api_key="bench", **options())
            )
            calls = args.calls if where == "in_process" else args.loopback_calls
            kinds: dict[str, dict[str, Variant]] = {
                "create": {
                    "bare": (bare, call_plain),
                    "hand_reported": (bare, hand_reported(pulse)),
                    "instrumented": (watched, call_plain),
                },
                "stream": {"bare": (bare, call_stream), "instrumented": (watched, call_stream)},
            }
            for kind, variants_of_kind in kinds.items():
                medians = measure(variants_of_kind, calls)
                key = f"{where}_{kind}"
                for name, median in medians.items():
                    figures[f"{key}_{name}_median_us"] = round(median, 2)
                figures[f"{key}_overhead_median_us"] = round(
                    medians["instrumented"] - medians["bare"], 2
                )
                figures[f"{key}_ratio"] = round(medians["instrumented"] / medians["bare"], 4)
                if "hand_reported" in medians:
                    figures[f"{key}_overhead_vs_hand_reported_us"] = round(
                        medians["instrumented"] - medians["hand_reported"], 2
                    )
                shown = ", ".join(f"{name} {value:8.1f} µs" for name, value in medians.items())
                print(f"{key:>18}: {shown}", file=sys.stderr)
        for kind, cost in hooks_us(pulse, bare, replay).items():
            figures[f"instrumentation_work_{kind}_us"] = round(cost, 2)
    figures["track_median_us"] = round(track_median_us(pulse), 3)
    pulse.flush(timeout=30)
    stats = pulse.stats()
    figures["reported_events"] = stats.sent + stats.buffered
    figures["delivered_events"] = stats.sent
    figures["invalid"] = stats.invalid
    pulse.close(timeout=5)
    return figures


if __name__ == "__main__":
    main()
