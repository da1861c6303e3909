"""Constants and types the protocol tests share (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from postroom.protocols.endpoints import Endpoint

USER, PASSWORD = "alice", "s3cr3t-Pa55word"

MakeEndpoint = Callable[..., Endpoint]
