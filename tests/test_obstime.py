import pytest
from astropy.io import fits

from glue_zeropoint.obstime import observation_time


@pytest.mark.parametrize("cards, iso", [
    ({"DATE-OBS": "2024-07-01T22:00:00"}, "2024-07-01T22:00:00.000"),
    ({"DATE-OBS": "2024-07-01", "TIME-OBS": "22:10:05"}, "2024-07-01T22:10:05.000"),
    ({"DATE-OBS": "13/07/98", "UT": "21:05:00"}, "1998-07-13T21:05:00.000"),
    ({"MJD-OBS": 60492.5}, "2024-07-01T12:00:00.000"),
    ({"DATE-OBS": "garbage", "MJD-OBS": 60492.5}, "2024-07-01T12:00:00.000"),
])
def test_header_date_forms(cards, iso, recwarn):
    assert observation_time(fits.Header(cards)).isot == iso


def test_unreadable_date_is_a_warning_naming_file_and_keyword():
    with pytest.warns(UserWarning, match=r"night1.fits: DATE-OBS 'yesterday'.*not applied"):
        assert observation_time(fits.Header({"DATE-OBS": "yesterday"}), "night1.fits") is None
    assert observation_time(fits.Header({"EXPTIME": 1.0})) is None
    assert observation_time(None) is None


def test_measure_with_an_old_style_date_runs(tmp_path):
    """A legal pre-2000 DATE-OBS used to stop measure_image ('obstime: cannot read')."""
    from glue_zeropoint.simulate import reference_catalog, simulate_image
    from glue_zeropoint.zeropoint import measure_image

    ccd, truth = simulate_image(seed=8, shape=(256, 256), n_stars=80)
    ccd.meta["DATE-OBS"] = "13/07/98"
    cat = reference_catalog(truth["field"], seed=8, style="normalised")
    result = measure_image(ccd, cat, "V")
    assert result.zeropoint.n_used > 10


@pytest.mark.parametrize("text, iso", [
    ("2024-07-01T22:00:00", "2024-07-01T22:00:00.000"),
    ("2024-07-01 22:00:00.25", "2024-07-01T22:00:00.250"),
    ("2024-07-01", "2024-07-01T00:00:00.000"),
    (" 2024-07-01T22:00:00 ", "2024-07-01T22:00:00.000"),
    ("2024-07-01T22:00:00Z", "2024-07-01T22:00:00.000"),
    ("2024:183:22:00:00", "2024-07-01T22:00:00.000"),  # astropy's own guess (yday)
])
def test_parse_date_forms(text, iso):
    from glue_zeropoint.obstime import parse_date

    t = parse_date(text)
    assert t.isot == iso and t.scale == "utc"


def test_parse_date_keeps_a_fits_dates_own_scale(recwarn):
    """A FITS date naming its scale ('...(TAI)') was read in that scale by astropy's guess,
    and still is (the night's airmasses and proper motions take it to UTC themselves)."""
    from glue_zeropoint.obstime import parse_date

    t = parse_date("2024-07-01T22:00:00(TAI)")
    assert t.scale == "tai" and t.isot == "2024-07-01T22:00:00.000"
    assert parse_date("2024-07-01T22:00:00", scale="tt").scale == "tt"


def test_parse_date_refuses_what_is_not_a_date():
    from glue_zeropoint.obstime import parse_date

    with pytest.raises(ValueError):
        parse_date("yesterday")


def test_measuring_a_frame_leaves_no_cycle_holding_its_frames():
    """astropy's date-format guessing keeps each failed format's error in a reference cycle
    with its stack frames: every caller's variables (the frame's images) then lived on until
    the next full garbage collection, and a 4096^2 night peaked ~400 MB higher. Measuring a
    frame (DATE-OBS read, proper motions propagated) leaves no frame of ours in a cycle."""
    import gc

    from glue_zeropoint.simulate import reference_catalog, simulate_image
    from glue_zeropoint.zeropoint import measure_image

    ccd, truth = simulate_image(seed=8, shape=(256, 256), n_stars=80)
    assert ccd.meta["DATE-OBS"]
    cat = reference_catalog(truth["field"], seed=8, style="normalised")
    measure_image(ccd, cat, "V")  # first: the imports' own cycles
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        m = measure_image(ccd, cat, "V")
        assert m.zeropoint.n_used > 10
        del m
        gc.collect()
        ours = [o.f_code.co_name for o in gc.garbage if type(o).__name__ == "frame"
                and "glue_zeropoint" in o.f_code.co_filename]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert ours == []
