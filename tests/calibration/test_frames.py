import warnings

import numpy as np
import pytest
from astropy.io import fits

from glue_zeropoint.calibration import scan_frames
from glue_zeropoint.calibration.frames import (
    exptime_from_name,
    filter_from_name,
    frame_type_from_header,
    frame_type_from_name,
)
from glue_zeropoint.exceptions import InputError
from glue_zeropoint.simulate import simulate_night


def write(path, header=None, shape=(8, 10), value=1000):
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.full(shape, value, np.uint16), header=fits.Header(header or {})).writeto(path)
    return path


@pytest.mark.parametrize("value,kind", [
    ("Bias Frame", "bias"), ("Dark Frame", "dark"), ("Flat Field", "flat"),
    ("Light Frame", "light"), ("BIAS", "bias"), ("ZERO", "bias"), ("DARK", "dark"),
    ("FLAT", "flat"), ("SKYFLAT", "flat"), ("DOMEFLAT", "flat"), ("LIGHT", "light"),
    ("OBJECT", "light"), ("SCIENCE", "light"), ("object    ", "light")])
def test_frame_type_keywords(value, kind):
    for key in ("IMAGETYP", "FRAMETYP", "OBSTYPE"):
        assert frame_type_from_header(fits.Header({key: value})) == (kind, key)


@pytest.mark.parametrize("name,kind", [
    ("Darks/dark_20s001.FIT", "dark"), ("Twilight Flats/flat_15s_V003.FIT", "flat"),
    ("Twilight Flats/V_003.FIT", "flat"), ("Bias/0001.fits", "bias"),
    ("zero001.fits", "bias"), ("M13_20s_Clear001.FIT", None)])
def test_frame_type_from_name_and_folder(tmp_path, name, kind):
    assert frame_type_from_name(tmp_path / name, tmp_path) == kind


@pytest.mark.parametrize("name,t", [
    ("dark_20s001.FIT", 20.0), ("dark_40ms001.FIT", 0.04), ("flat_0.5s_V.fits", 0.5),
    ("M13_20s_Clear001.FIT", 20.0), ("Dark-120s-001.fit", 120.0), ("M13_V001.fit", None)])
def test_exptime_from_name(name, t):
    assert exptime_from_name(name) == (pytest.approx(t) if t is not None else None)


@pytest.mark.parametrize("name,filt", [
    ("flat_15s_V003.FIT", "V"), ("M13_20s_Clear001.FIT", "Clear"), ("Flat-B-001.fit", "B"),
    ("M13-V-20s-001.fit", "V"), ("NGC7000_300s_Ha_002.fits", "Ha"),
    ("M27_60s_OIII001.fits", "OIII"), ("M13_20s001.FIT", None)])
def test_filter_from_name(name, filt):
    assert filter_from_name(name) == filt


def test_thin_night_every_guess_reported(tmp_path):
    truth = simulate_night(tmp_path / "nuit étoilée", style="thin", shape=(32, 32), n_bias=2,
                           n_dark=2, n_flat=2, lights=(("V", 20.0, 1), ("B", 40.0, 1)),
                           cosmic_rays=0, field_kwargs={"n_stars": 3})
    frames = scan_frames(tmp_path / "nuit étoilée")
    by_name = {f.path.name: f for f in frames}
    assert len(frames) == len(truth.frames)
    for ft in truth.frames:
        frame = by_name[ft.path.name]
        assert frame.kind == ft.kind
        assert frame.exptime == pytest.approx(ft.exptime)
        if ft.kind in ("flat", "light"):
            assert frame.filter == ft.filter
        assert frame.gain is None and frame.read_noise is None
        assert frame.guesses and all(g.startswith(ft.path.name) for g in frame.guesses)
    bias = by_name["dark_40ms001.FIT"]
    assert any("40 ms dark used as a bias" in g for g in bias.guesses)
    assert "dark_40ms001.FIT: frame type 'dark' from the file name" in frames.guesses
    assert "flat_5s_V001.FIT: filter 'V' from the file name" in frames.guesses


@pytest.mark.parametrize("style,gain_source", [("maxim", "header EGAIN"),
                                               ("iraf", "header GAIN")])
def test_header_styles(tmp_path, style, gain_source):
    truth = simulate_night(tmp_path / "raw", style=style, shape=(32, 40), n_bias=1, n_dark=1,
                           n_flat=1, cosmic_rays=0, lights=(("V", 20.0, 1),),
                           field_kwargs={"n_stars": 3})
    frames = scan_frames(tmp_path / "raw")
    assert sorted(f.kind for f in frames) == sorted(f.kind for f in truth.frames)
    assert all(f.gain == truth.camera.gain and f.gain_source == gain_source for f in frames)
    assert all(f.shape == (32, 40) and f.binning == (1, 1) for f in frames)
    light = next(f for f in frames if f.kind == "light")
    assert light.filter == "V" and light.exptime == 20.0 and not light.guesses
    if style == "iraf":
        assert light.read_noise == truth.camera.read_noise


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path):
    good = write(tmp_path / "light_10s_V001.fits", {"EXPTIME": 10.0, "IMAGETYP": "LIGHT"})
    (tmp_path / "notes.txt").write_text("observing log")
    (tmp_path / "fake.fits").write_text("not a fits file at all")
    truncated = tmp_path / "sub dir" / "truncated é.fits"
    truncated.parent.mkdir()
    big = write(tmp_path / "big.fits", {"EXPTIME": 1.0}, shape=(200, 200))
    truncated.write_bytes(big.read_bytes()[:5000])
    big.unlink()
    with pytest.warns(UserWarning) as record:
        frames = scan_frames(tmp_path)
    messages = " | ".join(str(w.message) for w in record)
    for name in ("notes.txt", "fake.fits", "truncated é.fits"):
        assert name in messages
    assert [f.path for f in frames] == [good]
    assert {s["file"] for s in frames.skipped} == {"notes.txt", "fake.fits",
                                                   "sub dir/truncated é.fits"}


def test_missing_exptime_names_the_file(tmp_path):
    write(tmp_path / "flat_V003.FIT", {"IMAGETYP": "FLAT"})
    with pytest.raises(InputError, match=r"flat_V003.FIT: no EXPTIME or EXPOSURE.*rename"):
        scan_frames(tmp_path)


def test_exptime_that_is_not_a_number_is_named(tmp_path):
    write(tmp_path / "light_V001.fits", {"IMAGETYP": "LIGHT", "EXPTIME": "abc"})
    with pytest.raises(InputError, match=r"light_V001.fits: EXPTIME = 'abc' is not a number"):
        scan_frames(tmp_path)
    # the file name still gives it when it can
    other = tmp_path / "b"
    other.mkdir()
    write(other / "M13_20s_V001.fits", {"IMAGETYP": "LIGHT", "EXPTIME": "abc"})
    (frame,) = scan_frames(other)
    assert frame.exptime == 20.0 and any("file name" in g for g in frame.guesses)


def test_bias_without_exptime_is_zero_and_reported(tmp_path):
    write(tmp_path / "b1.fits", {"IMAGETYP": "BIAS"})
    (frame,) = scan_frames(tmp_path)
    assert frame.kind == "bias" and frame.exptime == 0.0
    assert "exposure 0 s assumed" in frame.guesses[0]


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no readable FITS"):
        scan_frames(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        scan_frames(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="no readable FITS"):
            scan_frames(tmp_path)


def test_shapes_and_binning_group_apart(tmp_path):
    write(tmp_path / "a.fits", {"IMAGETYP": "BIAS", "XBINNING": 1, "YBINNING": 1}, (8, 10))
    write(tmp_path / "b.fits", {"IMAGETYP": "BIAS", "XBINNING": 2, "YBINNING": 2}, (8, 10))
    write(tmp_path / "c.fits", {"IMAGETYP": "BIAS", "CCDSUM": "2 2"}, (4, 5))
    frames = scan_frames(tmp_path)
    assert len({f.group_key for f in frames}) == 3
    assert [f.binning for f in frames] == [(1, 1), (2, 2), (2, 2)]


def test_progress_is_called(tmp_path):
    for i in range(3):
        write(tmp_path / f"b{i}.fits", {"IMAGETYP": "BIAS", "EXPTIME": 0.0})
    calls = []
    scan_frames(tmp_path, progress=lambda d, t, m: calls.append((d, t)))
    assert calls[-1] == (3, 3) and len(calls) == 4


def test_filter_from_filtname_as_the_loader_reads_it(tmp_path):
    write(tmp_path / "flat_001.fits", {"IMAGETYP": "FLAT", "EXPTIME": 1.0, "FILTNAME": "V"})
    write(tmp_path / "flat_002.fits", {"IMAGETYP": "FLAT", "EXPTIME": 1.0, "FILTNAME": "B"})
    frames = scan_frames(tmp_path)
    assert [f.filter for f in frames] == ["V", "B"]  # never one flat of both filters
