"""Atomic writes: all or nothing, and the permissions a plain write would give (the umask's), not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from spdy_recipes.files import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_folder,
    atomic_write_json,
    atomic_write_text,
)


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
@pytest.mark.parametrize("write", [lambda p: atomic_write_text(p, "x\n"), lambda p: atomic_write_json(p, {"a": 1}),
                                   lambda p: atomic_write_bytes(p, b"x"),
                                   lambda p: atomic_torch_save({"w": torch.zeros(2)}, p)])
def test_written_files_get_the_umask_permissions(tmp_path, umask, mask, mode, write):
    umask(mask)
    path = tmp_path / "out" / "file"
    write(path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert [p.name for p in path.parent.iterdir()] == ["file"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "recipe.yaml"
    atomic_write_text(path, "old\n")

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        atomic_torch_save(Unsaveable(), path)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["recipe.yaml"]


def _fill(folder):
    (folder / "index.html").write_text("new")
    (folder / "plots").mkdir()
    (folder / "plots" / "a.png").write_bytes(b"png")


@pytest.mark.parametrize("mask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_a_written_folder_gets_the_umask_permissions(tmp_path, umask, mask, file_mode, folder_mode):
    umask(mask)
    out = atomic_write_folder(tmp_path / "report", _fill)
    assert stat.S_IMODE(out.stat().st_mode) == folder_mode
    assert stat.S_IMODE((out / "plots").stat().st_mode) == folder_mode
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()} == {file_mode}


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report"
    atomic_write_folder(target, _fill)

    def fail_midway(folder):
        (folder / "index.html").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write_folder(target, fail_midway)
    assert (target / "index.html").read_text() == "new" and (target / "plots" / "a.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary or old folder left
    atomic_write_folder(target, lambda folder: (folder / "index.html").write_text("newer"))
    assert sorted(p.name for p in target.iterdir()) == ["index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
