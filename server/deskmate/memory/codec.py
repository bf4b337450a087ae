"""Encoding records for storage: one JSON encoder every store and the outbox share, the message
record (and its encoding tag), and the session metadata record every store keeps whole.

Text from editors may hold lone surrogates (``"\\ud800"``), which UTF-8 cannot
carry. Every store keeps such text the same way: each lone surrogate becomes
U+FFFD, the replacement character, so what one store returns another returns too.
"""

from __future__ import annotations

import binascii
import contextvars
import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import StorageError
from .models import Message, SessionMeta, _check_context

REPLACEMENT = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
COMPACT = (",", ":")


def storable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (unchanged when there is none)."""
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub(REPLACEMENT, text)


def base64_text(data: bytes) -> str:
    """``data`` as base64 text, as msgspec writes bytes in JSON."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _base64(value: Any) -> str:
    if isinstance(value, bytes):  # a sealed record's data
        return base64_text(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(record: Any, *, separators: tuple[str, str] = COMPACT) -> str:
    """``record`` as JSON text that UTF-8 can encode: non-ASCII kept as is, lone surrogates
    replaced, bytes as base64 text (as msgspec writes them)."""
    text = json.dumps(record, ensure_ascii=False, separators=separators, default=_base64)
    if text.isascii():
        return text
    # Surrogates can only appear inside string literals, so replacing them in the text is safe.
    return _LONE_SURROGATE.sub(REPLACEMENT, text)


def dumps_bytes(record: Any, *, separators: tuple[str, str] = COMPACT) -> bytes:
    """``dumps`` encoded as UTF-8. Compact records go through msgspec, several times faster
    than ``json`` (an append's whole CPU cost was mostly this); the same bytes either way."""
    if separators == COMPACT:
        try:
            return _fast_encoder()(record)
        except UnicodeEncodeError:
            pass  # a lone surrogate: the json path below replaces it
    return dumps(record, separators=separators).encode()


@functools.cache
def _fast_encoder() -> Callable[[Any], bytes]:
    import msgspec  # on first use: importing it would add to every start of the daemon

    return msgspec.json.Encoder().encode


# -- the session metadata record -------------------------------------------------

_META_FIELDS = [f for f in dataclasses.fields(SessionMeta) if "wire" in f.metadata]
META_KEYS = frozenset(f.metadata["wire"] for f in _META_FIELDS)


def _checked(kind: str, wire: str, value: Any) -> Any:
    """``value`` if it is the kind of JSON value the field holds, else ValueError naming the field."""
    if kind == "flag" and isinstance(value, bool):
        return value
    if kind == "text" and isinstance(value, str):
        return storable(value)
    if kind == "strings" and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [storable(item) for item in value]
    if kind == "object" and isinstance(value, dict):
        return value
    if kind == "objects" and isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    expected = {
        "flag": "true or false",
        "text": "a string",
        "strings": "a list of strings",
        "object": "an object",
        "objects": "a list of objects",
    }
    raise ValueError(f"{wire} must be {expected[kind]}, got {type(value).__name__}")


def encode_meta(meta: SessionMeta) -> dict[str, Any]:
    """The metadata as the JSON object stores keep (fields at their defaults left out,
    fields of newer versions kept)."""
    record = dict(meta.extra)
    for spec in _META_FIELDS:
        value = getattr(meta, spec.name)
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        if value != default:
            record[spec.metadata["wire"]] = value
    return record


def decode_meta(record: Any) -> SessionMeta:
    """The metadata of a stored record; ValueError naming the field that is not what it should be.

    Keys that are not metadata fields are kept in ``extra``, so they survive a rewrite.
    """
    if record is None:
        return SessionMeta()
    if not isinstance(record, dict):
        raise ValueError("the session metadata must be a JSON object")
    values: dict[str, Any] = {}
    for spec in _META_FIELDS:
        wire = spec.metadata["wire"]
        if record.get(wire) is not None:
            values[spec.name] = _checked(spec.metadata["kind"], wire, record[wire])
    extra = {key: value for key, value in record.items() if key not in META_KEYS}
    return SessionMeta(**values, extra=extra)


# -- message records -------------------------------------------------------------
#
# A message is stored as its dict (``Message.to_dict``): format 1, no tag. A record a
# transform wrote (compression, encryption) says so in ENCODING_KEY, keeps its
# timestamp readable (listings sort by it) and holds the rest in the transform's own
# fields; a store keeps it as it keeps any record. Records without a tag keep reading
# whatever encoding is written now, so turning a transform on never strands a history.

ENCODING_KEY = "enc"


@dataclasses.dataclass(frozen=True)
class RecordEncoding:
    """A transform of message records: ``encode`` turns a plain record into the fields stored
    beside the tag (or None: this record is stored plain, e.g. too small to compress; fields
    may name another registered encoding in ENCODING_KEY, e.g. encrypted but not compressed),
    ``decode`` turns a tagged record (tag and timestamp included) back."""

    name: str
    encode: Callable[[dict[str, Any]], dict[str, Any] | None]
    decode: Callable[[dict[str, Any]], Any]
    # The plain record's bytes, for a typed fast decoder (None: only ``decode``): its JSON,
    # or its MessagePack when ``packed`` (no escapes to undo: several times faster to decode).
    open: Callable[[dict[str, Any]], bytes] | None = None
    packed: bool = False
    # For a load's many records under one key: given the key id, ``open`` as a function of a
    # record's (data, timestamp), its key and cipher looked up once (None: ``open`` per record).
    opener: Callable[[Any], Callable[[Any, Any], bytes]] | None = None
    # ``encode`` for a store that keeps bytes, not text (``record_bytes(binary=True)``): no
    # base64 to pay for, so compressed faster (None: ``encode``).
    encode_binary: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    # For a load's many records under one key, given the key id: the parts of ``open`` for a
    # caller to run inline, one tight loop over the records (None: use ``opener``).
    unsealing: Callable[[Any], Unsealing] | None = None


@dataclasses.dataclass(frozen=True)
class Unsealing:
    """How a sealed record's data opens, taken apart: ``decrypt(nonce, ciphertext, aad)`` with the
    key's cipher (the nonce is the data's first ``nonce_bytes``), the associated data being
    ``aad_prefix`` followed by the record's timestamp as UTF-8, then ``then`` applied to what it
    gives (None: nothing). ``errors``: what ``decrypt`` raises for a record that does not open,
    besides ValueError (``open`` words them)."""

    decrypt: Callable[[Any, Any, bytes], bytes]
    nonce_bytes: int
    aad_prefix: bytes
    then: Callable[[bytes], bytes] | None
    errors: tuple[type[Exception], ...]


class UnknownEncoding(StorageError):
    """A record says it is encoded in a way this deskmate cannot read. Not damage: the
    record is left as it is, for a deskmate that can (a newer one, or one with the key)."""

    def __init__(self, name: Any) -> None:
        self.encoding = name
        super().__init__(
            f"A stored message is encoded as {str(name)[:40]!r}, which this deskmate cannot read "
            "(a newer version, or one set up to encode records that way, wrote it). Nothing was changed."
        )


class MissingKey(UnknownEncoding):
    """A sealed record names a key this deskmate does not have. Not damage: left as it is."""

    def __init__(self, key_id: Any, detail: str) -> None:
        self.key_id = key_id
        StorageError.__init__(
            self,
            f"This session is encrypted with key {str(key_id)[:16]}, which deskmate does not have ({detail}). "
            "Give deskmate that key (DESKMATE_ENCRYPTION_KEY, DESKMATE_ENCRYPTION_KEY_FILE or the OS "
            "keychain; `deskmate keys status` shows what it has). Nothing was changed.",
        )


class UnreadableRecord(UnknownEncoding):
    """A transformed record does not decode (altered, cut short): refused, left as it is."""

    def __init__(self, reason: str) -> None:
        StorageError.__init__(self, f"A stored message cannot be read: {reason}. Nothing was changed.")


_encodings: dict[str, RecordEncoding] = {}
# memory/sealing.py's encodings, imported when first met.
_BUILT_IN = frozenset(("aesgcm", "zstd", "zstd+aesgcm", "mp+aesgcm", "mp+zstd+aesgcm"))
_writing: RecordEncoding | None = None
# While a caller observes (``observing``): the (encoding, key id) of every tagged record decoded.
_observed: contextvars.ContextVar[set[tuple[str, str | None]] | None] = contextvars.ContextVar(
    "deskmate_observed_encodings", default=None
)


def register_encoding(encoding: RecordEncoding) -> None:
    """Make records tagged ``encoding.name`` readable."""
    _encodings[encoding.name] = encoding


def forget_encoding(name: str) -> None:
    _encodings.pop(name, None)


@contextmanager
def writing_with(encoding: RecordEncoding | None) -> Iterator[None]:
    """Encode the records written inside the block with ``encoding`` (None: plain)."""
    global _writing
    if encoding is not None:
        register_encoding(encoding)
    previous, _writing = _writing, encoding
    try:
        yield
    finally:
        _writing = previous


def set_writing(encoding: RecordEncoding | None) -> None:
    """Encode every record written from now on with ``encoding`` (None: plain): the daemon's
    store factory sets it from the ``encryption`` and ``compression`` settings."""
    global _writing
    if encoding is not None:
        register_encoding(encoding)
    _writing = encoding


def writing() -> RecordEncoding | None:
    return _writing


@contextmanager
def observing() -> Iterator[set[tuple[str, str | None]]]:
    """Collect the (encoding, key id) of each tagged record decoded inside the block (worker
    threads included: they run in a copy of this context, sharing the set)."""
    seen: set[tuple[str, str | None]] = set()
    token = _observed.set(seen)
    try:
        yield seen
    finally:
        _observed.reset(token)


def note_plain() -> None:
    """Tell an ``observing`` caller that a plain record was decoded: for a loader that makes
    plain messages itself rather than through ``decode_message`` (the file store's fast paths).
    Without it, a history of plain and sealed records looks wholly sealed."""
    seen = _observed.get()
    if seen is not None:
        seen.add(("plain", None))


def encode_message(message: Message, *, binary: bool = False) -> dict[str, Any]:
    """The record every store keeps for ``message``; ``binary``: for a store that keeps bytes."""
    record = message.to_dict()
    if _writing is None:
        return record
    encode = _writing.encode_binary if binary and _writing.encode_binary is not None else _writing.encode
    fields = encode(record)
    if fields is None:
        return record
    return {ENCODING_KEY: _writing.name, "timestamp": message.timestamp, **fields}


def is_encoded(record: Any) -> bool:
    return type(record) is dict and ENCODING_KEY in record


def _encoding_of(record: dict[str, Any]) -> RecordEncoding:
    name = record[ENCODING_KEY]
    encoding = _encodings.get(name) if type(name) is str else None
    if encoding is None and name in _BUILT_IN:
        from . import sealing  # noqa: F401  registers compression and encryption on first need

        encoding = _encodings.get(name)
    if encoding is None:
        raise UnknownEncoding(name)
    seen = _observed.get()
    if seen is not None:
        kid = record.get("kid")
        seen.add((encoding.name, kid if type(kid) is str else None))
    return encoding


def pack_bytes(record: dict[str, Any]) -> bytes:
    """``record`` as MessagePack, its lone surrogates replaced as ``dumps`` replaces them."""
    pack, _ = _msgpack()
    try:
        return pack(record)
    except UnicodeEncodeError:
        return pack(json.loads(dumps(record)))  # rare: the JSON path replaces them


def unpack_bytes(data: bytes) -> Any:
    """What ``pack_bytes`` made; UnreadableRecord when ``data`` is not MessagePack."""
    try:
        return _msgpack()[1](data)
    except ValueError:  # msgspec's DecodeError is one
        raise UnreadableRecord("an opened record is not MessagePack") from None


@functools.cache
def _msgpack() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    import msgspec

    return msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder().decode


def open_message(record: dict[str, Any]) -> Message | None:
    """The message a tagged record holds, decoded by a typed decoder straight from the bytes
    its encoding opens (as the file store reads its lines); None when the encoding gives no
    bytes (use ``decode_message``). ValueError naming what is wrong; UnknownEncoding."""
    opener = _message_opener(record[ENCODING_KEY], record.get("kid"))
    return opener(record.get("data"), record.get("timestamp")) if opener is not None else None


def message_openers() -> Callable[[Any, Any, Any, Any], Message | None]:
    """``open_message`` for a load's many records, as a function of a record's (encoding, key
    id, data, timestamp): what opens each encoding and key is looked up once, not per record."""
    made: dict[tuple[str, str | None], Callable[[Any, Any], Message] | None] = {}

    def open_one(name: Any, kid: Any, data: Any, timestamp: Any) -> Message | None:
        if type(name) is not str or (kid is not None and type(kid) is not str):
            return open_message({ENCODING_KEY: name, "kid": kid, "data": data, "timestamp": timestamp})
        try:
            opener = made[name, kid]
        except KeyError:
            opener = made[name, kid] = _message_opener(name, kid)
        return opener(data, timestamp) if opener is not None else None

    return open_one


def message_unsealing(name: Any, kid: Any) -> tuple[Unsealing, Callable[[bytes], Message]] | None:
    """For a load's records sealed as ``name`` with key ``kid``: how each one's data opens, and the
    typed decoder of what it opens to (MessagePack into ``Message``); None when the encoding is not
    one to take apart (``message_openers`` then). MissingKey, UnknownEncoding as ``open_message``.
    A record that fails in these parts is for ``message_openers``, which says what is wrong."""
    encoding = _encoding_of({ENCODING_KEY: name, "kid": kid})
    if encoding.unsealing is None or not encoding.packed:
        return None
    return encoding.unsealing(kid), _typed_message_decoder(True)[0]


def _message_opener(name: Any, kid: Any) -> Callable[[Any, Any], Message] | None:
    encoding = _encoding_of({ENCODING_KEY: name, "kid": kid})
    if encoding.open is None:
        return None
    if encoding.opener is not None:
        opened = encoding.opener(kid)
    else:

        def opened(data: Any, timestamp: Any) -> bytes:
            return encoding.open({ENCODING_KEY: name, "kid": kid, "data": data, "timestamp": timestamp})  # type: ignore[misc]

    decode, decode_error = _typed_message_decoder(encoding.packed)

    def open_one(data: Any, timestamp: Any) -> Message:
        raw = opened(data, timestamp)
        try:
            message = decode(raw)
        except decode_error:
            return Message.from_dict(_untyped(raw, encoding.packed))  # from_dict words what is wrong
        if message.context is not None:
            _check_context(message.context)  # from_dict's own check
        return message

    return open_one


def _untyped(raw: bytes, packed: bool) -> Any:
    if packed:
        return unpack_bytes(raw)
    try:
        return json.loads(raw)
    except ValueError:
        raise UnreadableRecord("an opened record is not JSON") from None


def decode_message(record: Any) -> Message:
    """The message a stored record holds. ValueError naming the field that is wrong (damage);
    UnknownEncoding for a record tagged with an encoding this deskmate does not know."""
    if not is_encoded(record):
        note_plain()
    else:
        message = open_message(record)
        if message is not None:
            return message
        record = _encoding_of(record).decode(record)
    return Message.from_dict(record)


@functools.cache
def _typed_message_decoder(packed: bool) -> tuple[Callable[[bytes], Message], type[Exception]]:
    import msgspec

    decoder = msgspec.msgpack.Decoder(Message) if packed else msgspec.json.Decoder(Message)
    return decoder.decode, msgspec.DecodeError


class BadRecord(ValueError):
    """Item ``index`` of a batch is not a message record; ``reason`` says why."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"record {index}: {reason}")


def decode_records(records: Iterable[Any]) -> list[Message]:
    """``decode_message`` of each record (as JSON parsed them), the tagged ones opened with one
    opener per encoding and key for them all: what a load decodes."""
    open_one = message_openers()
    messages = []
    for record in records:
        if type(record) is dict and ENCODING_KEY in record:
            message = open_one(
                record[ENCODING_KEY], record.get("kid"), record.get("data"), record.get("timestamp")
            )
            if message is not None:
                messages.append(message)
                continue
        messages.append(decode_message(record))
    return messages


# A store that keeps bytes rather than text (Redis) keeps a tagged record as MessagePack, its
# ``data`` as raw bytes: a third fewer bytes to send and keep than base64 in JSON, and none to
# write or read. A MessagePack map starts with a byte of 0x80 or more, which no JSON text does,
# so one list can hold both forms (records written before, or plain ones, stay JSON).


def record_bytes(message: Message, *, binary: bool = False) -> bytes:
    """The stored bytes of ``message``'s record: its JSON; with ``binary``, a tagged (encrypted
    or compressed) record as MessagePack, compressed as for bytes (``encode_binary``). A plain
    record stays JSON, readable in any client."""
    record = encode_message(message, binary=binary)
    if binary and ENCODING_KEY in record:
        return pack_bytes(record)
    return dumps_bytes(record)


def _is_packed(item: str | bytes) -> bool:
    return type(item) is bytes and item[:1] >= b"\x80"


def _parsed(item: str | bytes) -> Any:
    """One stored record as written: MessagePack (``record_bytes(binary=True)``) or JSON."""
    return _msgpack()[1](item) if _is_packed(item) else json.loads(item)


def _plain_messages(array: str | bytes, count: int) -> list[Message] | None:
    """The messages of a JSON array of ``count`` plain records, decoded by msgspec straight into
    ``Message`` (Redis' plain load of 10,000 messages took 460 ms through ``json`` and
    ``from_dict``); None when any record is tagged (no role: the decoder refuses it) or is
    anything ``from_dict`` would word an error for, which the caller's path then does."""
    decode, decode_error = _typed_batch_decoder()
    try:
        messages = decode(array)
        for message in messages:
            if message.context is not None:
                _check_context(message.context)  # from_dict's own check
    except (decode_error, ValueError, RecursionError):
        return None
    if len(messages) != count:
        return None  # an item held more than one value
    if messages:
        note_plain()
    return messages


@functools.cache
def _typed_batch_decoder() -> tuple[Callable[[str | bytes], list[Message]], type[Exception]]:
    import msgspec

    return msgspec.json.Decoder(list[Message]).decode, msgspec.DecodeError


def decode_messages(items: Sequence[str | bytes]) -> list[Message]:
    """The messages of a batch of records, one JSON text (or MessagePack record) each, in order.

    One parser call for a batch of JSON (several times faster than one per item); when that
    fails, item by item, to raise BadRecord naming the first one to blame.
    """
    if not items:
        return []
    if any(map(_is_packed, items)):
        try:
            return decode_records([_parsed(item) for item in items])
        except (ValueError, TypeError, RecursionError):
            pass
    else:
        try:
            joined = b",".join(items) if isinstance(items[0], bytes) else ",".join(items)  # type: ignore[arg-type]
            array = b"[" + joined + b"]" if isinstance(joined, bytes) else f"[{joined}]"
            plain = _plain_messages(array, len(items))
            if plain is not None:
                return plain
            records = json.loads(array)
            if len(records) == len(items):  # else an item held more than one value
                return decode_records(records)
        except (ValueError, TypeError, RecursionError):
            pass
    messages = []
    for index, item in enumerate(items):
        try:
            messages.append(decode_message(_parsed(item)))
        except (ValueError, TypeError, RecursionError) as exc:  # bad UTF-8, JSON or MessagePack included
            raise BadRecord(index, str(exc)) from None
    return messages
