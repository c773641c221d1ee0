"""The output folder is checked and claimed before a run simulates (vpp.outdir), a killed
run leaves nothing half-written behind, and SIGTERM is handled as SIGINT is."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL

from vpp import api
from vpp.cli import main
from vpp.errors import InputError
from vpp.outdir import TEMP_SUFFIX_CHARS, check_output_folder, claim_output, estimate_run_bytes, lock_path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _refused(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


@pytest.fixture
def no_simulation(monkeypatch):
    """A refusal must come before the first step: simulating fails the test."""
    def boom(*a, **k):
        raise AssertionError("simulated although --out was refused")
    monkeypatch.setattr(api, "run", boom)
    monkeypatch.setattr(api, "compare", boom)


def test_a_name_too_long_for_the_file_system_is_refused(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(InputError, match="at most"):
        check_output_folder(tmp_path / ("r" * (name_max - TEMP_SUFFIX_CHARS + 1)))
    check_output_folder(tmp_path / ("r" * (name_max - TEMP_SUFFIX_CHARS)))          # the longest that fits


@pytest.mark.parametrize("special", ["/proc/vpp-out", "/sys/vpp-out", "/dev/vpp-out"])
def test_a_folder_of_the_operating_system_is_refused(special):
    with pytest.raises(InputError, match="operating system"):
        check_output_folder(special)


def test_a_full_disk_is_refused_with_the_sizes(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 5 * 10**6, 5 * 10**6))
    with pytest.raises(InputError, match=r"writes up to 8 MB and .* has 5 MB free"):
        check_output_folder(tmp_path / "out", estimate_bytes=8 * 10**6)
    check_output_folder(tmp_path / "out", estimate_bytes=4 * 10**6)


def test_a_read_only_parent_is_found_by_writing_not_by_permission_bits(tmp_path, monkeypatch):
    """Root passes every permission check, so the probe writes: a read-only mount refuses it."""
    real_open = os.open

    def read_only(path, flags, *args):
        if ".vpp-probe-" in os.fspath(path):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(InputError, match="read-only file system"):
        check_output_folder(tmp_path / "a" / "b")


def test_the_estimate_grows_with_steps_fleets_and_runs():
    one = estimate_run_bytes(672, 3, 13)
    assert estimate_run_bytes(2 * 672, 3, 13) > one
    assert estimate_run_bytes(672, 3, 26) > one
    assert estimate_run_bytes(672, 3, 13, n_runs=3) == 3 * one
    assert one == 8 * 672 * (12 * 3 + 12 * 13 + 20) + 6_000_000                   # the formula, by hand


def test_a_live_claim_is_refused_and_a_stale_one_is_cleared(tmp_path):
    out = tmp_path / "out"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(out).write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        with pytest.raises(InputError, match=f"another run \\(process {sleeper.pid}\\)"):
            with claim_output(out):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    lock_path(out).write_text(f"{_dead_pid()} {os.uname().nodename}\n")
    partial = tmp_path / ".out.0123abcd.partial"
    partial.mkdir()
    (partial / "nodes.parquet").write_bytes(b"half")
    told = []
    with claim_output(out, notify=told.append) as claimed:
        assert claimed == out and lock_path(out).exists()
    assert not partial.exists() and not lock_path(out).exists()
    assert len(told) == 1 and "did not finish" in told[0]


def test_a_claim_from_another_host_names_the_file_to_delete(tmp_path):
    out = tmp_path / "out"
    lock_path(out).write_text("12345 some-other-host\n")
    with pytest.raises(InputError, match="some-other-host") as e:
        with claim_output(out):
            pass
    assert str(lock_path(out)) in str(e.value)


def test_the_claim_is_released_however_the_block_ends(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with claim_output(out):
            raise KeyboardInterrupt
    assert not lock_path(out).exists()


def test_the_cli_refuses_a_claimed_out_before_simulating(tmp_path, capsys, no_simulation):
    out = tmp_path / "out"
    lock_path(out).write_text(f"{os.getpid() + 0} elsewhere\n")
    err = _refused(capsys, ["run", str(SMALL), "--out", str(out), "--quiet"])
    assert "--out" in err and "elsewhere" in err
    err = _refused(capsys, ["compare", str(SMALL), "--out", str(out), "--quiet"])
    assert "elsewhere" in err


def test_the_cli_refuses_an_unwritable_out_before_simulating(capsys, no_simulation):
    err = _refused(capsys, ["run", str(SMALL), "--out", "/proc/vpp-run", "--quiet"])
    assert "operating system" in err


def _vpp(*args) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "vpp"
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("command", [("run", "--strategy", "rule_based"),
                                     ("compare", "--strategies", "source_follows_load,rule_based")],
                         ids=["run", "compare"])
@pytest.mark.parametrize("moment", ["simulating", "writing"])
def test_sigterm_leaves_nothing_half_written(tmp_path, moment, command):
    """SIGTERM while simulating (the lock is held, no folder yet) or while writing (a
    .partial sibling exists): the run or comparison exits 143 and leaves no folder,
    partial or lock."""
    out = tmp_path / "out"
    proc = _vpp(command[0], str(SMALL), "--out", str(out), *command[1:], "--quiet")
    try:
        if moment == "simulating":
            reached = _wait_for(lambda: lock_path(out).exists(), 60)
        else:
            reached = _wait_for(lambda: any(tmp_path.glob(".out.*.partial")) or proc.poll() is not None, 120)
        assert reached, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if proc.returncode == 0:                 # the write finished before the signal arrived: complete
        assert (out / "kpis.json").exists()
    else:
        assert proc.returncode == 143 and "Traceback" not in err and "terminated" in err
        assert not out.exists()
    assert not list(tmp_path.glob(".out.*.partial")) and not lock_path(out).exists()


def test_a_run_killed_outright_is_cleaned_by_the_next_one(tmp_path, capsys):
    """SIGKILL cannot be handled: the lock and the partial folder stay; the next run on the
    same --out finds the lock's process gone, removes both, says so, and writes."""
    out = tmp_path / "out"
    lock_path(out).write_text(f"{_dead_pid()} {os.uname().nodename}\n")
    (tmp_path / ".out.deadbeef.partial").mkdir()
    assert main(["run", str(SMALL), "--out", str(out), "--strategy", "rule_based", "--quiet"]) == 0
    assert (out / "kpis.json").exists()
    assert not list(tmp_path.glob(".out.*.partial")) and not lock_path(out).exists()
    assert "did not finish" in capsys.readouterr().err
