"""The file store's load of encoded lines with their base64 cut out (data_values.py, decoded by
pybase64) returns and refuses exactly what the load without pybase64 does: the same messages for
every kind of record and mix of lines, the same error for a wrong key, an altered or damaged
record, and the same torn-tail and unfinished-transaction handling."""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest

from deskmate.memory import FileBackend, codec, keys, sealing
from deskmate.memory.backends.file import data_values, store
from deskmate.memory.codec import MissingKey, UnreadableRecord
from deskmate.memory.models import Message

CODE = "".join(
    f"def handler_{i}(request):\n    return render(request, 'page_{i}.html')\n\n" for i in range(40)
)
WHEN = "2026-12-06T10:00:00.000Z"


pytestmark = pytest.mark.usefixtures("encryption_key")


def messages(first: int, count: int) -> list[Message]:
    return [
        Message(
            role="user" if i % 2 == 0 else "assistant",
            content=f'turn {i}: ünïcode and "quotes" and a \\ backslash\n' + CODE[: 200 * (i % 7)],
            id=f"m{i}",
            timestamp=f"2026-12-06T10:00:{i:02d}.000Z",
            context={"uri": f"file:///p/{i}.py", "text": CODE} if i % 2 == 0 else None,
            usage={"totalTokens": i} if i % 2 else None,
        )
        for i in range(first, first + count)
    ]


def lines(encoding: str | None, batch: list[Message], count_before: int = 0) -> bytes:
    """Message lines as the store appends them, written in ``encoding`` (None: plain)."""
    with codec.writing_with(sealing.ENCODINGS[encoding] if encoding else None):
        return store._message_lines(batch, count_before)


def session_file(*bodies: bytes) -> bytes:
    return store._encode(store._header("s", "T", None, WHEN)) + b"".join(bodies)


def outcome(data: bytes):
    """What a load of ``data`` gives: its messages, or the error it raises (type and words)."""
    try:
        return [m.to_dict() for m in store.parse_session(data, "s").messages]
    except Exception as exc:  # compared as they are: the point is that both paths agree
        return type(exc).__name__, str(exc)


@pytest.fixture
def cut_results(monkeypatch):
    """What each cut load returned, in order (None: it left the lines to the decoder that reads them whole)."""
    seen = []
    real = store._cut_lines

    def spy(data, start, end):
        seen.append(real(data, start, end))
        return seen[-1]

    monkeypatch.setattr(store, "_cut_lines", spy)
    return seen


def without_pybase64(monkeypatch, data: bytes):
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "pybase64", None)  # as if not installed: the import fails
        data_values.base64_decoder.cache_clear()
        assert data_values.base64_decoder() is None
        try:
            return outcome(data)
        finally:
            data_values.base64_decoder.cache_clear()


def both_ways(monkeypatch, data: bytes):
    return outcome(data), without_pybase64(monkeypatch, data)


@pytest.mark.parametrize(
    "encoding", [sealing.AES_MP, sealing.ZSTD_AES_MP, sealing.AES, sealing.ZSTD_AES, sealing.ZSTD]
)
def test_every_encoding_loads_the_same_messages_either_way(monkeypatch, cut_results, encoding):
    written = messages(0, 12)
    data = session_file(lines(encoding, written[:5]), lines(encoding, written[5:], 5))
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback == [m.to_dict() for m in written]
    assert cut_results[0] is not None, "the cut path read the file"
    assert cut_results[1:] == [None]  # without pybase64 it gives the lines to msgspec whole


def test_a_history_from_before_encryption_then_sealed_lines(monkeypatch, cut_results):
    written = messages(0, 10)
    data = session_file(lines(None, written[:4]), lines(sealing.AES_MP, written[4:], 4))
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback == [m.to_dict() for m in written]
    assert cut_results[0] is not None


@pytest.mark.parametrize("tail", ["unfinished", "torn"])
def test_what_a_crash_left_at_the_end_is_left_out_either_way(monkeypatch, cut_results, tail):
    written = messages(0, 9)
    committed = lines(sealing.AES_MP, written[:6])
    if tail == "unfinished":  # a transaction whose last line was never written
        rest = lines(sealing.AES_MP, written[6:], 6)
        rest = rest[: rest.rstrip(b"\n").rfind(b"\n") + 1]
    else:  # a line cut short by a crash: no newline
        rest = lines(sealing.AES_MP, written[6:7], 6)[:-900]
    fast, fallback = both_ways(monkeypatch, session_file(committed, rest))
    assert fast == fallback == [m.to_dict() for m in written[:6]]
    assert cut_results[0] is not None


def test_odd_lines_are_read_whole_and_give_the_same_session(monkeypatch, cut_results):
    written = messages(0, 8)
    # A short plain line whose context has a "data" key near its start: cut like a sealed line's.
    nested = {
        "id": "m4",
        "role": "user",
        "content": "q",
        "context": {"data": "not base64!"},
        "timestamp": WHEN,
    }
    spaced = json.loads(lines(sealing.AES_MP, written[5:6], 5))
    data = session_file(
        lines(sealing.AES_MP, written[:4]),
        b"\n",  # a blank line: skipped
        json.dumps(nested, separators=(",", ":")).encode() + b"\n",  # a "data" key inside a plain line
        json.dumps(spaced).encode() + b"\n",  # written by hand: "data": "..." with a space
        lines(sealing.AES_MP, written[6:], 6),
    )
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback
    assert [m["id"] for m in fast] == [f"m{i}" for i in range(8)]
    assert fast[4]["context"] == nested["context"]
    assert cut_results[0] is None  # it found the cut plain line and left the file to msgspec


def test_a_line_of_spaces_sends_the_load_to_the_whole_line_decoder(monkeypatch, cut_results):
    written = messages(0, 4)
    data = session_file(lines(sealing.AES_MP, written[:2]), b"   \n", lines(sealing.AES_MP, written[2:], 2))
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback == [m.to_dict() for m in written]
    assert cut_results == [None, None]


def test_an_escape_in_the_base64_is_read_as_json_reads_it(monkeypatch, cut_results):
    written = messages(0, 6)
    body = lines(sealing.AES_MP, written)
    first = body[: body.find(b"\n")]
    assert b"/" in first
    data = session_file(first.replace(b"/", b"\\/") + body[len(first) :])
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback == [m.to_dict() for m in written]
    assert cut_results == [None, None]  # pybase64 refused the backslash: read as before


@pytest.fixture
def records_opened_one_by_one(monkeypatch):
    """The (encoding, key id) of each record a load opened through ``message_openers`` rather than
    in the cut loop's own steps, in order."""
    seen = []
    real = store.message_openers

    def counting():
        open_one = real()

        def spy(name, kid, data, timestamp):
            seen.append((name, kid))
            return open_one(name, kid, data, timestamp)

        return spy

    monkeypatch.setattr(store, "message_openers", counting)
    return seen


def test_records_of_one_key_are_opened_in_the_cut_loop(monkeypatch, cut_results, records_opened_one_by_one):
    written = messages(0, 12)
    data = session_file(lines(sealing.AES_MP, written[:5]), lines(sealing.AES_MP, written[5:], 5))
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback == [m.to_dict() for m in written]
    assert cut_results[0] is not None
    # The load with pybase64 opened none one by one; the one without opened all twelve so.
    assert len(records_opened_one_by_one) == 12


def test_records_of_another_encoding_or_key_are_opened_one_by_one(
    monkeypatch, cut_results, records_opened_one_by_one
):
    first, second = (base64.urlsafe_b64encode(os.urandom(32)).decode() for _ in range(2))
    written = messages(0, 12)
    monkeypatch.setenv(keys.ENV_KEY, first)
    keys.forget_loaded_keys()
    sealed_first = lines(sealing.AES_MP, written[:4])
    compressed = lines(sealing.ZSTD_AES_MP, written[4:8], 4)  # the short ones: mp+aesgcm
    monkeypatch.setenv(keys.ENV_KEY, f"{second},{first}")  # a new key seals; the old one opens
    keys.forget_loaded_keys()
    sealed_second = lines(sealing.AES_MP, written[8:], 8)
    data = session_file(sealed_first, compressed, sealed_second)
    with codec.observing() as seen:
        fast = outcome(data)
    assert fast == without_pybase64(monkeypatch, data) == [m.to_dict() for m in written]
    assert cut_results[0] is not None
    first_kid = json.loads(sealed_first.split(b"\n")[0])["kid"]
    second_kid = json.loads(sealed_second.split(b"\n")[0])["kid"]
    one_by_one = records_opened_one_by_one[: -len(written)]  # the load with pybase64
    assert (sealing.AES_MP, first_kid) not in one_by_one
    assert one_by_one.count((sealing.ZSTD_AES_MP, first_kid)) >= 1
    assert one_by_one.count((sealing.AES_MP, second_kid)) == 4
    assert (sealing.AES_MP, first_kid) in seen and (sealing.AES_MP, second_kid) in seen  # as before


def sealed_line_edited(edit) -> bytes:
    written = messages(0, 6)
    body = lines(sealing.AES_MP, written)
    found = body.split(b"\n")
    record = json.loads(found[3])
    record["data"] = edit(record["data"])
    found[3] = json.dumps(record, separators=(",", ":")).encode()
    return session_file(b"\n".join(found))


def flipped(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + ("B" if text[middle] == "A" else "A") + text[middle + 1 :]


@pytest.mark.parametrize(
    "edit",
    [
        flipped,  # still base64: the ciphertext altered
        lambda text: text[:100] + "*" + text[101:],  # not base64
        lambda text: text[:-10],  # cut short
        lambda text: "",
    ],
    ids=["altered", "not-base64", "cut-short", "empty"],
)
def test_a_damaged_record_gives_the_same_clear_error_either_way(monkeypatch, edit):
    data = sealed_line_edited(edit)
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback
    assert fast[0] == UnreadableRecord.__name__


def test_a_wrong_key_is_named_either_way(monkeypatch):
    data = session_file(lines(sealing.AES_MP, messages(0, 4)))
    kid = json.loads(data.split(b"\n")[1])["kid"]
    monkeypatch.setenv(keys.ENV_KEY, base64.urlsafe_b64encode(os.urandom(32)).decode())
    keys.forget_loaded_keys()
    fast, fallback = both_ways(monkeypatch, data)
    assert fast == fallback
    assert fast[0] == MissingKey.__name__ and kid in fast[1]


async def test_a_damaged_line_in_a_sealed_file_is_still_moved_aside(tmp_path):
    backend = FileBackend(tmp_path)
    codec.set_writing(sealing.encoding_for(encrypt=True, compress=False))
    await backend.append("s", messages(0, 4), title="T")
    path = backend.path_of("s")
    data = path.read_bytes().split(b"\n")
    data[2] = data[2].replace(b'"kid"', b'"kid', 1)  # no longer JSON
    path.write_bytes(b"\n".join(data))
    loaded = await backend.load("s")
    assert loaded.quarantined_to and not loaded.messages


# -- cutting the values out ---------------------------------------------------------------


def test_values_are_cut_out_of_their_lines_and_the_rest_kept():
    data = (
        b'{"a":1}\n\n{"enc":"x","data":"QUJD","n":1}\n{"b":"\\"data\\":\\"x"}\n{"enc":"y","data":"","n":2}\n'
    )
    stripped, spans = data_values.cut_data_values(data, 0, len(data))
    assert (
        stripped
        == b'{"a":1}\n{"enc":"x","data":"","n":1}\n{"b":"\\"data\\":\\"x"}\n{"enc":"y","data":"","n":2}\n'
    )
    assert [data[s[0] : s[1]] if s else None for s in spans] == [None, b"QUJD", None, b""]


def test_a_value_that_runs_past_its_line_is_not_cut():
    data = b'{"enc":"x","data":"QUJD\n{"b":"c"}\n{"enc":"y","data":"QUJD"}\n'
    stripped, spans = data_values.cut_data_values(data, 0, len(data))
    assert stripped == b'{"enc":"x","data":"QUJD\n{"b":"c"}\n{"enc":"y","data":""}\n'
    assert spans == [None, None, (len(data) - 7, len(data) - 3)]


@pytest.mark.parametrize("size", [1, 50, 700, 1 << 20])
def test_chunks_cut_what_one_pass_cuts(size):
    data = session_file(lines(sealing.AES_MP, messages(0, 7)), lines(None, messages(7, 3), 7))
    start = data.find(b"\n") + 1
    whole = data_values.cut_data_values(data, start, len(data))
    chunks = list(data_values.cut_chunks(data, start, len(data), size))
    assert b"".join(c[0] for c in chunks) == whole[0]
    assert [span for c in chunks for span in c[1]] == whole[1]
    assert all(c[0].endswith(b"\n") for c in chunks)


def test_the_last_line_says_whether_the_file_is_being_written_encoded():
    sealed, plain = lines(sealing.AES_MP, messages(0, 2)), lines(None, messages(2, 2), 2)
    assert data_values.last_line_encoded(plain + sealed, 0, len(plain + sealed))
    assert not data_values.last_line_encoded(sealed + plain, 0, len(sealed + plain))
    assert not data_values.last_line_encoded(b"", 0, 0)
