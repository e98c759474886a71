"""kill -9 of the client and of a worker mid-run: a rerun (or Dask's rescheduling) gives the
complete archive, every frame once, equal to the serial run; no temporary file is left.

The client is the ``glue-zeropoint archive --scheduler`` command in a subprocess; the worker
is one of the external cluster's two ``dask worker`` processes (no nanny, so its pid is the
process that computes)."""

import os
import signal
import subprocess
import sys

from archive_helpers import (
    N_FRAMES,
    archive_args,
    assert_same_archive,
    env,
    frame_results,
    tmp_files,
    wait_for,
)

from glue_zeropoint.archive import read_archive
from glue_zeropoint.cli import main


def _start(nights, store, address):
    return subprocess.Popen(
        [sys.executable, "-m", "glue_zeropoint.cli",
         *archive_args(nights, store, "--scheduler", address)],
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _complete_once(store):
    t = read_archive(store)
    assert len(t) == N_FRAMES
    assert not t.duplicated(["night", "file"]).any()
    assert len(frame_results(store)) == N_FRAMES
    assert not tmp_files(store)


def test_kill_client_then_rerun(nights, serial_store, tmp_path, external, capsys):
    store = tmp_path / "store"
    proc = _start(nights, store, external.address)
    try:
        wait_for(lambda: len(frame_results(store)) >= 2 or proc.poll() is not None, 240,
                 "the first frame results")
        assert proc.poll() is None, proc.communicate()[0]
        n_before = len(frame_results(store))
        assert n_before < N_FRAMES
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    rc = main(archive_args(nights, store, "--scheduler", external.address))
    out = capsys.readouterr().out
    assert rc == 0, out
    n_done_before = int(out.split(" measured now, ")[1].split(" already stored")[0])
    assert n_done_before >= n_before  # what the killed run stored was trusted, not redone
    _complete_once(store)
    assert_same_archive(serial_store, store)


def test_kill_worker_mid_run(nights, serial_store, tmp_path, external):
    store = tmp_path / "store"
    proc = _start(nights, store, external.address)
    victim = external.workers[0]
    try:
        wait_for(lambda: len(frame_results(store)) >= 2 or proc.poll() is not None, 240,
                 "the first frame results")
        assert proc.poll() is None, proc.communicate()[0]
        assert len(frame_results(store)) < N_FRAMES
        os.kill(victim.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        external.workers.remove(victim)
        external.add_worker(9)  # for later tests: two workers again
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert proc.returncode == 0, out
    assert "0 failed" in out and "lost" not in out
    _complete_once(store)
    assert_same_archive(serial_store, store)
