"""The official `carbon-python-sdk` in a virtual environment of its own (it pins `cryptography<43`, which
Mailroom's dependencies cannot share), built once from `carbon-sdk-requirements.txt` (pinned, with hashes)
under a cache directory and reused while that file is unchanged. Only the package registry is reached."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("carbon-sdk-requirements.txt")
ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    base = os.environ.get("MAILROOM_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mailroom-tests"


def sdk_python() -> Path:
    """The interpreter of a venv holding carbon-python-sdk 0.2.56, building it first if needed."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = cache_dir() / f"carbon-sdk-{digest}"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:  # xdist workers build it once between them
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        uv = ROOT / ".tools" / "bin" / "uv"
        if uv.exists():
            commands = [
                [str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)],
                [
                    str(uv),
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(python),
                    "--require-hashes",
                    "-r",
                    str(REQUIREMENTS),
                ],
            ]
        else:
            commands = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(REQUIREMENTS)],
            ]
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                raise RuntimeError(
                    f"building the Carbon SDK's venv failed: {' '.join(command)}\n{done.stderr}"
                )
        (venv / ".complete").touch()
    return python
