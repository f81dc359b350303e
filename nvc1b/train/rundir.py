"""What keeps a run directory whole: one trainer at a time (a lock held by rank 0 for the job's whole life) and
the run's schedule, kept with its history and changed only in what has not been trained yet.

The lock is ``run.lock``: an advisory POSIX record lock (``fcntl.lockf``) on the file, held while the trainer
lives, plus the holder (host, PID, SLURM job id, start time) written inside. A POSIX lock belongs to the process
(children forked by it, such as data-loader workers, do not share it, unlike a ``flock``, which would stay held
while an orphaned worker lives), and the kernel drops it when the process dies however it dies, so a lock left by
a process that is gone is free, and the next trainer takes it over with a warning naming the old holder. A holder
on this host that has just died may still be torn down by the kernel, so a refused lock whose recorded holder is
gone is tried again for a few seconds. Where the filesystem does not implement locks (ENOLCK, some NFS mounts) the
holder written in the file decides: a live process on this host, or any holder on another host (whose processes
cannot be checked from here), keeps the directory; a dead process on this host does not.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

import yaml

from ..errors import ConfigError, NvcError
from ..files import write_text_atomic
from .distributed import DistInfo, on_main
from .schedule import Schedule

log = logging.getLogger("nvc1b.train")

LOCK = "run.lock"
SCHEDULE = "schedule.yaml"
HISTORY = "schedules"
"""Every schedule a run accepted, in order: ``schedules/000.yaml``, ``001.yaml`` … (the newest is schedule.yaml)."""


NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)
"""Lock errors of filesystems that do not implement locks (NFS without a lock manager, Lustre without -o flock)."""
DYING_HOLDER_WAIT = 10.0
"""Seconds a refused lock is tried again while its recorded holder on this host is already gone."""


class RunDirLocked(NvcError):
    """Another trainer holds the run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder: dict) -> str:
    job = f", SLURM job {holder['job_id']}" if holder.get("job_id") else ""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"])) if holder.get("started") else "?"
    return f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')}{job}, since {since}"


class RunLock:
    """The run directory's lock, held from ``acquire`` to ``release`` (rank 0 only)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def _holder(self) -> dict:
        try:
            text = os.pread(self.fd, 4096, 0).decode(errors="replace") if self.fd is not None else ""
            return json.loads(text) if text.strip() else {}
        except ValueError:
            return {"host": "?", "pid": "?"}

    def acquire(self) -> None:
        """Take the lock or raise RunDirLocked naming the holder."""
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._lock_or_wait_for_a_dying_holder()
            locked_by_kernel = True
        except BlockingIOError:
            holder = self._holder()
            self._close()
            raise RunDirLocked(f"{self.path.parent}: the run directory is in use by another trainer "
                               f"({_describe(holder)}); wait for it to end or use another --run-dir") from None
        except OSError as exc:
            if exc.errno not in NO_LOCKS:
                raise
            locked_by_kernel = False
        previous = self._holder()
        if previous and not locked_by_kernel:
            here = previous.get("host") == socket.gethostname()
            if not here or _alive(int(previous.get("pid", 0))):
                self._close()
                raise RunDirLocked(
                    f"{self.path.parent}: the run directory is in use by another trainer ({_describe(previous)}; this "
                    f"filesystem has no file locks, so it cannot be checked); if that process is gone, delete {self.path}"
                )
        if previous:
            log.warning("%s: taking over the lock left by %s, which is gone", self.path, _describe(previous))
        me = {"host": socket.gethostname(), "pid": os.getpid(), "job_id": os.environ.get("SLURM_JOB_ID"),
              "started": time.time()}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(me).encode(), 0)
        os.fsync(self.fd)

    def _lock_or_wait_for_a_dying_holder(self) -> None:
        """Take the lock; BlockingIOError if it is held (after DYING_HOLDER_WAIT if its holder here is gone)."""
        deadline = time.monotonic() + DYING_HOLDER_WAIT
        while True:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: held by another process
                holder = self._holder()
                pid = holder.get("pid")
                gone = holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid)
                if not gone or time.monotonic() > deadline:
                    raise BlockingIOError(errno.EAGAIN, "locked") from None
                time.sleep(0.2)

    def release(self) -> None:
        """Empty the file (a clean end) and drop the lock; the file stays so no second inode can be locked."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:  # a full disk cannot stop the release
            pass
        self._close()

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing it drops this process's lock
            self.fd = None


class RunDirectory:
    """Context manager: the run directory locked for the trainer's life (rank 0 locks; every rank learns the
    outcome, so a refused run stops on all ranks at once)."""

    def __init__(self, run_dir: Path, dist: DistInfo):
        self.lock = RunLock(run_dir) if dist.main else None

    def __enter__(self) -> "RunDirectory":
        on_main(lambda: self.lock.acquire())
        return self

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.release()


def schedule_text(schedule: Schedule) -> str:
    return yaml.safe_dump(schedule.model_dump(mode="json"), sort_keys=False)


def check_resumable(run_dir: Path, schedule: Schedule, trained: int) -> None:
    """Refuse a schedule that differs from the run's own in what is already trained: the preset and stages
    ``0 .. trained-1``. One line naming the stage and key."""
    path = Path(run_dir) / SCHEDULE
    if trained <= 0 or not path.is_file():
        return
    from .schedule import load_schedule

    old = load_schedule(path)
    if old.preset != schedule.preset:
        raise ConfigError(f"{path}: this run was trained with preset '{old.preset}', the schedule given now has "
                          f"'{schedule.preset}'; use a new --run-dir for another preset")
    if len(old.stages) < trained or len(schedule.stages) < trained:
        raise ConfigError(f"{path}: this run has trained {trained} stages, the schedule given now has "
                          f"{len(schedule.stages)}")
    for index in range(trained):
        before, now = old.stages[index].model_dump(mode="json"), schedule.stages[index].model_dump(mode="json")
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                raise ConfigError(
                    f"{path}: stage {index} ('{old.stages[index].name}') is already trained with {key} "
                    f"{before.get(key)!r}, the schedule given now has {now.get(key)!r}; keep the trained stages as "
                    "they were (change only later stages) or use a new --run-dir"
                )


def keep_schedule(run_dir: Path, schedule: Schedule) -> None:
    """Save ``schedule`` as the run's schedule.yaml (atomically), keeping every earlier one in ``schedules/``."""
    path = Path(run_dir) / SCHEDULE
    text = schedule_text(schedule)
    history = Path(run_dir) / HISTORY
    kept = sorted(history.glob("[0-9][0-9][0-9].yaml"))
    if kept and kept[-1].read_text() == text and path.is_file() and path.read_text() == text:
        return
    if path.is_file() and path.read_text() != text:
        log.warning("%s differs from the schedule given now in stages not trained yet; the new one is used, "
                    "the old one stays in %s", path, history)
    if path.is_file() and not kept:  # a run from before the history existed: keep its schedule first
        write_text_atomic(history / "000.yaml", path.read_text())
        kept = [history / "000.yaml"]
    if not kept or kept[-1].read_text() != text:
        write_text_atomic(history / f"{len(kept):03d}.yaml", text)
    write_text_atomic(path, text)
