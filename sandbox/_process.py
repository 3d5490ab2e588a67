"""Run a sandbox as a subprocess: ``SandboxProcess`` spawns ``python -m sandbox --port 0 --json``.

    with SandboxProcess(seed=1, messages=500) as info:      # info: SandboxInfo
        admin = AdminClient.for_sandbox(info)
        ...

On entry it waits for the JSON line (``SandboxStartError`` with the log's tail if the process exits or
stays silent); on exit it stops the process by its PID (SIGTERM, then SIGKILL after a grace period) and
waits for it. The server's stderr goes to ``sandbox.log`` in the state directory; a state directory made
here is removed on exit.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from sandbox._errors import SandboxStartError
from sandbox._options import Profile, SandboxInfo


class SandboxProcess:
    """A sandbox server in a child process, as a context manager yielding its ``SandboxInfo``."""

    def __init__(
        self,
        *,
        seed: int = 1,
        messages: int = 120,
        profile: Profile = "none",
        imports: tuple[str | Path, ...] = (),
        state_dir: Path | None = None,
        token_lifetime: int | None = None,
        startup_timeout: float = 60.0,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = [
            python,
            "-m",
            "sandbox",
            "--port",
            "0",
            "--json",
            "--seed",
            str(seed),
            "--messages",
            str(messages),
            "--profile",
            profile,
        ]
        for item in imports:
            self.args += ["--import", str(item)]
        if token_lifetime is not None:
            self.args += ["--token-lifetime", str(token_lifetime)]
        self._given_state_dir = state_dir
        self.state_dir: Path | None = None
        self.startup_timeout = startup_timeout
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._info: SandboxInfo | None = None
        self._log: IO[bytes] | None = None

    @property
    def info(self) -> SandboxInfo:
        if self._info is None:
            raise SandboxStartError(
                "the sandbox has not been started (use it as a context manager or call start())"
            )
        return self._info

    @property
    def pid(self) -> int:
        if self.process is None:
            raise SandboxStartError("the sandbox has not been started")
        return self.process.pid

    @property
    def log_path(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "sandbox.log"

    def start(self) -> SandboxInfo:
        if self.process is not None:
            return self.info
        self.state_dir = self._given_state_dir or Path(tempfile.mkdtemp(prefix="mailroom-sandbox-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module, fixed arguments)
            [*self.args, "--state-dir", str(self.state_dir)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        try:
            line = self._first_line()
            self._info = SandboxInfo.from_json_line(line)
        except Exception:
            self.stop()
            raise
        return self._info

    def _first_line(self) -> str:
        assert self.process is not None
        assert self.process.stdout is not None
        stdout = self.process.stdout
        deadline = time.monotonic() + self.startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SandboxStartError(
                        f"the sandbox printed nothing within {self.startup_timeout:.0f} s; "
                        f"log: {self._log_tail()}"
                    )
                if not selector.select(min(remaining, 0.5)):
                    if self.process.poll() is not None:
                        raise SandboxStartError(
                            f"the sandbox exited with status {self.process.returncode}; "
                            f"log: {self._log_tail()}"
                        )
                    continue
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    self.process.wait(timeout=5)
                    raise SandboxStartError(
                        f"the sandbox exited with status {self.process.returncode}; log: {self._log_tail()}"
                    )
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip() or "(empty)"
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child by its PID and wait for it; then clean up what ``start`` made."""
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
        if self._given_state_dir is None and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def __enter__(self) -> SandboxInfo:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
