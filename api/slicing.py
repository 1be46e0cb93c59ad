"""Query parameters that slice a metric route: filters and one group-by dimension.

`service=`, `environment=`, `model=`, `tier=`, `user=`, `tag=key:value` and
`group_by=service|environment|model|tier|user|tag:<key>` are parsed once, here, into
streams.slicing's `Where` (the vocabulary the reader answers), so every route agrees on
names and limits. A value the event contract could never carry is refused up front with
422 `invalid_filter`; a combination the worker's rows cannot answer comes back from the
reader as UnsupportedSlice, which api/errors.py turns into 422 `unsupported_filter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query

from api.errors import ApiError
from producers.dimensions import MAX_TAG_VALUE, TAG_KEY, environment_problem
from streams.slicing import UnsupportedSlice, Where, group_dimension

MAX_NAME = 128
"""The contract's longest service, user id or model name."""


@dataclass(frozen=True)
class Slice:
    """Filters and group-by of one request; hashable, so the snapshot cache keys on it."""

    where: Where = field(default_factory=Where)
    group_by: str | None = None

    def is_empty(self) -> bool:
        return self.where.is_empty() and self.group_by is None

    def reader_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a MetricsReader view; none for an unsliced read."""
        out: dict[str, Any] = {}
        if not self.where.is_empty():
            out["where"] = self.where
        if self.group_by is not None:
            out["group_by"] = self.group_by
        return out


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_filter", message)


def _name(param: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not 0 < len(value) <= MAX_NAME or not value.isprintable():
        raise _invalid(f"{param}={value!r:.60}: give 1..{MAX_NAME} printable characters")
    return value


def _tag(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    key, colon, tag_value = value.partition(":")
    if not colon:
        raise _invalid(f"tag={value!r:.60}: give it as key:value, e.g. tag=feature:uvp")
    if TAG_KEY.fullmatch(key) is None:
        raise _invalid(f"tag key {key!r:.60}: 1..40 characters of a-z, 0-9, '_', '.', '-'")
    if not 0 < len(tag_value) <= MAX_TAG_VALUE or not tag_value.isprintable():
        raise _invalid(f"tag {key}: the value must be 1..{MAX_TAG_VALUE} printable characters")
    return key, tag_value


def _group_by(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        _, key = group_dimension(value)
    except UnsupportedSlice as exc:
        raise _invalid(str(exc)) from None
    if key is not None and TAG_KEY.fullmatch(key) is None:
        raise _invalid(f"group_by tag key {key!r:.60}: 1..40 characters of a-z, 0-9, '_', '.', '-'")
    return value


def _environment(value: str | None) -> str | None:
    problem = None if value is None else environment_problem(value)
    if problem is not None:
        raise _invalid(problem)
    return value


def where_params(
    service: Annotated[str | None, Query(description="Only events of this service.")] = None,
    environment: Annotated[
        str | None, Query(description="Only events of this environment.", examples=["prod"])
    ] = None,
    model: Annotated[str | None, Query(description="Only model calls of this model id.")] = None,
    tier: Annotated[
        str | None, Query(description="Only model calls of this tier.", examples=["opus"])
    ] = None,
    user: Annotated[str | None, Query(description="Only events of this user id.")] = None,
    tag: Annotated[
        str | None, Query(description="Only events carrying this tag, as key:value.")
    ] = None,
) -> Where:
    return Where(
        service=_name("service", service),
        environment=_environment(environment),
        model=_name("model", model),
        tier=_name("tier", tier),
        user=_name("user", user),
        tag=_tag(tag),
    )


def slice_params(
    where: Annotated[Where, Depends(where_params)],
    group_by: Annotated[
        str | None,
        Query(
            description="Answer per value of one dimension: service, environment, model, tier, "
            "user or tag:<key> (the grouped shape of docs/api.md).",
            examples=["service"],
        ),
    ] = None,
) -> Slice:
    return Slice(where, _group_by(group_by))
