"""The README's curl block, run as written by bash against a server of its own (only the port differs):
each command prints what the README says it prints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from pipelines.api import ApiProcess
from pipelines.store import ControlStore
from tests.api.conftest import server_env
from tests.api.mail import email, fill

README = Path(__file__).parents[2] / "README.md"
MARKER = "<!-- curl-example: tests/api/test_readme_curl.py runs this block as written"


def readme_block() -> str:
    text = README.read_text()
    assert MARKER in text, "the README lost its curl example"
    found = re.search(r"```bash\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert found is not None
    return found.group(1)


def test_the_readme_curl_block_prints_what_the_readme_says(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    control = ControlStore(tmp_path / "control.sqlite3", secret_key=key)
    (adele,) = control.update_customers(["adele"])  # as `make dev` leaves her: a mailbox, mail synced
    connection = control.save_connection(adele.id, "adele@contoso.test", auth_kind="app")
    fill(tmp_path, "adele", [email(n, data_source_id=connection.id) for n in range(1, 4)])
    env = server_env(tmp_path, key, None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    with ApiProcess(env, log_path=tmp_path / "api.log") as api:
        script = readme_block().replace("http://127.0.0.1:8000", api.url)
        done = subprocess.run(
            ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    assert done.returncode == 0, done.stderr
    updated, synced, listed, refused = done.stdout.splitlines()
    assert updated == synced == '{"success":true}'
    page = json.loads(listed)
    assert page["count"] == 3
    (first,) = page["results"]
    assert (first["id"], first["source"], first["name"]) == (1, "OUTLOOK", "Quarterly report 1")
    assert refused == (
        '{"detail":[{"loc":["body","auto_sync_interval"],"msg":"Input should be -1, 3, 6, 12 or 24",'
        '"type":"literal_error"}]}'
    )
    assert refused in README.read_text()
    (kept,) = [c for c in control.list_customers()[0] if c.customer_id == "adele"]
    assert kept.interval_minutes == 6 * 60
    (request,) = [r for r in control.requests(customer_id="adele") if r.kind == "sync"]
    assert request.payload["filter_text"] == "after:2024/01/07"
