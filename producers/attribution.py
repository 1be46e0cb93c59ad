"""Which session and user the current code is working for, so reports need not be told each time.

    with pulse.session("sess-42", user_id="u-7"):
        client.messages.create(...)      # instrumented calls are attributed to sess-42 / u-7
        pulse.events.track("generation_started")   # so is every report without its own ids

A context variable, so it follows the code: each thread and each asyncio task sees its own
value, and tasks started inside the block inherit it. Explicit arguments still win.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "genpulse_attribution", default=(None, None)
)

current = _CURRENT.get
"""() -> (session_id, user_id) of the innermost `session()` block, (None, None) outside any."""


@contextmanager
def session(session_id: str | None = None, user_id: str | None = None) -> Iterator[None]:
    """Attribute reports made inside the block to `session_id` / `user_id` (None: keep outer)."""
    outer_session, outer_user = _CURRENT.get()
    token = _CURRENT.set((session_id or outer_session, user_id or outer_user))
    try:
        yield
    finally:
        _CURRENT.reset(token)
