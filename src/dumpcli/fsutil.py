"""Atomic file and directory writes: a killed process never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """$DUMP_CACHE, else ~/.cache/dump: converted models and datasets prepared from recipes."""
    return Path(os.environ.get("DUMP_CACHE") or Path.home() / ".cache" / "dump").expanduser()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode open()/mkdir() would give (0644 / 0755 under the usual umask); mkstemp/mkdtemp give 0600/0700."""
    return (0o777 if directory else 0o666) & ~_umask()


def check_can_create(path: Path, flag: str) -> None:
    """DumpError unless `path` could be created: its nearest existing ancestor is a writable folder.

    Checked before any slow work (generating data, loading a model), so a mistyped path fails at once.
    """
    from dumpcli.errors import DumpError

    path = Path(path)
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        raise DumpError(f"{flag} {path} lies under {parent}, which is a file, not a folder; pick another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DumpError(f"cannot create {path}: {parent} is not writable; pick another {flag}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), default_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_dir(final: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp dir beside `final`; on success rename it to `final`, on error delete it.

    With `overwrite`, an existing `final` is replaced only after the new one is complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        os.chmod(tmp, default_mode(directory=True))
        yield tmp
        if final.exists():
            if not overwrite:
                raise FileExistsError(final)
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def torch_save(obj: Any, path: Path) -> None:
    """torch.save through a file we opened, so a failed write (a full disk) is the OSError it is:
    torch reports it as a RuntimeError with the OSError as its context."""
    import torch

    with open(path, "wb") as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:
            if isinstance(e.__context__, OSError):
                raise e.__context__ from None
            raise


def os_error_of(e: Exception, path: Path) -> OSError | None:
    """The OSError a library's own exception stands for ("... (os error 28)" from safetensors), if any."""
    if isinstance(e.__context__, OSError):
        return e.__context__
    m = re.search(r"os error (\d+)", str(e))
    return OSError(int(m.group(1)), os.strerror(int(m.group(1))), str(path)) if m else None


def append_jsonl(path: Path, obj: dict[str, Any]) -> None:
    """Append one JSON object as one line and flush it, so readers see whole lines promptly."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, sort_keys=False, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path, *, skip_bad: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL file of objects that another process may still be appending to.

    A last line without its newline (still being written) or that does not parse is skipped;
    a bad line anywhere else (not UTF-8, not JSON, not an object) is a real corruption and
    raises ValueError naming it, unless `skip_bad`, which drops it (resume rewrites the logs).
    """
    path = Path(path)
    if not path.exists():
        return []
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(complete):
        if not line.strip():
            continue
        row = _json_object(line)
        if isinstance(row, dict):
            rows.append(row)
        elif not skip_bad:
            raise ValueError(f"{path}:{i + 1}: {row}")
    if tail.strip() and isinstance(row := _json_object(tail), dict):
        rows.append(row)
    return rows


def _json_object(line: bytes) -> dict[str, Any] | str:
    """The object on `line`, else why it is not one."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except json.JSONDecodeError as e:
        return f"not valid JSON ({e.msg})"
    return row if isinstance(row, dict) else f"not a JSON object (a {type(row).__name__})"
