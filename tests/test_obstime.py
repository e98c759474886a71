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
