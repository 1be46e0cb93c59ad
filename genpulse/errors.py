"""What the `genpulse` command prints instead of a traceback: one line, what is wrong and
what to do. Only errors a user can fix by themselves are listed; anything else is a bug and
keeps its traceback."""

from __future__ import annotations

from pydantic import ValidationError

from genpulse.devservices.kafka import KafkaStartError
from genpulse.devservices.redis import RedisStartError
from genpulse.devstack import DevStackError
from streams.topics import KafkaUnreachable, TopologyError


class CommandError(RuntimeError):
    """A check of the command itself failed (e.g. a port is taken); the message says why."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    CommandError,
    ValidationError,
    KafkaStartError,
    RedisStartError,
    DevStackError,
    KafkaUnreachable,
    TopologyError,
)


def one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return _bad_setting(exc)
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    first = lines[0].rstrip(":")
    if isinstance(exc, KafkaStartError | RedisStartError) and len(lines) > 1:
        first += "; the server's log is under the state dir (GENPULSE_STATE_DIR, .genpulse/)"
    return first


def _bad_setting(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["loc"]:
        name = "GENPULSE_" + str(err["loc"][0]).upper()
        return f"bad setting {name}: {message}{more}; fix it in the environment"
    return f"bad settings: {message}{more}; fix them in the environment"
