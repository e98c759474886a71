"""``glue-zeropoint calibrate`` through ``glue_zeropoint.cli.main``."""

import json

import numpy as np
import pytest
from astropy.io import fits

from glue_zeropoint.cli import main
from glue_zeropoint.simulate import simulate_night


@pytest.fixture
def raw_night(tmp_path):
    raw = tmp_path / "raw night é"
    simulate_night(raw, style="thin", shape=(64, 64), n_bias=4, n_dark=3, n_flat=4,
                   lights=(("V", 20.0, 1), ("B", 30.0, 1)), field_kwargs={"n_stars": 10})
    return raw


def test_calibrate_writes_products_and_report(raw_night, output_dir, capsys):
    assert main(["calibrate", str(raw_night), "--out", str(output_dir)]) == 0
    names = sorted(p.name for p in output_dir.iterdir())
    assert names == sorted(["master_bias.fits", "master_dark.fits", "master_flat_V.fits",
                            "master_flat_B.fits", "M13_20s_V001_cal.fits",
                            "M13_30s_B001_cal.fits", "calibration.json"])
    report = json.loads((output_dir / "calibration.json").read_text())
    assert {"groups", "masters", "lights", "gain", "read_noise", "guesses", "skipped",
            "products", "combine"} <= set(report)
    assert report["gain"]["source"].startswith("measured: photon transfer")
    out = capsys.readouterr()
    assert "calibrated 2 light frame(s)" in out.out and "wrote 7 file(s)" in out.out
    assert "dark dark (scaled from 20s to 30s)" in out.out
    assert out.err.count("\r") == 0  # no progress bar when not on a terminal
    with fits.open(output_dir / "M13_20s_V001_cal.fits") as hdul:
        assert hdul[0].header["BUNIT"] == "electron"
        assert {"UNCERT", "MASK"} <= {h.name for h in hdul}


def test_a_skipped_file_is_reported_once(raw_night, tmp_path, capsys):
    (raw_night / "notes é.fits").write_text("an observing log, not FITS")
    out = tmp_path / "out"
    assert main(["calibrate", str(raw_night), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("notes é.fits") == 1, err
    report = json.loads((out / "calibration.json").read_text())
    assert [s["file"] for s in report["skipped"]] == ["notes é.fits"]
    assert (raw_night / "notes é.fits").read_text() == "an observing log, not FITS"


def test_options_are_used(raw_night, tmp_path):
    out = tmp_path / "out"
    assert main(["calibrate", str(raw_night), "--out", str(out), "--combine", "mean",
                 "--gain", "1.5", "--read-noise", "7.5"]) == 0
    report = json.loads((out / "calibration.json").read_text())
    assert report["combine"] == "mean"
    assert report["gain"] == {"value": 1.5, "source": "given", "error": None}
    assert report["read_noise"]["value"] == 7.5
    assert fits.getheader(out / "M13_20s_V001_cal.fits")["RAWGAIN"] == 1.5


def test_empty_folder_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["calibrate", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no readable FITS frames" in err[0] and "empty" in err[0]


def test_missing_exptime_exits_2_naming_the_file(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    fits.PrimaryHDU(np.zeros((8, 8), np.uint16),
                    header=fits.Header({"IMAGETYP": "LIGHT"})).writeto(raw / "m13 V.fits")
    assert main(["calibrate", str(raw), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "m13 V.fits: no EXPTIME or EXPOSURE" in err
    assert not (tmp_path / "o" / "calibration.json").exists()


def test_unwritable_output_exits_2(raw_night, tmp_path, capsys):
    blocker = tmp_path / "plain file"
    blocker.write_text("x")
    assert main(["calibrate", str(raw_night), "--out", str(blocker / "sub")]) == 2
    assert "cannot create the output folder" in capsys.readouterr().err


def test_bad_gain_exits_2(raw_night, tmp_path, capsys):
    assert main(["calibrate", str(raw_night), "--out", str(tmp_path / "o"),
                 "--gain", "-1"]) == 2
    assert "gain must be a positive number" in capsys.readouterr().err


def test_progress_bar_on_a_terminal(raw_night, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["calibrate", str(raw_night), "--out", str(tmp_path / "o")]) == 0
    assert "calibrating" in capsys.readouterr().err
