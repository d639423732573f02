"""Atomic writes: all or nothing, and the permissions a plain write would give (the umask's), not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from spdy_recipes.files import atomic_torch_save, atomic_write_json, atomic_write_text


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
@pytest.mark.parametrize("write", [lambda p: atomic_write_text(p, "x\n"), lambda p: atomic_write_json(p, {"a": 1}),
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
