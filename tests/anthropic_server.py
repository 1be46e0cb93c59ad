"""A loopback server of ours that speaks enough of Anthropic's Messages API for the real client.

    with MessagesServer() as server:
        server.script(RateLimited(retry_after="0"), Reply(text="hi", usage=Usage(input_tokens=9)))
        client = anthropic.Anthropic(base_url=server.url, api_key="test")
        client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[...])
        server.requests  # what the client sent, attempt by attempt

`POST /v1/messages` answers each request with the next scripted answer (a `Reply` when the
script is empty): JSON for a plain request, server-sent events when the body says
`"stream": true` (message_start, ping, content_block_start, one content_block_delta per
text piece, content_block_stop, message_delta with the final usage, message_stop). Failures
are answers too: `RateLimited` (429 with retry-after), `Overloaded` (529), `ServerError`
(500), `BreakStream` (a stream whose connection drops after some events), `StreamError`
(an SSE `error` event mid-stream), and any answer can wait before its first byte.

Plain `http.server` because the failures need the raw socket: a chunked body cut short, a
status line held back.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Usage:
    """What the API reports as `usage`; cache writes split by TTL as in `cache_creation`."""

    input_tokens: int = 25
    output_tokens: int = 12
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0

    def as_json(self, output_tokens: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
            "cache_creation_input_tokens": self.cache_write_5m_tokens + self.cache_write_1h_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write_5m_tokens,
                "ephemeral_1h_input_tokens": self.cache_write_1h_tokens,
            },
            "service_tier": "standard",
        }


@dataclass(frozen=True)
class Reply:
    """A successful message. Streamed as one delta per piece, `event_gap_s` apart."""

    text: str = "Hello from the loopback server."
    usage: Usage = field(default_factory=Usage)
    model: str | None = None  # default: the model the request asked for
    pieces: int = 3
    stop_reason: str = "end_turn"
    first_byte_delay_s: float = 0.0
    event_gap_s: float = 0.0


@dataclass(frozen=True)
class Failure:
    """An error answer in the API's shape: `{"type": "error", "error": {...}}`."""

    status: int = 500
    error_type: str = "api_error"
    message: str = "Internal server error"
    retry_after: str | None = None  # seconds; the client waits this long (if 0 < x <= 60)
    should_retry: str | None = None  # the x-should-retry header, when set
    first_byte_delay_s: float = 0.0


def RateLimited(retry_after: str | None = "0.01", **kwargs: Any) -> Failure:
    return Failure(429, "rate_limit_error", "Rate limited", retry_after=retry_after, **kwargs)


def Overloaded(**kwargs: Any) -> Failure:
    return Failure(529, "overloaded_error", "Overloaded", **kwargs)


def ServerError(**kwargs: Any) -> Failure:
    return Failure(500, "api_error", "Internal server error", **kwargs)


@dataclass(frozen=True)
class BreakStream:
    """A stream that sends `after_deltas` text deltas (with message_start's usage) and a
    message_delta reporting `reported_output_tokens` if given, then drops the connection."""

    reply: Reply = field(default_factory=Reply)
    after_deltas: int = 1
    reported_output_tokens: int | None = None


@dataclass(frozen=True)
class StreamError:
    """A stream that sends `after_deltas` deltas, then an SSE `error` event (e.g. overloaded)."""

    reply: Reply = field(default_factory=Reply)
    after_deltas: int = 1
    error_type: str = "overloaded_error"


Answer = Reply | Failure | BreakStream | StreamError


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when the request line arrived

    @property
    def retry_count(self) -> int:
        return int(self.headers.get("x-stainless-retry-count", "0"))


class MessagesServer:
    """The server on 127.0.0.1 and a free port, served from a thread until stop()."""

    def __init__(self) -> None:
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        self.requests: list[ReceivedRequest] = []
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="messages-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> MessagesServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> MessagesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *answers: Answer) -> None:
        """Queue answers for the next requests, in order (after any still queued)."""
        with self._lock:
            self._answers.extend(answers)

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self.requests.clear()

    def _next(self, request: ReceivedRequest) -> Answer:
        with self._lock:
            self.requests.append(request)
            return self._answers.popleft() if self._answers else Reply()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout, closed stream) is expected here, not an error."""


def _handler_for(server: MessagesServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_MessagesHandler):
        owner = server

    return Handler


class _MessagesHandler(BaseHTTPRequestHandler):
    owner: MessagesServer
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as the real API
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args: Any) -> None:  # tests stay quiet
        pass

    def do_POST(self) -> None:
        at = time.monotonic()
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        request = ReceivedRequest(
            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, at
        )
        if self.path.split("?")[0] != "/v1/messages":
            self._json(404, _error_body("not_found_error", f"no route {self.path}"))
            return
        answer = self.owner._next(request)
        if isinstance(answer, Failure):
            self._failure(answer)
        elif body.get("stream"):
            self._stream(answer, body)
        else:
            reply = answer if isinstance(answer, Reply) else answer.reply
            time.sleep(reply.first_byte_delay_s)
            self._json(200, _message(reply, body, reply.usage.as_json()))

    def _failure(self, failure: Failure) -> None:
        time.sleep(failure.first_byte_delay_s)
        headers = {}
        if failure.retry_after is not None:
            headers["retry-after"] = failure.retry_after
        if failure.should_retry is not None:
            headers["x-should-retry"] = failure.should_retry
        self._json(failure.status, _error_body(failure.error_type, failure.message), headers)

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, answer: Answer, body: dict[str, Any]) -> None:
        reply = answer if isinstance(answer, Reply) else answer.reply  # type: ignore[union-attr]
        time.sleep(reply.first_byte_delay_s)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.end_headers()
        start_usage = reply.usage.as_json(output_tokens=1)
        self._event(
            "message_start",
            {"type": "message_start", "message": _message(reply, body, start_usage, content=False)},
        )
        self._event("ping", {"type": "ping"})
        self._event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        pieces = _split(reply.text, reply.pieces)
        cut = answer.after_deltas if isinstance(answer, BreakStream | StreamError) else None
        for number, piece in enumerate(pieces):
            if cut is not None and number == cut:
                break
            time.sleep(reply.event_gap_s)
            self._event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        if isinstance(answer, BreakStream):
            if answer.reported_output_tokens is not None:
                self._event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": None, "stop_sequence": None},
                        "usage": {"output_tokens": answer.reported_output_tokens},
                    },
                )
            self.wfile.flush()
            self.close_connection = True  # no terminating chunk: the body is cut short
            return
        if isinstance(answer, StreamError):
            self._event("error", _error_body(answer.error_type, "stream failed"))
            self._end_chunks()
            return
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        final = reply.usage.as_json()
        final.pop("service_tier")
        self._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                "usage": final,
            },
        )
        self._event("message_stop", {"type": "message_stop"})
        self._end_chunks()

    def _event(self, name: str, data: dict[str, Any]) -> None:
        payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _message(
    reply: Reply, body: dict[str, Any], usage: dict[str, Any], content: bool = True
) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": reply.model or body.get("model", "claude-sonnet-4-5"),
        "content": [{"type": "text", "text": reply.text}] if content else [],
        "stop_reason": reply.stop_reason if content else None,
        "stop_sequence": None,
        "usage": usage,
    }


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _split(text: str, pieces: int) -> list[str]:
    """`text` in `pieces` consecutive non-empty parts (fewer when the text is shorter)."""
    pieces = max(1, min(pieces, len(text) or 1))
    size = -(-len(text) // pieces) if text else 1
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
