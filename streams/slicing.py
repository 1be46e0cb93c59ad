"""What a sliced read asks for: filters on the event dimensions and one group-by dimension.

Shared by the reader (streams/reader.py, which answers from the worker's slice rows) and the
API (which parses `service=`, `environment=`, `model=`, `tier=`, `user=`, `tag=key:value`
and `group_by=` into these), so the two agree on names and on what can be combined.
"""

from __future__ import annotations

from dataclasses import dataclass

DIMENSIONS: tuple[str, ...] = ("service", "environment", "model", "tier", "user", "tag")
"""Dimensions a filter or a group-by may name; `tag` is grouped as `tag:<key>`."""

NONE_VALUE = "none"
"""The group of events that carry no value for a dimension (no environment, no model...)."""

OTHER_VALUE = "other"
"""The group that holds what fell out of a dimension's top-K (docs/slicing.md)."""


class UnsupportedSlice(ValueError):
    """A filter or group-by the worker's rows cannot answer exactly; the message says why."""


@dataclass(frozen=True)
class Where:
    """Filters, all of which an event must match (None: no filter on that dimension)."""

    service: str | None = None
    environment: str | None = None
    model: str | None = None
    tier: str | None = None
    user: str | None = None
    tag: tuple[str, str] | None = None  # (key, value)

    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (self.service, self.environment, self.model, self.tier, self.user, self.tag)
        )


def group_dimension(group_by: str) -> tuple[str, str | None]:
    """`"tag:feature"` → ("tag", "feature"); `"service"` → ("service", None)."""
    name, _, key = group_by.partition(":")
    if name not in DIMENSIONS:
        raise UnsupportedSlice(f"group_by {group_by!r}: use one of {', '.join(DIMENSIONS)}")
    if (name == "tag") != bool(key):
        raise UnsupportedSlice("group by a tag as tag:<key>; other dimensions take no ':'")
    return name, key or None
