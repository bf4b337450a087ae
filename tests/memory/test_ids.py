"""Session ids: which are refused, and why, so that a session file is safe on every platform."""

import pytest

from deskmate.memory import InvalidSessionId
from deskmate.memory.ids import validate_session_id


@pytest.mark.parametrize(
    ("session_id", "device"),
    [
        ("CON", "CON"),
        ("con", "CON"),
        ("Prn", "PRN"),
        ("aux", "AUX"),
        ("NUL", "NUL"),
        ("com0", "COM0"),
        ("COM9", "COM9"),
        ("lpt1", "LPT1"),
        ("LPT0", "LPT0"),
        ("con.txt", "CON"),
        ("Nul.jsonl", "NUL"),
        ("aux.tar.gz", "AUX"),
    ],
)
def test_windows_device_names_are_refused_in_any_case_with_any_extension(session_id, device):
    with pytest.raises(InvalidSessionId, match=f"'{device}' is a reserved device name on Windows"):
        validate_session_id(session_id)


@pytest.mark.parametrize("session_id", ["aux.", "x.", "notes..", "con."])
def test_a_trailing_dot_is_refused(session_id):
    with pytest.raises(InvalidSessionId, match="must not end with '.'"):
        validate_session_id(session_id)


@pytest.mark.parametrize("session_id", ["x ", "con ", "COM\u00b9", "LPT\u00b2.txt"])
def test_trailing_spaces_and_superscript_digits_are_refused(session_id):
    with pytest.raises(InvalidSessionId, match="only letters, digits"):
        validate_session_id(session_id)


@pytest.mark.parametrize(
    "session_id",
    ["console", "con-1a2b3c4d", "auxiliary.notes", "com10", "lpt", "nul_check", "my.session", "COM", "x.y"],
)
def test_names_that_only_resemble_device_names_are_allowed(session_id):
    assert validate_session_id(session_id) == session_id
