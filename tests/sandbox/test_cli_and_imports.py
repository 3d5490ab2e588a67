"""The command line and the process launcher; real mail imported from an mbox file and an .eml folder."""

import mailbox
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import psutil
import pytest

from sandbox import AdminClient, SandboxProcess, SandboxStartError
from tests.sandbox.conftest import collect, graph_client

MAILROOM = Path(sys.executable).parent / "mailroom"


def make_message(
    subject: str, *, html: bool = False, attach: bytes | None = None, forward: EmailMessage | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Zoë Müller <zoe@beispiel.example>"
    message["To"] = "Team <team@contoso.test>"
    message["Subject"] = subject
    message["Date"] = "Tue, 02 Apr 2024 09:15:00 +0000"
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@beispiel.example>"
    if html:
        message.set_content("<p>Hallo <b>Welt</b></p>", subtype="html")
    else:
        message.set_content("Grüße aus München.\n")
    if attach is not None:
        message.add_attachment(attach, maintype="application", subtype="pdf", filename="report.pdf")
    if forward is not None:
        message.add_attachment(forward)
    return message


@pytest.mark.slow
def test_imported_mail_is_served_as_is(tmp_path: Path) -> None:
    box_path = tmp_path / "mail.mbox"
    box = mailbox.mbox(str(box_path))
    box.add(make_message("Plain one"))
    box.add(make_message("With a file", attach=b"%PDF-1.4 tiny"))
    box.add(make_message("Forwarded", forward=make_message("Inner")))
    box.close()
    folder = tmp_path / "eml"
    (folder / "Projects" / "Alpha").mkdir(parents=True)
    (folder / "top.eml").write_bytes(make_message("At the top", html=True).as_bytes())
    nested_bytes = make_message("Deep down").as_bytes()
    (folder / "Projects" / "Alpha" / "deep.eml").write_bytes(nested_bytes)

    with SandboxProcess(messages=0, imports=(box_path, f"bob@contoso.test={folder}")) as info:
        assert {"import4@contoso.test", "bob@contoso.test"} <= set(info.mailboxes)
        admin = AdminClient.for_sandbox(info)
        with graph_client(info, admin.mint_token()) as graph:
            imported = collect(
                graph,
                "/users/import4@contoso.test/mailFolders/inbox/messages",
                **{"$select": "subject,hasAttachments,from"},
            )
            assert sorted(m["subject"] for m in imported) == ["Forwarded", "Plain one", "With a file"]
            assert imported[0]["from"]["emailAddress"]["name"] == "Zoë Müller"
            with_file = next(m for m in imported if m["subject"] == "With a file")
            attachment = graph.get(
                f"/users/import4@contoso.test/messages/{with_file['id']}/attachments"
            ).json()
            assert attachment["value"][0]["name"] == "report.pdf"
            forwarded = next(m for m in imported if m["subject"] == "Forwarded")
            item = graph.get(f"/users/import4@contoso.test/messages/{forwarded['id']}/attachments").json()
            assert item["value"][0]["@odata.type"] == "#microsoft.graph.itemAttachment"

            truth = admin.ground_truth("bob@contoso.test")
            deep = next(m for m in truth["messages"] if m["subject"] == "Deep down")
            assert deep["folderPath"] == ["Inbox", "Projects", "Alpha"]
            assert deep["receivedDateTime"] == "2024-04-02T09:15:00Z"
            raw = graph.get(f"/users/bob@contoso.test/messages/{deep['id']}/$value")
            assert raw.content == nested_bytes


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_refuses_bad_options_clearly(tmp_path: Path) -> None:
    wide = run_cli("--host", "0.0.0.0")  # noqa: S104 (checking that it is refused)
    assert wide.returncode == 2
    assert "not a loopback address" in wide.stderr
    negative = run_cli("--messages", "-5")
    assert negative.returncode == 2
    assert "--messages" in negative.stderr
    missing = run_cli("--import", str(tmp_path / "nothing.mbox"))
    assert missing.returncode == 2
    assert "nothing.mbox: no such file or directory" in missing.stderr
    assert "Traceback" not in missing.stderr + wide.stderr + negative.stderr
    junk = tmp_path / "junk.mbox"
    junk.write_bytes(b"\x00\x01 not mail at all")
    assert "cannot import mail" in run_cli("--import", str(junk)).stderr


def test_process_failure_is_reported_with_the_log(tmp_path: Path) -> None:
    with pytest.raises(SandboxStartError, match=r"exited with status 2.*no such file"):
        SandboxProcess(imports=(tmp_path / "missing.mbox",)).start()


def test_process_stops_by_pid_and_cleans_up() -> None:
    process = SandboxProcess(messages=10)
    info = process.start()
    state_dir = process.state_dir
    assert state_dir is not None
    assert info.ca_cert.is_file()
    assert psutil.pid_exists(info.pid)
    process.stop()
    assert not psutil.pid_exists(info.pid) or psutil.Process(info.pid).status() == psutil.STATUS_ZOMBIE
    assert not state_dir.exists()


def test_mailroom_sandbox_prints_for_people() -> None:
    process = subprocess.Popen([MAILROOM, "sandbox", "--messages", "5"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(10)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = "".join(lines)
    assert "Graph base URL   https://127.0.0.1:" in text
    assert "adele@contoso.test" in text
    assert process.returncode == 0
