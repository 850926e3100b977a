"""graphnet.atomic.atomic_write: whole files or nothing, permissions kept, no temporary files left."""
import os
import stat

import pytest

from graphnet.atomic import atomic_write


def test_writes_text_and_bytes_with_readable_permissions(tmp_path):
    path = atomic_write(tmp_path / "a.txt", "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_an_existing_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "b.json"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        atomic_write(path, 123)  # not bytes or text
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["c.txt"]
