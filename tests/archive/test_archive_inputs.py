"""Bad input gives exit code 2 and one line; a bad night and a bad frame are reported and
the archive goes on; ``--report`` prints the trends; a changed frame is redone."""

import shutil
import time

import numpy as np
from archive_helpers import free_port
from astropy.io import fits

from glue_zeropoint.archive import read_archive, read_summaries
from glue_zeropoint.cli import main


def test_no_such_folder(tmp_path, capsys):
    assert main(["archive", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such folder" in err


def test_no_nights(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main(["archive", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 2
    assert "no night folders" in capsys.readouterr().err


def test_no_scheduler_times_out(nights, tmp_path, capsys):
    t0 = time.monotonic()
    rc = main(["archive", str(nights["dir"]), "--out", str(tmp_path / "s"), "--scheduler",
               f"tcp://127.0.0.1:{free_port()}", "--timeout", "2"])
    assert rc == 2 and time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert "no Dask scheduler answered within 2 s" in err and err.count("\n") == 1


def test_report_without_store(tmp_path, capsys):
    assert main(["archive", "--out", str(tmp_path), "--report"]) == 2
    assert "not an archive store" in capsys.readouterr().err


def test_bad_night_and_bad_frame_reported_archive_goes_on(nights, tmp_path, capsys):
    root = tmp_path / "nights"
    good = root / "2024-07-02"
    shutil.copytree(nights["dir"] / "2024-07-02", good)
    # a night of calibration frames only
    bad = root / "2024-07-09"
    bad.mkdir()
    for p in sorted(good.glob("Bias-*.fit")):
        shutil.copy(p, bad / p.name)
    # a blank light in the good night: the dome was closed
    light = sorted(good.glob("SIMFIELD-*.fit"))[0]
    h = fits.getheader(light)
    fits.PrimaryHDU(np.full(fits.getdata(light).shape, 1000, np.uint16), header=h).writeto(
        good / "SIMFIELD-V-blank.fit")
    store = tmp_path / "store"
    args = ["archive", str(root), "--out", str(store), "--catalog", str(nights["catalog"]),
            "--offline", "--serial", "--progress", "never"]
    assert main(args) == 3
    out = capsys.readouterr().out
    assert "2024-07-09: FAILED:" in out and "no light frames" in out
    assert "SIMFIELD-V-blank.fit: FAILED:" in out
    t = read_archive(store)
    assert len(t) == 5 and set(t["night"]) == {"2024-07-02"}
    blank = t[t["file"] == "SIMFIELD-V-blank.fit"].iloc[0]
    assert blank["status"] == "failed" and blank["reason"] and np.isnan(blank["zp"])
    assert (t[t["file"] != "SIMFIELD-V-blank.fit"]["status"] == "ok").all()
    s = read_summaries(store)
    assert s.set_index("night").loc["2024-07-09", "status"] == "failed"
    # the report names the failed night and frame and the trends of the good one
    assert main(["archive", "--out", str(store), "--report"]) == 0
    rep = capsys.readouterr().out
    assert "band V: zero point and sky brightness vs date" in rep
    assert "night 2024-07-09: FAILED" in rep and "SIMFIELD-V-blank.fit" in rep
    zp_line = next(ln for ln in rep.splitlines() if ln.strip().startswith("2024-07-01"))
    assert f"{s.set_index('night').loc['2024-07-02', 'zp_median']:.3f}" in zp_line
    # a changed frame (and only it) is measured again; it is not counted twice
    shutil.copy(light, good / "SIMFIELD-V-blank.fit")
    assert main(args) == 3  # the bad night is still bad
    out = capsys.readouterr().out
    assert "1 measured now, 4 already stored" in out
    t2 = read_archive(store)
    assert len(t2) == 5 and (t2["status"] == "ok").all()
    assert len(list((store / "work" / "frames" / "2024-07-02").glob("*.pkl"))) == 5
