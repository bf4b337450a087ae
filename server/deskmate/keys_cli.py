"""``deskmate keys init|status``: making an encryption key and saying which keys deskmate has."""

from __future__ import annotations

import argparse
import os
import sys

from .memory import keys
from .memory.atomic import replace_atomically


def keys_command(args: argparse.Namespace) -> int:
    try:
        return init(args) if args.verb == "init" else status()
    except keys.KeysUnavailable as exc:
        print(f"deskmate: {exc}", file=sys.stderr)
        return 1


def init(args: argparse.Namespace) -> int:
    new = keys.new_key()
    if args.file:
        path = args.file.expanduser()
        existing = keys.load_keys_from_file(path) if path.exists() else ()
        if existing and not args.rotate:
            print(
                f"deskmate: {path} already holds key {keys.key_id(existing[0])}; add --rotate to make a new "
                "current key (the old one is kept for reading until `deskmate sessions migrate --rekey`).",
                file=sys.stderr,
            )
            return 1
        text = "".join(keys.encode_key(key) + "\n" for key in (new, *existing))
        replace_atomically(path, text.encode())  # mode 0600, durable, never half written
        where = f"the key file {path} (give it as {keys.ENV_KEY_FILE})"
    else:
        existing = keys.keychain_keys()
        if existing and not args.rotate:
            print(
                f"deskmate: the OS keychain already holds key {keys.key_id(existing[0])}; add --rotate to make "
                "a new current key (the old one is kept for reading until `deskmate sessions migrate --rekey`).",
                file=sys.stderr,
            )
            return 1
        keys.store_in_keychain((new, *existing))
        where = "the OS keychain"
    print(f"Created key {keys.key_id(new)} in {where}.")
    if existing:
        print(
            f"Older key(s) {', '.join(keys.key_id(key) for key in existing)} are kept for reading: run "
            "`deskmate sessions migrate --rekey` to seal every session with the new key."
        )
    else:
        print("Turn encryption on with the setting `encryption: on` (DESKMATE_ENCRYPTION=on in a terminal).")
    if os.environ.get(keys.ENV_KEY) or (args.file is None and os.environ.get(keys.ENV_KEY_FILE)):
        print(f"Note: {keys.ENV_KEY} or {keys.ENV_KEY_FILE} is set and takes precedence over this key.")
    return 0


def status() -> int:
    ring = keys.load_keys()
    if not ring.keys:
        print(f"No encryption key ({ring.source} has none). Make one with `deskmate keys init`.")
        return 1
    print(f"keys from:   {ring.source}")
    print(f"current key: {ring.current_id} (seals what is written)")
    for other in ring.ids()[1:]:
        print(f"older key:   {other} (opens what it sealed)")
    print(
        f"encryption:  {os.environ.get('DESKMATE_ENCRYPTION') or 'off'} (DESKMATE_ENCRYPTION; editors: the encryption setting)"
    )
    return 0
