"""Operators' own prices: a JSON or TOML file that overrides or adds models from a given time.

    {"version": "acme-2026-12",
     "models": {
       "claude-opus-4-5": {"prices": [{"effective": "2026-12-01T00:00:00Z",
                                       "input": "4.50", "output": "22.50"}]},
       "acme-mini-*": {"tier": "haiku",
                       "prices": [{"effective": "2026-01-01", "input": "0.10", "output": "0.40"}]}}}

A model key is an exact model id or a glob (`*`, `?`, `[...]`), case-insensitive; an exact
key wins over globs, then globs in file order. Each price holds from its `effective` time
(ISO 8601; a bare date or a time without offset is UTC) until the model's next one; before
its first one the model keeps the maintained source's price. Prices are USD per 1M
tokens; cache prices left out follow Anthropic's multipliers of the input price (5-minute
write 1.25x, 1-hour write 2x, read 0.1x). `long_context` prices every token of a call whose
input (input plus cache writes and reads) passes `above_input_tokens`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from producers.price_rates import PricingError, Rates

SOURCE = "overlay"
CACHE_WRITE_MULTIPLIER = Decimal("1.25")
CACHE_WRITE_1H_MULTIPLIER = Decimal(2)
CACHE_READ_MULTIPLIER = Decimal("0.1")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class _Prices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Price
    output: Price
    cache_write: Price | None = None
    cache_write_1h: Price | None = None
    cache_read: Price | None = None

    def per_kind(self) -> dict[str, Decimal]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_write": _or(self.cache_write, self.input * CACHE_WRITE_MULTIPLIER),
            "cache_write_1h": _or(self.cache_write_1h, self.input * CACHE_WRITE_1H_MULTIPLIER),
            "cache_read": _or(self.cache_read, self.input * CACHE_READ_MULTIPLIER),
        }


class _LongContext(_Prices):
    above_input_tokens: Annotated[int, Field(ge=0, strict=True)]


class _Entry(_Prices):
    effective: datetime
    long_context: _LongContext | None = None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    prices: Annotated[list[_Entry], Field(min_length=1)]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    models: dict[Annotated[str, Field(min_length=1, max_length=200)], _Model]


@dataclass(frozen=True)
class OverlayModel:
    """One overlaid model: its dashboard tier (if set) and its prices by effective time."""

    tier: str | None
    periods: tuple[tuple[int, Rates], ...]  # (effective ms, rates), ascending


class PriceOverlay:
    """The parsed overlay: look a model id up; immutable."""

    def __init__(self, models: Mapping[str, OverlayModel], version: str) -> None:
        self.version = version
        self._exact = {key.lower(): m for key, m in models.items() if not _is_glob(key)}
        self._globs = [(key.lower(), m) for key, m in models.items() if _is_glob(key)]

    def lookup(self, model: str) -> OverlayModel | None:
        lowered = model.lower()
        found = self._exact.get(lowered)
        if found is not None:
            return found
        return next((m for glob, m in self._globs if fnmatch.fnmatchcase(lowered, glob)), None)


def load_overlay(path: str | Path) -> PriceOverlay:
    """Read and check an overlay file (`.toml`, otherwise JSON)."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PricingError(f"price overlay {file}: cannot read it ({exc.strerror})") from None
    try:
        if file.suffix.lower() == ".toml":
            obj: Any = tomllib.loads(raw.decode(), parse_float=Decimal)
        else:
            obj = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PricingError(f"price overlay {file}: not valid {_kind(file)} ({exc})") from None
    return overlay_from_object(obj, f"sha256:{hashlib.sha256(raw).hexdigest()[:12]}", str(file))


def overlay_from_object(obj: object, default_version: str, where: str = "overlay") -> PriceOverlay:
    """Check a decoded overlay; `default_version` names it when it has no `version`."""
    try:
        parsed = _File.model_validate(obj)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()[:3]
        ]
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise PricingError(f"price overlay {where}: {'; '.join(problems)}{more}") from None
    version = parsed.version or default_version
    models: dict[str, OverlayModel] = {}
    for key, model in parsed.models.items():
        if key.lower() in {k.lower() for k in models}:
            raise PricingError(f"price overlay {where}: model {key!r} appears twice")
        periods: dict[int, Rates] = {}
        for entry in model.prices:
            effective = entry.effective
            if effective.tzinfo is None:
                effective = effective.replace(tzinfo=UTC)
            at_ms = (effective - _EPOCH) // timedelta(milliseconds=1)  # exact, no float
            if at_ms in periods:
                raise PricingError(
                    f"price overlay {where}: model {key!r} has two prices effective "
                    f"{effective.isoformat()}"
                )
            bands = [(-1, entry.per_kind())]
            if entry.long_context is not None:
                bands.append((entry.long_context.above_input_tokens, entry.long_context.per_kind()))
            label = f"{version}@{effective.astimezone(UTC).isoformat().replace('+00:00', 'Z')}"
            try:
                periods[at_ms] = Rates(bands, SOURCE, label)
            except PricingError as exc:
                raise PricingError(f"price overlay {where}: model {key!r}: {exc}") from None
        models[key] = OverlayModel(model.tier, tuple(sorted(periods.items())))
    return PriceOverlay(models, version)


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def _is_glob(key: str) -> bool:
    return any(ch in key for ch in "*?[")


def _kind(file: Path) -> str:
    return "TOML" if file.suffix.lower() == ".toml" else "JSON"
