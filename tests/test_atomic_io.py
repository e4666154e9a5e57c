"""hier_envs.atomic_io: the one atomic-write implementation (temp file + fsync + os.replace)."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import pytest

from hier_envs.atomic_io import atomic_write, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_round_trips(tmp_path: Path) -> None:
    assert write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01\xff") == tmp_path / "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01\xff"
    write_text_atomic(tmp_path / "a.txt", "pinpad ✓\nline 2\n")
    assert (tmp_path / "a.txt").read_bytes() == "pinpad ✓\nline 2\n".encode("utf-8")
    write_json_atomic(tmp_path / "a.json", {"b": [1, 2.5], "a": None})
    assert (tmp_path / "a.json").read_text() == '{\n  "b": [\n    1,\n    2.5\n  ],\n  "a": null\n}\n'
    assert json.loads((tmp_path / "a.json").read_text()) == {"b": [1, 2.5], "a": None}
    with atomic_write(tmp_path / "handle.txt", "w") as handle:
        handle.write("ü")
    assert (tmp_path / "handle.txt").read_bytes() == "ü".encode("utf-8")
    write_bytes_atomic(tmp_path / "a.bin", b"new")  # replaces an existing file
    assert (tmp_path / "a.bin").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.json", "a.txt", "handle.txt"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_inside_the_block_keeps_the_old_file(tmp_path: Path, error: BaseException) -> None:
    path = tmp_path / "state.bin"
    path.write_bytes(b"previous")
    with pytest.raises(type(error)):
        with atomic_write(path) as handle:
            handle.write(b"half of the new con")
            handle.flush()
            raise error
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]  # no temporary file left


def test_failure_without_a_previous_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json_atomic(tmp_path / "nan.json", {"x": math.nan})  # strict JSON: NaN refused
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "set.json", {"x": {1, 2}})
    assert list(tmp_path.iterdir()) == []


def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "file.txt"
    write_text_atomic(path, "x")
    assert path.read_text() == "x"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]


def test_file_mode_is_that_of_a_plain_write(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = write_text_atomic(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_bad_mode_raises_before_touching_the_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    assert list(tmp_path.iterdir()) == []
