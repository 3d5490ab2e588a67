"""Customer ids never steer a path: every id maps to one file directly under the data directory."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.store import InvalidCustomerId, customer_slug, mail_store_path

HOSTILE = [
    "team@carbon.ai",
    "../../etc/passwd",
    "/abs/path",
    "..",
    ".",
    "a/b\\c",
    "CON",
    "x" * 5000,
    "ünïcødé 名前",
]


@pytest.mark.parametrize("customer", HOSTILE)
def test_hostile_ids_stay_inside_the_data_dir(tmp_path: Path, customer: str) -> None:
    path = mail_store_path(tmp_path, customer)
    assert path.parent == tmp_path / "mail"
    assert path.resolve().parent == (tmp_path / "mail").resolve()
    assert path.suffix == ".duckdb"
    assert len(path.name) <= 80
    assert not path.name.startswith(".")


def test_the_slug_is_readable() -> None:
    assert customer_slug("team@carbon.ai").startswith("team-carbon-ai-")
    assert customer_slug("Zoë Dupré").startswith("zoe-dupre-")
    assert customer_slug("../../etc").startswith("etc-")
    assert customer_slug("名前").startswith("customer-")


def test_ids_differing_only_in_case_or_punctuation_get_different_files(tmp_path: Path) -> None:
    ids = ["team@carbon.ai", "Team@carbon.ai", "team-carbon-ai", "team@carbon.ai ", "x" * 300, "x" * 301]
    assert len({mail_store_path(tmp_path, i) for i in ids}) == len(ids)


def test_the_mapping_is_stable(tmp_path: Path) -> None:
    assert mail_store_path(tmp_path, "acme") == mail_store_path(str(tmp_path), "acme")
    assert customer_slug("acme") == "acme-" + __import__("hashlib").sha256(b"acme").hexdigest()[:16]


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", None, 42])
def test_unusable_ids_are_refused_with_a_reason(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidCustomerId, match="customer id"):
        mail_store_path(tmp_path, bad)  # type: ignore[arg-type]


@given(st.text(min_size=1).filter(lambda s: s.strip() and "\x00" not in s))
def test_any_text_maps_to_a_plain_file_name(customer: str) -> None:
    name = customer_slug(customer)
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in name)
    assert Path(name).name == name
