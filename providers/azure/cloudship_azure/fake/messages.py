"""The fake ARM's HTTP request and response, in a leaf module.

Every part of the fake (the ARM router, the Container Apps book, the resources) speaks these
types; keeping them here, importing nothing of the fake but its error type, means no module
of the fake needs another only for its types, so there is no import circle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cloudship_azure.fake.resources import ArmError


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ArmError(400, "InvalidRequestContent", f"the body is not JSON: {exc}") from exc


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
