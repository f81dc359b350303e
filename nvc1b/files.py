"""Writing files without losing any: outputs that are never one of the inputs, never outside their output root,
and a full disk reported as such (path and free space) with the partial file removed.

Every command that writes goes through these checks before it touches anything."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import NvcError

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
LOW_SPACE_BYTES = 16 * 2**20
"""A failed write with less than this free on its filesystem is taken for a full disk (libraries such as
torch.save report it as a bare I/O error without errno)."""


class OutputError(NvcError):
    """An output path would destroy an input, replace a directory, or leave the output root."""

    exit_code = 2


class DiskFullError(NvcError):
    """A write failed because its filesystem is full (or over quota); the partial output was removed."""


def check_output(output: str | Path, inputs: Iterable[str | Path | None] = (), *, directory_ok: bool = False,
                 what: str = "output") -> Path:
    """Refuse ``output`` when it is one of ``inputs`` (the same file or folder by inode, hard links included), or an
    existing directory where a file goes (unless ``directory_ok``)."""
    output = Path(output)
    if output.is_dir() and not directory_ok:
        raise OutputError(f"{output}: the {what} is an existing directory; give a file name")
    for given in inputs:
        if given is None:
            continue
        source = Path(given)
        if not source.exists() or not output.exists():
            continue
        if os.path.samefile(output, source):
            raise OutputError(f"{output}: the {what} is the input {source}; writing it would destroy the input")
    return output


def within(root: str | Path, path: str | Path, what: str) -> Path:
    """``path`` if it lies inside ``root`` once resolved ('..' and links followed), else an OutputError."""
    if not _is_inside(Path(path), Path(root)):
        raise OutputError(f"{path}: {what} leads outside the output folder {root}")
    return Path(path)


def _is_inside(path: Path, root: Path) -> bool:
    resolved, top = path.resolve(), root.resolve()
    return resolved == top or top in resolved.parents


def free_bytes(path: str | Path) -> int:
    """Free bytes on the filesystem of ``path`` (or of its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def is_disk_full(exc: BaseException, path: str | Path) -> bool:
    """True when ``exc`` (raised while writing ``path``) comes from a full disk."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    if isinstance(exc, Exception):  # torch.save and safetensors wrap the OSError in their own exceptions
        with contextlib.suppress(OSError):
            return free_bytes(path) < LOW_SPACE_BYTES
    return False


def disk_full_error(path: str | Path, free: int | None = None) -> DiskFullError:
    free = free_bytes(path) if free is None else free
    return DiskFullError(f"{path}: no space left on the disk ({_size(free)} free); the partial output was removed, "
                         "free some space and run the command again")


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def remove(path: Path) -> None:
    """Delete a file or folder left by a failed write (missing is fine)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def disk_full_reported(path: str | Path, *partial: Path) -> Iterator[None]:
    """Turn a full-disk failure of the writes inside into a DiskFullError naming ``path``; ``partial`` paths
    (temporary files, half-written folders) are removed on any failure."""
    try:
        yield
    except BaseException as exc:
        full = is_disk_full(exc, path)
        free = free_bytes(path) if full else 0  # measured before the partial files give their space back
        if full:
            _release_frames(exc)
        for leftover in partial:
            remove(Path(leftover))
        if full:
            raise disk_full_error(path, free) from None
        raise


def _release_frames(exc: BaseException | None) -> None:
    """Clear the locals of the failed writer's frames (and of the errors it handled on the way): they hold its open
    file, and a deleted file keeps its space until it is closed."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__context__ or exc.__cause__


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename; a full disk is a
    DiskFullError and leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with disk_full_reported(path, tmp):
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())
