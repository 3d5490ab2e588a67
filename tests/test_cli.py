"""The `mailroom` console command is installed and answers."""

import subprocess
import sys
from pathlib import Path

MAILROOM = Path(sys.executable).parent / "mailroom"


def test_mailroom_help_lists_itself() -> None:
    out = subprocess.run([MAILROOM, "--help"], capture_output=True, text=True, check=True).stdout
    assert "Usage: mailroom" in out


def test_mailroom_version_names_the_pins() -> None:
    out = subprocess.run([MAILROOM, "version"], capture_output=True, text=True, check=True).stdout
    assert "duckdb 1.5.5" in out
    assert "dagster 1.13.27" in out
