"""Atomic writes: a failed write leaves what was there; nothing is replaced without force."""

from __future__ import annotations

import pytest

from tunesmith.errors import OutputExistsError
from tunesmith.io import atomic_directory, atomic_open, atomic_write_json, atomic_write_text


def test_atomic_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_json_is_readable_json(tmp_path):
    import json

    atomic_write_json(tmp_path / "m.json", {"é": 1})
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == {"é": 1}


def test_binary_atomic_open_writes_numpy_arrays_and_keeps_the_old_file_on_failure(tmp_path):
    import numpy as np

    target = tmp_path / "v.npy"
    with atomic_open(target, binary=True) as handle:
        np.save(handle, np.arange(3, dtype=np.float32))
    with pytest.raises(RuntimeError), atomic_open(target, binary=True) as handle:
        handle.write(b"half")
        raise RuntimeError("crash mid-write")
    assert np.load(target).tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]


def test_failed_atomic_directory_leaves_the_existing_one_untouched(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("precious", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_directory(target, force=True) as tmp:
        (tmp / "weights").write_text("half", encoding="utf-8")
        raise RuntimeError("crash mid-write")
    assert (target / "weights").read_text(encoding="utf-8") == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_existing_directory_is_not_replaced_without_force(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(OutputExistsError, match="--force"), atomic_directory(tmp_path / "model"):
        pass


def test_forced_atomic_directory_replaces_the_old_content(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("x", encoding="utf-8")
    with atomic_directory(target, force=True) as tmp:
        (tmp / "new").write_text("y", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["new"]


def test_forced_atomic_directory_on_dot_replaces_the_current_folder_and_leaves_no_temporary(
    tmp_path, monkeypatch
):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("x", encoding="utf-8")
    monkeypatch.chdir(target)
    with atomic_directory(".", force=True) as tmp:
        (tmp / "new").write_text("y", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_forced_atomic_directory_through_a_symlink_replaces_its_folder_and_keeps_the_link(
    tmp_path,
):
    real = tmp_path / "real"
    real.mkdir()
    (real / "old").write_text("x", encoding="utf-8")
    link = tmp_path / "link"
    link.symlink_to(real)
    with atomic_directory(link, force=True) as tmp:
        (tmp / "new").write_text("y", encoding="utf-8")
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_refusal_without_force_names_the_path_as_given(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputExistsError, match=r"^model exists"), atomic_directory("model"):
        pass


@pytest.fixture
def umask_027():
    import os

    old = os.umask(0o027)
    yield
    os.umask(old)


def test_a_new_atomic_file_gets_the_umask_mode_not_the_private_temporary_one(tmp_path, umask_027):
    atomic_write_text(tmp_path / "report.csv", "a\n")
    with atomic_open(tmp_path / "arrays.npy", binary=True) as handle:
        handle.write(b"x")
    assert (tmp_path / "report.csv").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "arrays.npy").stat().st_mode & 0o777 == 0o640


def test_a_replaced_atomic_file_keeps_the_mode_it_had(tmp_path, umask_027):
    target = tmp_path / "shared.json"
    target.write_text("{}", encoding="utf-8")
    target.chmod(0o664)
    atomic_write_json(target, {"a": 1})
    assert target.stat().st_mode & 0o777 == 0o664


def test_a_new_atomic_directory_gets_the_umask_mode(tmp_path, umask_027):
    with atomic_directory(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}", encoding="utf-8")
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o750


def test_read_json_object_of_a_file_removed_before_the_read_is_none_not_a_traceback(
    tmp_path, monkeypatch
):
    # It checked exists() and then read: a file a concurrent save removed in between raised a
    # raw FileNotFoundError (seen loading an index while another process saved it).
    from pathlib import Path

    from tunesmith.io import read_json_object

    path = tmp_path / "meta.json"
    path.write_text("{}", encoding="utf-8")
    real_read = Path.read_text

    def removed_first(self, *args, **kwargs):
        if self == path:
            path.unlink()
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", lambda self: True)
    monkeypatch.setattr(Path, "read_text", removed_first)
    assert read_json_object(path) is None


@pytest.mark.parametrize("which", ["file", "folder"])
def test_a_write_into_a_read_only_folder_names_the_target_not_its_temporary_file(
    tmp_path, monkeypatch, which
):
    import errno
    import tempfile

    # A shipped model folder is read-only (a Docker image): `export` without --out failed
    # naming '.model.onnx.1234-abcd1234.tmp', a file the user never asked for.
    def read_only(*args, dir=None, prefix="", suffix="", **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", f"{dir}/{prefix}x1y2z3w4{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    target = tmp_path / "model" / ("model.onnx" if which == "file" else "copy")
    with pytest.raises(OSError) as caught:
        if which == "file":
            with atomic_open(target) as handle:
                handle.write("x")
        else:
            with atomic_directory(target):
                pass
    assert caught.value.errno == errno.EROFS
    assert caught.value.filename == str(target)
    assert ".tmp" not in str(caught.value)
