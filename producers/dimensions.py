"""Event dimensions beyond `service`: an optional `environment` and a few free-form tags.

One definition of the limits for the SDK (which counts and drops an over-limit event), the
contract (which refuses it) and the worker's fast check, so all three agree.
"""

from __future__ import annotations

import re
from typing import Any

MAX_TAGS = 10
MAX_TAG_KEY = 40
MAX_TAG_VALUE = 100
MAX_ENVIRONMENT = 64
TAG_KEY = re.compile(r"[a-z0-9_.-]{1,40}")


def environment_problem(value: Any) -> str | None:
    """Why `value` is not an environment name, or None."""
    if type(value) is not str or not 0 < len(value) <= MAX_ENVIRONMENT:
        return f"environment {value!r:.60} is not a 1..{MAX_ENVIRONMENT} char string"
    return None


def tags_problem(tags: Any) -> str | None:
    """Why `tags` breaks the limits (documented in docs/contract.md), or None."""
    if type(tags) is not dict:
        return f"tags must be a dict of str to str, not {type(tags).__name__}"
    if len(tags) > MAX_TAGS:
        return f"{len(tags)} tags; at most {MAX_TAGS} are allowed"
    for key, value in tags.items():
        if type(key) is not str or TAG_KEY.fullmatch(key) is None:
            return f"tag key {key!r:.60} must be 1..{MAX_TAG_KEY} chars of [a-z0-9_.-]"
        if type(value) is not str or not 0 < len(value) <= MAX_TAG_VALUE:
            return f"tag {key}={value!r:.60}: the value must be a 1..{MAX_TAG_VALUE} char string"
    return None
