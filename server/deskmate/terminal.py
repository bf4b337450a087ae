"""Writing model output to a terminal: control sequences stripped, text kept.

A model's answer is untrusted text. Sent raw to a terminal, escape sequences in it
could write the clipboard (OSC 52), retitle the window, clear the screen or move the
cursor over earlier lines. When stdout is a TTY only newline and tab survive of the
control characters; piped output stays exactly what the model wrote.
"""

from __future__ import annotations

import re
from typing import TextIO

# Whole sequences first (CSI ... final byte; OSC/DCS/APC/PM/SOS ... BEL or ST; two-byte ESC x),
# then any control character left over, C1 included. A sequence split across two deltas
# loses its ESC in the first and prints the rest as harmless text.
_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without terminal control sequences and control characters other than newline and tab."""
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


class SafeWriter:
    """Writes text to ``stream``, stripped of control sequences when ``stream`` is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.clean = stream.isatty()

    def write(self, text: str) -> None:
        self.stream.write(strip_controls(text) if self.clean else text)
        self.stream.flush()
