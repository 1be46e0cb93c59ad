"""Bad input from the caller: counted per kind, warned about once per kind, never raised."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("genpulse.sdk")


class InputProblems:
    """Counts of rejected or repaired calls by kind (e.g. "unknown_model", "invalid_tokens")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def report(self, kind: str, detail: str) -> None:
        with self._lock:
            seen = self._counts.get(kind, 0)
            self._counts[kind] = seen + 1
        if not seen:
            log.warning(
                "genpulse: %s (%s); counted in stats().invalid[%r], warned once", detail, kind, kind
            )

    def renew_lock(self) -> None:
        """In a forked child: the parent's lock may have been held by a thread now gone."""
        self._lock = threading.Lock()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
