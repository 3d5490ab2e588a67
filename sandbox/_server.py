"""Serve a sandbox over HTTPS with uvicorn, announcing where it is before the first request.

The socket is bound (and listening) before anything is printed, so the announced port is real and
connections made right after the announcement wait in the backlog until uvicorn accepts them.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from sandbox._app import create_app
from sandbox._options import SandboxInfo, SandboxOptions
from sandbox._tls import ensure_tls

LOOPBACK_NAMES = {"localhost"}


def check_host(host: str) -> None:
    """Only loopback: the certificate names 127.0.0.1 and localhost, and the sandbox trusts every caller."""
    if host in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(
        f"--host {host!r} is not a loopback address; the sandbox serves only 127.0.0.1 or localhost"
    )


def serve(options: SandboxOptions, *, as_json: bool, out: TextIO = sys.stdout) -> None:
    """Build the sandbox, bind, announce (one JSON line, or text for a person), then serve until stopped."""
    import uvicorn

    check_host(options.host)
    # Stopping is SystemExit from here on (uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown), so
    # the finally clause below always removes a temporary state directory.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _exit)
    own_dir = options.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="mailroom-sandbox-")) if own_dir else Path(options.state_dir)
    try:
        tls = ensure_tls(state_dir)
        app = create_app(options, ca_cert=tls.ca_cert.resolve())
        family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((options.host, options.port))
        sock.listen(2048)
        port = sock.getsockname()[1]
        host = f"[{options.host}]" if ":" in options.host else options.host
        info = SandboxInfo.model_validate(app.sandbox.describe(f"https://{host}:{port}", os.getpid()))
        out.write((info.to_json_line() if as_json else _for_people(info)) + "\n")
        out.flush()
        config = uvicorn.Config(
            app,
            ssl_certfile=str(tls.server_cert),
            ssl_keyfile=str(tls.server_key),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if own_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


def _exit(number: int, frame: object) -> None:
    raise SystemExit(0)


def _for_people(info: SandboxInfo) -> str:
    return "\n".join(
        [
            f"Mailroom sandbox (pid {info.pid}, seed {info.seed}, profile {info.profile})",
            f"  Graph base URL   {info.graph_url}",
            f"  authority        {info.authority}",
            f"  tenant id        {info.tenant_id}",
            f"  client id        {info.client_id}",
            f"  client secret    {info.client_secret.get_secret_value()}",
            f"  CA certificate   {info.ca_cert}",
            f"  admin API        {info.admin_url}  (docs: {info.base_url}/_sandbox/docs)",
            f"  mailboxes        {', '.join(info.mailboxes)}",
            "Press Ctrl+C to stop.",
        ]
    )
