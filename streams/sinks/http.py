"""POST a JSON body and turn every way it can go wrong into a `DeliveryError`.

Retryable: connection errors, timeouts, 408, 429 and 5xx. Not retryable: other 4xx (the
body or the key is wrong; sending it again cannot help). Headers may carry secrets, so
errors name the URL path and the status only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from streams.sinks.delivery import DeliveryError

RETRYABLE_STATUS = frozenset({408, 425, 429})


def where(url: str) -> str:
    """The URL without its query string (which may hold an API secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    label: str = "",
) -> int:
    """POST `body` as JSON; returns the status of a 2xx answer, else raises DeliveryError.

    `label` names the target in errors instead of the URL (a webhook URL is a secret)."""
    label = label or where(url)
    data = orjson.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        async with session.post(url, data=data, headers=all_headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"{label}: {type(exc).__name__}: {_redact(str(exc), url)}") from None
    if 200 <= status < 300:
        return status
    retryable = status >= 500 or status in RETRYABLE_STATUS
    raise DeliveryError(f"{label} answered {status}", retryable=retryable)


def _redact(text: str, url: str) -> str:
    """Error text without the URL's path or query (where webhook tokens and API secrets live)."""
    parts = urlsplit(url)
    for secret in (url, parts.query, parts.path):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return text


def new_session(timeout_s: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
