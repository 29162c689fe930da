"""The API server's audit log of writes, read back: what each client wrote, counted by its user agent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .plane import AUDIT_LOG, Plane


@dataclass(frozen=True)
class Write:
    user_agent: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int


def writes(plane: Plane, user_agent_prefix: str = "") -> list[Write]:
    """Completed write requests (ResponseComplete) so far, oldest first."""
    found = []
    path = Path(plane.run_dir) / AUDIT_LOG
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or not event.get("userAgent", "").startswith(user_agent_prefix):
            continue
        target = event.get("objectRef", {})
        found.append(
            Write(
                user_agent=event["userAgent"],
                verb=event["verb"],
                resource=target.get("resource", ""),
                subresource=target.get("subresource", ""),
                namespace=target.get("namespace", ""),
                name=target.get("name", ""),
                code=event.get("responseStatus", {}).get("code", 0),
            )
        )
    return found
