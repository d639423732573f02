"""File helpers: atomic writes, and JSON reads that fail with one clear line."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import SpdyError, first_line


def check_parent_folders(path: Path, what: str) -> None:
    """SpdyError when the nearest existing parent of ``path`` is not a folder (``path`` could not be made)."""
    for parent in Path(path).parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpdyError(f"{parent} is a file, not a folder: {what} {path} cannot be made there")
            return


def _umask_mode(base: int = 0o666) -> int:
    """The mode a plain ``open(path, "w")`` would give a new file (``base`` 0o666), or ``mkdir`` a new folder
    (``base`` 0o777): ``base`` less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _atomic_replace(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, give it the umask's permissions
    (``mkstemp`` makes it 0600) and rename it over ``path``; on any failure nothing is left behind."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename), with the umask's permissions."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    return _atomic_replace(path, write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, with the umask's permissions."""
    return _atomic_replace(path, lambda tmp: Path(tmp).write_bytes(data))


_FLAT_LIST = re.compile(r"\[\s*([^\[\]{}]*?)\s*\]", re.S)


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented, key-sorted JSON with innermost lists on one line, atomically."""
    text = json.dumps(data, indent=1, sort_keys=True)
    text = _FLAT_LIST.sub(lambda m: "[" + re.sub(r",\n\s*", ", ", m.group(1)) + "]", text)
    return atomic_write_text(path, text + "\n")


def _read_parsed(path: str | os.PathLike, what: str, parse: Callable[[str], Any], errors: tuple, kind: str) -> Any:
    """``parse`` the text of ``path``; a missing or unparsable file is a SpdyError naming ``what``."""
    try:
        return parse(Path(path).read_text())
    except FileNotFoundError:
        raise SpdyError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise SpdyError(f"{what} {path} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError, *errors) as exc:
        raise SpdyError(f"malformed {what} {path}: not {kind} ({first_line(exc)})") from None


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Parse the JSON file ``path``; a missing or unparsable file is a SpdyError naming ``what``."""
    return _read_parsed(path, what, json.loads, (json.JSONDecodeError,), "JSON")


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    """Parse the YAML file ``path`` (safe loader); a missing or unparsable file is a SpdyError naming ``what``."""
    import yaml

    return _read_parsed(path, what, yaml.safe_load, (yaml.YAMLError,), "valid YAML")


def atomic_write_folder(path: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Fill a new temporary folder beside ``path`` with ``fill(folder)``, give it and its files the umask's
    permissions (an existing folder's own mode, when it replaces one), and put it in place of ``path`` (an
    existing folder there is replaced only once the new one is complete); on any failure nothing new is
    left behind."""
    import shutil

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    try:
        fill(tmp)
        file_mode, folder_mode = _umask_mode(), _umask_mode(0o777)
        for item in tmp.rglob("*"):
            os.chmod(item, folder_mode if item.is_dir() else file_mode)
        os.chmod(tmp, os.stat(target).st_mode & 0o7777 if target.is_dir() else folder_mode)  # a folder keeps its mode
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            os.replace(old, target)  # the earlier folder stays as it was
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically, with the umask's permissions."""
    import torch

    return _atomic_replace(path, lambda tmp: torch.save(obj, tmp))


def refuse_overwrite(path: str | os.PathLike, force: bool) -> None:
    """Raises SpdyError when ``path`` exists and ``force`` is not set."""
    if Path(path).exists() and not force:
        raise SpdyError(f"{path} already exists (use --force to overwrite)")


def cache_dir() -> Path:
    """The cache for measured profiles, databases and searches (``$SPDY_RECIPES_CACHE`` or
    ~/.cache/spdy-recipes)."""
    return Path(os.environ.get("SPDY_RECIPES_CACHE") or Path.home() / ".cache" / "spdy-recipes")
