"""Serve the API with uvicorn, announcing where it listens; `run` and `main`, the `mailroom api` command
(`python -m pipelines.api` without the rest of the CLI); and `ApiProcess`, the same in a child process.

The socket is bound before the announcement, so the printed port is real (port 0 picks a free one) and
requests made right after it wait in the backlog until uvicorn accepts them.
"""

import errno
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TextIO

from pipelines.api._settings import ApiSettings

# Outbound requests (webhooks, Graph) are logged by httpx at INFO with their full URL, and a webhook URL's
# query string may carry the receiver's token: only their warnings reach the API's log.
_QUIET = ("httpx", "httpcore")


def bind(settings: ApiSettings) -> tuple[socket.socket, ApiSettings]:
    """A listening socket for the settings' host and port, and the settings with the real port."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as error:
        sock.close()
        raise OSError(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}"
            + (
                " (another `mailroom api` or `make dev`? --port picks another)"
                if error.errno == errno.EADDRINUSE
                else ""
            ),
        ) from None
    sock.listen(2048)
    return sock, settings.model_copy(update={"port": sock.getsockname()[1]})


def serve(settings: ApiSettings, *, announce_json: bool = False, out: TextIO = sys.stdout) -> None:
    """Bind, build the app, announce (`{"url", "pid"}` as JSON, or a line for people), serve until stopped."""
    import uvicorn

    from pipelines.api._app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    sock, settings = bind(settings)
    app = create_app(settings)
    announcement = {"url": settings.base_url, "pid": os.getpid(), "docs": f"{settings.base_url}/docs"}
    out.write(
        json.dumps(announcement) if announce_json else f"Mailroom API on {settings.base_url} (docs: /docs)"
    )
    out.write("\n")
    out.flush()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # our AccessLog drops query strings: the OAuth callback's carries a code
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def run(
    *,
    host: str | None = None,
    port: int | None = None,
    public_url: str | None = None,
    public: bool = False,
    announce_json: bool = False,
) -> int:
    """`mailroom api`: settings from the environment with these overrides, then serve; returns the exit
    status, having said on stderr what was wrong (2) when the settings or the bind fail."""
    from pydantic import ValidationError

    from pipelines.settings import SettingsError

    overrides = {"host": host, "port": port, "public_url": public_url, "public": public or None}
    try:
        settings = ApiSettings(**{k: v for k, v in overrides.items() if v is not None})
        serve(settings, announce_json=announce_json)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        return _fail(problems)
    except (RuntimeError, OSError, SettingsError) as error:
        return _fail(str(error))
    return 0


def _fail(message: str) -> int:
    sys.stderr.write(f"mailroom: {message}\n")
    return 2


class ApiProcess:
    """The API in a child process (`mailroom api --port 0 --json`), as a context manager yielding its URL.

    On exit the child is stopped by its PID (SIGTERM, then SIGKILL after a grace period). Its log goes to
    `log_path`. `env` replaces the environment (set MAILROOM_* there).
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        log_path: Path,
        python: str = sys.executable,
        startup_timeout: float = 60.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.args = [
            python,
            "-m",
            "pipelines.api",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--json",
            *extra_args,
        ]
        self.env = env
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> str:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.process = subprocess.Popen(  # noqa: S603 (our interpreter and module, fixed arguments)
            self.args, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, env=self.env
        )
        try:
            self.info = json.loads(self._first_line())
        except Exception:
            self.stop()
            raise
        return self.url

    def _first_line(self) -> str:
        assert self.process is not None
        assert self.process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the API printed nothing in {self.startup_timeout:.0f} s: {self.log_tail()}"
                    )
                if not selector.select(0.2):
                    if self.process.poll() is not None:
                        raise RuntimeError(
                            f"the API exited with {self.process.returncode}: {self.log_tail()}"
                        )
                    continue
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    self.process.wait(timeout=5)
                    raise RuntimeError(f"the API exited with {self.process.returncode}: {self.log_tail()}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode()

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is not None:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=timeout)
            if process.stdout is not None:
                process.stdout.close()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ApiProcess":
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
