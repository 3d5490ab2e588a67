"""How a sandbox is configured (``SandboxOptions``) and what it announces once serving (``SandboxInfo``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

Profile = Literal["none", "flaky", "hostile"]


class SandboxOptions(BaseModel):
    """Everything ``python -m sandbox`` accepts; ``create_app`` takes the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    seed: int = 1
    messages: int = Field(120, ge=0, le=2_000_000, description="generated messages in the primary mailbox")
    profile: Profile = "none"
    imports: tuple[str, ...] = Field((), description="mbox files or .eml folders, as PATH or UPN=PATH")
    state_dir: Path | None = None
    token_lifetime: int = Field(3599, ge=1, description="seconds an access token lives")
    device_code_interval: int = Field(1, ge=0, le=60, description="the polling interval device codes ask for")


class SandboxInfo(BaseModel):
    """What a running sandbox announces: everything a client needs to reach it.

    With ``--json`` this is the first line of stdout. ``client_secret`` is a ``SecretStr`` here so that it
    does not leak into logs and reprs; ``to_json_line`` writes it in the clear because that is its job.
    """

    model_config = ConfigDict(frozen=True)

    graph_url: str
    authority: str
    tenant_id: str
    client_id: str
    client_secret: SecretStr
    ca_cert: Path
    admin_url: str
    base_url: str
    token_url: str
    mailboxes: list[str]
    unlicensed: list[str] = []
    pid: int
    seed: int
    profile: Profile
    messages: int

    def to_json_line(self) -> str:
        data = self.model_dump(mode="json")
        data["client_secret"] = self.client_secret.get_secret_value()
        return orjson.dumps(data).decode()

    @classmethod
    def from_json_line(cls, line: str) -> SandboxInfo:
        return cls.model_validate_json(line)
