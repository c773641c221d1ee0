"""The output folder: checked and claimed before a run simulates anything.

A run takes minutes to hours; finding out at its end that the results cannot be
written loses all of it.  :func:`claim_output` therefore checks, before the
first step, everything that can be known then:

* the folder is new or empty, and not a file;
* it is not inside a system folder (``/proc``, ``/sys``, ``/dev``);
* each name in the path fits the file system (``NAME_MAX``, less the room the
  temporary sibling needs) and the whole path fits ``PATH_MAX``;
* the nearest existing folder is writable: a probe file is created there and
  removed (the permission bits alone do not say it for root, read-only mounts
  or network file systems);
* the free space holds the run's estimated size (:func:`estimate_run_bytes`, an
  upper bound: uncompressed float64 columns);
* no other run writes it: a lock file next to it, created exclusively, holds
  the claiming process's id and host.

A lock whose process is gone (a run killed by ``SIGKILL`` or a power cut) is
stale: the next claim removes it, and, holding the lock, the half-written
``.<name>.*.partial`` siblings a killed run left, and says so.  A lock held by a live process, or
by another host (a shared file system: its processes cannot be seen from
here), is refused with the process named.  The claim is released when the run
ends, however it ends.

Every refusal is an :class:`~vpp.errors.InputError`: one line, exit code 2,
nothing simulated and nothing written.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from vpp.errors import InputError

__all__ = ["claim_output", "hold_lock", "estimate_run_bytes", "check_output_folder", "lock_path",
           "TEMP_SUFFIX_CHARS", "SPECIAL_ROOTS"]

#: Characters the temporary sibling ``.<name>.<8 hex>.partial`` adds to the folder's name.
TEMP_SUFFIX_CHARS = 1 + 1 + 8 + len(".partial")
#: Folders of the operating system no run may write into.
SPECIAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
_REPORT_BYTES = 6_000_000          # a report page is at most ~5.4 MB (tests/test_report_browser.py)


def estimate_run_bytes(n_steps: int, n_nodes: int, n_fleets: int, per_asset_columns: int = 0,
                       n_runs: int = 1) -> int:
    """An upper bound of what saving *n_runs* runs writes. [bytes]

    Each step's record holds about 12 columns per node, 12 per fleet, 20 of
    weather, prices and the VPP's exchange, and one per recorded asset, as
    float64 (Parquet compresses them: the folder is smaller); plus a report
    page per run.
    """
    columns = 12 * n_nodes + 12 * n_fleets + 20 + per_asset_columns
    return int(n_runs * (8 * n_steps * columns + _REPORT_BYTES))


def _nearest_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            return p
    return Path(path.anchor or ".")


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


def _check_names(out: Path, existing: Path) -> None:
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        path_max = os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in out.parts:
        if len(os.fsencode(part)) > name_max - TEMP_SUFFIX_CHARS:
            raise InputError("--out", str(out)[:80] + "...", f"has a name of {len(os.fsencode(part))} bytes; at most "
                             f"{name_max - TEMP_SUFFIX_CHARS} fit here (the run writes a temporary sibling with "
                             f"{TEMP_SUFFIX_CHARS} more first; nothing was written)")
    if len(os.fsencode(str(out))) > path_max - TEMP_SUFFIX_CHARS:
        raise InputError("--out", str(out)[:80] + "...", f"is {len(os.fsencode(str(out)))} bytes long; at most "
                         f"{path_max - TEMP_SUFFIX_CHARS} fit here (nothing was written)")


def _probe_writable(folder: Path, out: Path) -> None:
    probe = folder / f".vpp-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        reason = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable by you",
                  errno.EPERM: "is not writable by you", errno.ENOSPC: "is on a full disk",
                  errno.EDQUOT: "is over your disk quota"}.get(e.errno, f"cannot be written ({e.strerror})")
        raise InputError("--out", str(out), f"{folder} {reason}; choose another folder (nothing was written)") \
            from None


def check_output_folder(out: str | Path, estimate_bytes: int = 0) -> Path:
    """Check that *out* can receive a run's results; return it as an absolute path.

    Raises
    ------
    InputError
        One line naming ``--out``, the path and the reason.
    """
    out = Path(os.path.abspath(os.fspath(out)))
    resolved = Path(os.path.realpath(out))
    for root in SPECIAL_ROOTS:
        if resolved == root or root in resolved.parents:
            raise InputError("--out", str(out), f"is inside {root}, a folder of the operating system; choose "
                             "another folder (nothing was written)")
    existing = _nearest_existing(out)
    _check_names(out, existing)
    if existing == out:
        if not out.is_dir():
            raise InputError("--out", str(out), "is a file; give a new or empty folder (nothing was written)")
        if any(out.iterdir()):
            raise InputError("--out", str(out), "exists and is not empty; choose another folder "
                             "(nothing was written)")
    elif not existing.is_dir():
        raise InputError("--out", str(out), f"{existing} is a file, not a folder (nothing was written)")
    _probe_writable(existing, out)
    free = shutil.disk_usage(existing).free
    if estimate_bytes > free:
        raise InputError("--out", str(out), f"the run writes up to {_megabytes(estimate_bytes)} and {existing} "
                         f"has {_megabytes(free)} free (nothing was written)")
    return out


def lock_path(out: Path) -> Path:
    """The lock file that claims *out*: beside it, named by a hash (so any name fits)."""
    digest = hashlib.sha1(os.fsencode(out.name)).hexdigest()[:16]
    return out.parent / f".vpp-lock-{digest}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                     # someone else's process
    return True


def _holder(lock: Path) -> tuple[int, str] | None:
    try:
        pid, host = lock.read_text(encoding="utf-8").split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _clear_stale(out: Path, lock: Path) -> None:
    """Remove the lock of a run that no longer exists (refuse a live one's)."""
    holder = _holder(lock)
    if holder is not None:
        pid, host = holder
        if host != socket.gethostname():
            raise InputError("--out", str(out), f"is claimed by process {pid} on host {host} ({lock}); if no run is "
                             "writing it, delete that file (nothing was written)")
        if _alive(pid) and pid != os.getpid():
            raise InputError("--out", str(out), f"is being written by another run (process {pid}); wait for it or "
                             "choose another folder (nothing was written)")
    lock.unlink(missing_ok=True)


def _remove_partials(out: Path) -> int:
    """Remove half-written siblings of *out* (only while holding its lock); return how many."""
    partials = [p for p in out.parent.glob(f".{out.name}.*.partial") if p.is_dir()]
    for p in partials:
        shutil.rmtree(p, ignore_errors=True)
    return len(partials)


@contextlib.contextmanager
def hold_lock(out: str | Path, *, notify=None) -> Iterator[Path]:
    """Hold *out*'s lock while the block runs (a folder that may exist, as a sweep's).

    A stale lock (its process gone) is taken over; holding the lock, the
    half-written ``.<name>.*.partial`` siblings of *out* are removed (*notify*
    is told, in one line).  Yields *out*, absolute; its parent exists.

    Raises
    ------
    InputError
        Another live run, or a run on another host, holds the lock.
    """
    out = Path(os.path.abspath(os.fspath(out)))
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(out)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            _clear_stale(out, lock)
    else:
        raise InputError("--out", str(out), "could not be claimed (another run keeps claiming it)")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
        removed = _remove_partials(out)
        if removed and notify is not None:
            notify(f"removed {removed} half-written folder(s) of a run on {out} that did not finish")
        yield out
    finally:
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def claim_output(out: str | Path, estimate_bytes: int = 0, *, notify=None) -> Iterator[Path]:
    """Check *out* (:func:`check_output_folder`) and hold its lock (:func:`hold_lock`)
    while the block runs.

    Parameters
    ----------
    out : str or Path
        The output folder, new or empty.
    estimate_bytes : int
        What the run will write at most. [bytes]
    notify : callable, optional
        Told, in one line, what a run that did not finish left and was removed.

    Yields
    ------
    Path
        The folder, absolute.  Its parent exists.
    """
    with hold_lock(check_output_folder(out, estimate_bytes), notify=notify) as claimed:
        yield claimed
