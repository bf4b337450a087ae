"""Which files may be read as context (real files, symlinks and a FIFO under tmp_path)."""

from __future__ import annotations

import os

import pytest

from deskmate.engine.context_files import ContextRefused, read_context_file


def test_a_file_inside_the_folder_is_read(tmp_path):
    (tmp_path / "a.py").write_text("print(1)\n")
    assert read_context_file(tmp_path / "a.py", [tmp_path]) == ("print(1)\n", None)


def test_undecodable_bytes_are_replaced(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"ok\xff")
    assert read_context_file(tmp_path / "b.bin", [tmp_path])[0] == "ok\ufffd"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("outside", "outside every workspace folder"),
        ("fifo", "not a regular file"),
        ("missing", "does not exist"),
    ],
)
def test_refused_files_say_why(tmp_path, name, why):
    folder = tmp_path / "project"
    folder.mkdir()
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", folder / "outside")
    os.mkfifo(folder / "fifo")
    with pytest.raises(ContextRefused, match=why):
        read_context_file(folder / name, [folder])


def test_system_files_are_refused_even_when_every_folder_is_allowed():
    for path in ("/proc/self/environ", "/sys/kernel/hostname", "/dev/null"):
        with pytest.raises(ContextRefused, match="system file"):
            read_context_file(__import__("pathlib").Path(path), None)


def test_a_folder_prefix_is_not_a_parent(tmp_path):
    (tmp_path / "project-other").mkdir()
    (tmp_path / "project-other" / "x.py").write_text("x")
    (tmp_path / "project").mkdir()
    with pytest.raises(ContextRefused, match="outside"):
        read_context_file(tmp_path / "project-other" / "x.py", [tmp_path / "project"])


def test_a_long_file_is_cut_with_a_note(tmp_path):
    (tmp_path / "big.txt").write_bytes(b"a" * (1 << 20) + b"tail")
    text, note = read_context_file(tmp_path / "big.txt", [tmp_path])
    assert len(text) == 1 << 20 and note == "only the first 1,048,576 of 1,048,580 bytes were read"
