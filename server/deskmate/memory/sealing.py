"""Record transforms: zstd compression and AES-256-GCM encryption of message records, and
sealed strings for the labels a store keeps beside them (titles, workspace URIs, metadata).

Every record gets a fresh 96-bit random nonce; its key id and encoding name are in the
clear, and the associated data binds the ciphertext to its encoding and timestamp (a
record's ``timestamp`` stays readable: listings sort by it), so a sealed field cannot be
moved to another field or record unnoticed. ``cryptography`` and ``zstandard`` are imported
on first use: a store that never meets a sealed or compressed record never loads them.
"""

from __future__ import annotations

import binascii
import functools
import os
import re
from collections.abc import Callable
from typing import Any

from . import keys as key_source
from .codec import (
    MissingKey,
    RecordEncoding,
    UnreadableRecord,
    Unsealing,
    base64_text,
    pack_bytes,
    register_encoding,
    unpack_bytes,
)
from .errors import StorageError

NONCE_BYTES = 12
AES = "aesgcm"
ZSTD = "zstd"
ZSTD_AES = "zstd+aesgcm"
# What encryption writes now: the record as MessagePack, not JSON, under the seal. Decoding it
# is several times faster (no escapes to undo), so an encrypted load costs little more than a
# plain one; the JSON ones above stay readable.
AES_MP = "mp+aesgcm"
ZSTD_AES_MP = "mp+zstd+aesgcm"
COMPRESS_ABOVE = 256  # bytes of JSON: a smaller record gains less than zstd's frame costs


def _b64decode(text: Any) -> bytes:
    # Not validate=True: that runs a regex over the text in Python; the GCM tag (or zstd's
    # frame checks) refuses anything altered anyway.
    if isinstance(text, bytes):
        return text  # a store's decoder took the base64 off already (msgspec does, in C)
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return binascii.a2b_base64(text)


@functools.cache
def _aesgcm(key: bytes):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise StorageError(
            "Encrypted sessions need the cryptography package: pip install 'deskmate[encryption]'."
        ) from None
    return AESGCM(key)


@functools.cache
def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


@functools.cache
def _zstd():
    """(compressor, decompressor, compressor for stores that keep bytes).

    Level 3 where records are text (base64 makes a compressed record a third larger: files,
    PostgreSQL, S3). Where a store keeps bytes (Redis), level 1 with a 16 KB match table: 0.33x
    on code-heavy records against level 3's 0.31x, at two thirds of its time in an append
    (a larger table's cache misses, more than its work, made level 3 cost 30 us a record)."""
    try:
        import zstandard
    except ImportError:
        raise StorageError(
            "Compressed sessions need the zstandard package: pip install 'deskmate[compression]'."
        ) from None
    fast = zstandard.ZstdCompressionParameters.from_level(1, hash_log=12)
    return (
        zstandard.ZstdCompressor(level=3),
        zstandard.ZstdDecompressor(),
        zstandard.ZstdCompressor(compression_params=fast),
    )


def _sealing_key() -> tuple[str, bytes]:
    ring = key_source.keys()
    if ring.current is None:
        raise key_source.KeysUnavailable(
            "encryption is on but deskmate has no key: run `deskmate keys init`, or set "
            f"{key_source.ENV_KEY} or {key_source.ENV_KEY_FILE}. Nothing was written."
        )
    return ring.current_id, ring.current  # type: ignore[return-value]


def _opening_key(kid: Any) -> bytes:
    if not isinstance(kid, str) or not kid:
        raise UnreadableRecord("an encrypted record names no key id")
    try:
        ring = key_source.keys()
    except key_source.KeysUnavailable as exc:
        raise MissingKey(kid, str(exc)) from None
    key = ring.by_id(kid)
    if key is None:
        have = ", ".join(ring.ids()) or "none"
        raise MissingKey(kid, f"the keys deskmate has ({ring.source}) are: {have}")
    return key


def seal_bytes(data: bytes, aad: bytes) -> tuple[str, str]:
    """``data`` encrypted with the current key: (key id, base64 of nonce + ciphertext + tag)."""
    kid, sealed = _seal(data, aad)
    return kid, base64_text(sealed)


def _seal(data: bytes, aad: bytes) -> tuple[str, bytes]:
    """(key id, nonce + ciphertext + tag). As a record's ``data`` the bytes stay bytes: the
    store's JSON encoder writes them as base64 in the same pass (half the cost of doing it here)."""
    kid, key = _sealing_key()
    nonce = os.urandom(NONCE_BYTES)
    return kid, nonce + _aesgcm(key).encrypt(nonce, data, aad)


def open_bytes(kid: Any, sealed: Any, aad: bytes) -> bytes:
    return _open_with(_aesgcm(_opening_key(kid)).decrypt, kid, sealed, aad)


def _open_with(decrypt: Callable[[Any, Any, bytes], bytes], kid: Any, sealed: Any, aad: bytes) -> bytes:
    try:
        raw = _b64decode(sealed)
    except (binascii.Error, ValueError):
        raise UnreadableRecord(f"a record sealed with key {str(kid)[:16]} is not base64") from None
    view = memoryview(raw)
    try:
        return decrypt(view[:NONCE_BYTES], view[NONCE_BYTES:], aad)
    except (_invalid_tag(), ValueError):
        raise UnreadableRecord(
            f"a record sealed with key {kid} does not open with that key: it was altered, cut short "
            "or moved from elsewhere"
        ) from None


# -- message records --------------------------------------------------------------


def _json(record: dict[str, Any]) -> bytes:
    from .codec import dumps_bytes

    return dumps_bytes(record)


@functools.cache
def _fast_decode():
    import msgspec

    return msgspec.json.Decoder().decode, msgspec.DecodeError


def _record(data: bytes) -> Any:
    decode, decode_error = _fast_decode()
    try:
        return decode(data)
    except decode_error:
        import json

        try:
            return json.loads(data)  # what only json reads (NaN), as in a plain record
        except ValueError:
            raise UnreadableRecord("a decoded record is not JSON") from None


def _aad(name: str, timestamp: Any) -> bytes:
    return f"deskmate-record-v1\x00{name}\x00{timestamp}".encode()


def _unsealing(name: str, then: Callable[[bytes], bytes] | None = None):
    """``RecordEncoding.unsealing`` for records sealed as ``name`` (``then`` applied to what
    opens): the key and its cipher found once for a load's records, not once per record."""
    prefix = _aad(name, "")

    def unsealing(kid: Any) -> Unsealing:
        cipher = _aesgcm(_opening_key(kid))
        return Unsealing(cipher.decrypt, NONCE_BYTES, prefix, then, (_invalid_tag(),))

    return unsealing


def _sealed_opener(unsealing: Callable[[Any], Unsealing]):
    """``RecordEncoding.opener`` made of ``unsealing``'s steps, each record's failure worded."""

    def opener(kid: Any) -> Callable[[Any, Any], bytes]:
        steps = unsealing(kid)

        def open_one(data: Any, timestamp: Any) -> bytes:
            opened = _open_with(steps.decrypt, kid, data, steps.aad_prefix + f"{timestamp}".encode())
            return opened if steps.then is None else steps.then(opened)

        return open_one

    return opener


def _sealer(
    name: str, serialize: Callable[[dict[str, Any]], bytes], small: str | None = None, *, binary: bool = False
):
    """``encode`` for records sealed as ``name``: ``serialize``d, then compressed first when
    ``small`` names the encoding of records too small to gain from it (sealed uncompressed);
    ``binary``: for a store that keeps bytes (``RecordEncoding.encode_binary``)."""

    def encode(record: dict[str, Any]) -> dict[str, Any]:
        data = serialize(record)
        timestamp = record.get("timestamp")
        if small is not None:
            if len(data) < COMPRESS_ABOVE:  # encrypted only, and tagged so
                kid, sealed = _seal(data, _aad(small, timestamp))
                return {"enc": small, "kid": kid, "data": sealed}
            data = _compress(data, binary)
        kid, sealed = _seal(data, _aad(name, timestamp))
        return {"kid": kid, "data": sealed}

    return encode


def _compress(data: bytes, binary: bool = False) -> bytes:
    return _zstd()[2 if binary else 0].compress(data)


def _decompress(data: bytes) -> bytes:
    import zstandard

    try:
        return _zstd()[1].decompress(data)
    except zstandard.ZstdError as exc:
        raise UnreadableRecord(f"a compressed record does not decompress ({exc})") from None


def _encode_zstd(record: dict[str, Any], binary: bool = False) -> dict[str, Any] | None:
    data = _json(record)
    if len(data) < COMPRESS_ABOVE:
        return None  # stored plain
    return {"data": _compress(data, binary)}  # bytes: a JSON store's encoder writes the base64


def _decode_zstd(stored: dict[str, Any]) -> Any:
    return _record(_open_zstd(stored))


def _open_zstd(stored: dict[str, Any]) -> bytes:
    try:
        raw = _b64decode(stored.get("data"))
    except (binascii.Error, ValueError):
        raise UnreadableRecord("a compressed record is not base64") from None
    return _decompress(raw)


def _sealed(
    name: str, serialize: Callable[[dict[str, Any]], bytes], small: str | None = None, *, packed: bool = False
) -> RecordEncoding:
    """The encoding of records sealed as ``name``: ``serialize``d (MessagePack when ``packed``,
    else JSON), and compressed first unless too small, when ``small`` names the encoding such
    a record is sealed in instead."""
    unsealing = _unsealing(name, _decompress if small is not None else None)
    opener = _sealed_opener(unsealing)

    def open_record(stored: dict[str, Any]) -> bytes:
        return opener(stored.get("kid"))(stored.get("data"), stored.get("timestamp"))

    def decode(stored: dict[str, Any]) -> Any:
        opened = open_record(stored)
        return unpack_bytes(opened) if packed else _record(opened)

    encode = _sealer(name, serialize, small)
    encode_binary = _sealer(name, serialize, small, binary=True) if small is not None else None
    return RecordEncoding(
        name,
        encode,
        decode,
        open_record,
        packed=packed,
        opener=opener,
        encode_binary=encode_binary,
        unsealing=unsealing,
    )


ENCODINGS = {
    AES: _sealed(AES, _json),
    ZSTD: RecordEncoding(
        ZSTD,
        _encode_zstd,
        _decode_zstd,
        _open_zstd,
        encode_binary=functools.partial(_encode_zstd, binary=True),
    ),
    ZSTD_AES: _sealed(ZSTD_AES, _json, AES),
    AES_MP: _sealed(AES_MP, pack_bytes, packed=True),
    ZSTD_AES_MP: _sealed(ZSTD_AES_MP, pack_bytes, AES_MP, packed=True),
}
for _encoding in ENCODINGS.values():  # always readable, whatever this process writes
    register_encoding(_encoding)


def encoding_for(*, encrypt: bool, compress: bool) -> RecordEncoding | None:
    """The encoding new records are written in for these settings (None: plain)."""
    if encrypt:
        return ENCODINGS[ZSTD_AES_MP if compress else AES_MP]
    return ENCODINGS[ZSTD] if compress else None


# -- sealed labels: titles, workspace URIs, metadata ------------------------------
#
# A label is a string a store keeps in a column, field or header key of its own. Sealed, it
# is "sealed:v1:<key id>:<base64>"; any other string is a plain label, as written before.

SEALED_PREFIX = "sealed:v1:"
_SEALED = re.compile(r"sealed:v1:([0-9a-f]{8}):([A-Za-z0-9+/=]+)")


def seal_text(text: str, field: str) -> str:
    kid, data = seal_bytes(text.encode(), f"deskmate-label-v1\x00{field}".encode())
    return f"{SEALED_PREFIX}{kid}:{data}"


def is_sealed(text: Any) -> bool:
    return isinstance(text, str) and _SEALED.fullmatch(text) is not None


def sealed_key_id(text: str) -> str | None:
    match = _SEALED.fullmatch(text)
    return match[1] if match else None


def open_text(text: str, field: str) -> str:
    """A label as written: a sealed one opened (MissingKey, UnreadableRecord), a plain one as it is."""
    match = _SEALED.fullmatch(text)
    if match is None:
        return text
    return open_bytes(match[1], match[2], f"deskmate-label-v1\x00{field}".encode()).decode()
