"""The archive on a real LocalCluster (2 worker processes) and on an external scheduler with
2 ``dask worker`` processes equals the serial run exactly; reruns skip what is done."""

import re

import numpy as np
from archive_helpers import (
    N_FRAMES,
    archive_args,
    assert_same_archive,
    frame_results,
    tmp_files,
)

from glue_zeropoint.archive import read_archive, read_summaries
from glue_zeropoint.cli import main


def test_serial_reference_is_complete(serial_store, nights):
    t = read_archive(serial_store)
    assert len(t) == N_FRAMES
    assert not t.duplicated(["night", "file"]).any()
    assert sorted(t["night"].unique()) == ["2024-07-02", "2024-07-03", "2024-07-04"]
    assert (t["status"] == "ok").all(), t[["file", "status", "reason"]]
    # a zero point, a sky brightness, a k residual and the provenance in every row
    for c in ("zp", "sky_sb", "k_residual", "fwhm", "airmass", "zp_night"):
        assert t[c].notna().all(), c
    assert t["settings_hash"].nunique() == 1 and t["software_version"].nunique() == 1
    assert t["frame_key"].nunique() == N_FRAMES
    assert t["site_lat"].round(2).eq(31.96).all()
    s = read_summaries(serial_store)
    assert list(s["band"]) == ["V"] * 3 and (s["status"] == "ok").all()
    assert s["k"].notna().all() and (s["n_frames"] == 4).all()
    assert not tmp_files(serial_store)
    # masters built once per night, one catalog per field (one field a night here)
    assert len(list((serial_store / "work" / "masters").glob("*/*/masters.pkl"))) == 3
    assert len(list((serial_store / "work" / "catalogs").glob("*.pkl"))) == 3


def test_localcluster_equals_serial(nights, serial_store, tmp_path, capsys):
    store = tmp_path / "store"
    args = [a for a in archive_args(nights, store, "--workers", "2", "--memory-limit", "1GB")
            if a != "--no-dashboard"]  # the dashboard on a free port: its address is shown
    args[args.index("never")] = "always"
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "Dask: 2 worker(s) on a LocalCluster; dashboard http://" in out
    assert f"{N_FRAMES} measured now, 0 already stored, 0 failed" in out
    # the progress bar: frames done of all, failed, ETA
    assert re.search(rf"{N_FRAMES}/{N_FRAMES} \[\d\d:\d\d<\d\d:\d\d", err), err[-500:]
    assert "failed 0" in err
    assert_same_archive(serial_store, store)
    # a rerun measures nothing and leaves the archive as it was
    assert main(archive_args(nights, store, "--serial")) == 0
    out = capsys.readouterr().out
    assert f"0 measured now, {N_FRAMES} already stored" in out
    assert "already in the archive" in out
    assert_same_archive(serial_store, store)


def test_external_scheduler_equals_serial(nights, serial_store, tmp_path, external, capsys):
    store = tmp_path / "store"
    rc = main(archive_args(nights, store, "--scheduler", external.address))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"Dask: 2 worker(s) on {external.address}" in out
    assert_same_archive(serial_store, store)
    assert len(frame_results(store)) == N_FRAMES


def test_archive_rows_equal_the_night_command(nights, serial_store, tmp_path, capsys):
    """The archive's tasks (masters once, one task per frame) give the ``night`` command's
    numbers for the same night, exactly."""
    from astropy.table import Table

    out = tmp_path / "night"
    assert main(["night", str(nights["dir"] / "2024-07-03"), "--catalog",
                 str(nights["catalog"]), "--out", str(out), "--no-plots"]) == 0
    capsys.readouterr()
    ref = Table.read(out / "night.ecsv")
    t = read_archive(serial_store)
    t = t[t["night"] == "2024-07-03"].set_index("file").loc[list(ref["file"])]
    for c in ("zp", "zp_err", "zp_night", "k_residual", "sky_sb", "fwhm", "airmass",
              "n_used", "transparency"):
        np.testing.assert_array_equal(np.asarray(ref[c], float), t[c].to_numpy(float),
                                      err_msg=c)
