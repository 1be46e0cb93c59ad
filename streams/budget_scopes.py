"""The budget scopes one model call counts under (docs/api.md lists them).

`model:` names both the tier (the original meaning, `model:sonnet`) and the model id
(`model:claude-sonnet-4-5`); a model id equal to its tier counts once.
"""

from __future__ import annotations

from typing import Any

SCOPE_KINDS = ("global", "user", "service", "tier", "model", "tag", "environment")


def budget_scopes(event: dict[str, Any], data: dict[str, Any]) -> list[str]:
    scopes = ["global", f"service:{event['service']}"]
    user = event.get("user_id")
    if user is not None:
        scopes.append(f"user:{user}")
    tier = data.get("tier")
    if tier:
        scopes += (f"tier:{tier}", f"model:{tier}")
    model = data.get("model")
    if model and model != tier:
        scopes.append(f"model:{model}")
    environment = event.get("environment")
    if environment is not None:
        scopes.append(f"environment:{environment}")
    tags = event.get("tags")
    if tags:
        scopes += (f"tag:{key}={value}" for key, value in tags.items())
    return scopes
