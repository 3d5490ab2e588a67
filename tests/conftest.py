"""Shared fixtures: a running sandbox for every room's tests (import nothing else from here).

- ``sandbox_server`` (session): a ``sandbox.SandboxProcess`` with the default seed (1), 120 generated messages
  in adele's mailbox (60 in alex's, 30 in megan's, plus the curated cases in each) and no faults. It yields a
  ``sandbox.SandboxInfo``: ``graph_url``, ``authority``, ``tenant_id``, ``client_id``, ``client_secret``,
  ``ca_cert``, ``admin_url``, ``mailboxes``, ``pid``. Stopped by its PID at the end of the session.
- ``sandbox_admin`` (session): a ``sandbox.AdminClient`` for it.
- ``fresh_sandbox`` (function): resets that server first (mailboxes rebuilt from the seed, faults off, request
  log, counters, delta tokens and throttling memory cleared; access tokens stay valid) and yields its
  ``SandboxInfo``. Use it in any test that changes mail or faults, or reads counters.

A test that needs a different seed, size or profile, or must own the process, starts its own
``SandboxProcess`` (it is a context manager).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import AdminClient, SandboxInfo, SandboxProcess


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxInfo]:
    with SandboxProcess(seed=1, messages=120) as info:
        yield info


@pytest.fixture(scope="session")
def sandbox_admin(sandbox_server: SandboxInfo) -> Iterator[AdminClient]:
    with AdminClient.for_sandbox(sandbox_server) as admin:
        yield admin


@pytest.fixture
def fresh_sandbox(sandbox_server: SandboxInfo, sandbox_admin: AdminClient) -> SandboxInfo:
    sandbox_admin.reset(seed=1, messages=120, profile="none")
    return sandbox_server
