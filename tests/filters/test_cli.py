"""`mailroom filter explain` through the installed console script."""

import json
import subprocess
import sys
from pathlib import Path

MAILROOM = Path(sys.executable).parent / "mailroom"


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILROOM, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_explain_prints_text_carbon_and_both_plans() -> None:
    done = _run("filter", "explain", 'AFTER:2024-01-07 (category:Personal OR category:"Team A") is:unread')
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert 'text:   after:2024/01/07 AND (category:Personal OR category:"Team A") AND is:unread' in out
    assert '"NOT"' not in out
    assert '{"key": "is", "value": "unread"}' in out
    assert "list plan for:" in out
    assert "Graph $filter: receivedDateTime ge 2024-01-07T00:00:00Z and isRead eq false" in out
    assert "delta plan for:" in out
    assert "at most 5,000 messages per filtered delta round" in out


def test_explain_reads_carbon_json_from_stdin_and_answers_in_json() -> None:
    carbon = {"AND": [{"key": "after", "value": "2024/01/07"}, {"NOT": {"key": "is", "value": "read"}}]}
    done = _run("filter", "explain", "--json", "-", stdin=json.dumps(carbon))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["text"] == "after:2024/01/07 AND NOT is:read"
    assert out["carbon"] == carbon
    assert out["select"] == ["receivedDateTime", "isRead"]
    assert out["list"] == {
        "filter": "receivedDateTime ge 2024-01-07T00:00:00Z and isRead eq false",
        "residual": None,
        "selective": True,
        "round_cap": None,
    }
    assert out["delta"]["filter"] == "receivedDateTime ge 2024-01-07T00:00:00Z"
    assert out["delta"]["residual"] == "NOT is:read"
    assert out["delta"]["round_cap"] == 5000


def test_explain_reports_bad_filters_without_a_traceback() -> None:
    done = _run("filter", "explain", "after:2024/02/30 is:read")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "mailroom filter explain: after: 2024/02/30 is not a real date" in done.stderr
    assert "  after:2024/02/30 is:read\n        ^" in done.stderr
    assert "Traceback" not in done.stderr
