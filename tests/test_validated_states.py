"""Records of state texts that passed the schema walk (``features.validated_states``).

A recorded text skips the walk (and the import of jsonschema); anything else is walked:
another text, a changed schema, an untrusted or missing records folder. Failing texts
are never recorded, and every other check of a load still runs on a recorded text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnctl.errors import StateError
from churnctl.features import state_format
from churnctl.features.state import state_from_text
from churnctl.features.state_format import content_checksum
from churnctl.features.validated_states import CACHE_ENV, FOLDER, records_folder
from churnctl.samples.bundled import STATE, bundled

TEXT = Path(bundled(STATE)).read_text(encoding="utf-8")


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The sources whose structure was walked; records in a fresh folder of the test's."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    walked: list[str] = []
    walk = state_format._validate_structure

    def counted(document: dict, source: str) -> None:
        walked.append(source)
        walk(document, source)

    monkeypatch.setattr(state_format, "_validate_structure", counted)
    return walked


def records() -> list[Path]:
    folder = records_folder()
    return sorted(folder.iterdir()) if folder is not None and folder.exists() else []


def resealed(document: dict) -> str:
    """The document as a state text, its checksum made right again."""
    body = {key: value for key, value in document.items() if key != "checksum"}
    return json.dumps({**body, "checksum": "sha256:" + content_checksum(body)}, indent=2)


def test_a_text_is_walked_once_then_recorded(walks: list[str]) -> None:
    first = state_from_text(TEXT, source="first")
    assert walks == ["first"] and len(records()) == 1
    again = state_from_text(TEXT, source="again")
    assert walks == ["first"]  # the record spared the walk
    assert again.fingerprint == first.fingerprint
    assert again.to_dict() == first.to_dict()


def test_another_text_of_the_same_state_is_walked(walks: list[str]) -> None:
    state_from_text(TEXT, source="a")
    state_from_text(TEXT + "\n", source="b")  # one more byte: another text
    state_from_text(resealed(json.loads(TEXT)), source="c")
    assert walks == ["a", "b", "c"] and len(records()) == 3


def test_a_text_that_fails_the_walk_is_refused_every_time_and_never_recorded(
    walks: list[str],
) -> None:
    document = json.loads(TEXT)
    document["output"]["unexpected"] = 1  # the checksum holds: only the schema can tell
    text = resealed(document)
    for _ in range(2):
        with pytest.raises(StateError, match="invalid state at output"):
            state_from_text(text, source="bad")
    assert walks == ["bad", "bad"] and records() == []


def test_a_recorded_text_still_has_every_other_check(
    walks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state_from_text(TEXT, source="good")
    checked: list[str] = []
    for name in ("_parse_json", "_check_version", "_verify_checksum"):
        check = getattr(state_format, name)

        def spy(*args: object, _check=check, _name=name) -> object:
            checked.append(_name)
            return _check(*args)

        monkeypatch.setattr(state_format, name, spy)
    state_from_text(TEXT, source="recorded")
    assert checked == ["_parse_json", "_check_version", "_verify_checksum"]
    with pytest.raises(StateError, match="checksum mismatch"):  # refused before any walk
        state_from_text(TEXT.replace('"rows": ', '"rows": 1', 1), source="edited")
    assert walks == ["good"]


def test_a_changed_schema_walks_recorded_texts_again(
    walks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state_from_text(TEXT, source="old schema")
    monkeypatch.setattr(state_format, "schema_key", lambda: "another schema")
    state_from_text(TEXT, source="new schema")
    assert walks == ["old schema", "new schema"] and len(records()) == 2


def test_a_folder_others_may_write_in_is_neither_read_nor_written(walks: list[str]) -> None:
    state_from_text(TEXT, source="trusted")
    folder = records_folder()
    assert folder is not None
    for mode in (0o770, 0o707):  # writable by the group, then by anyone
        folder.chmod(mode)
        state_from_text(TEXT, source=oct(mode))
        state_from_text(TEXT + " ", source="new")
    assert walks == ["trusted", "0o770", "new", "0o707", "new"]
    assert len(records()) == 1


def test_records_turned_off_write_nothing(
    walks: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CACHE_ENV, "")
    assert records_folder() is None
    state_from_text(TEXT, source="1")
    state_from_text(TEXT, source="2")
    assert walks == ["1", "2"]
    assert not (tmp_path / "cache").exists()


def test_a_folder_that_cannot_be_made_costs_nothing_but_the_walk(
    walks: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    state_from_text(TEXT, source="1")
    state_from_text(TEXT, source="2")
    assert walks == ["1", "2"]
    assert blocker.read_text() == "not a folder"


def test_the_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert records_folder() == Path("/x/cache/churnctl") / FOLDER
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert records_folder() == Path("/home/someone/.cache/churnctl") / FOLDER
    monkeypatch.setenv(CACHE_ENV, "/elsewhere")
    assert records_folder() == Path("/elsewhere") / FOLDER
