"""The settings objects: dict round trip, flat keywords, old keyword calls still work."""

import json

import numpy as np
import pytest

from glue_zeropoint.exceptions import InputError
from glue_zeropoint.zeropoint import fit_zeropoint_arrays
from glue_zeropoint.zeropoint.settings import (
    FitSettings,
    MeasureSettings,
    PhotometrySettings,
    WCSSettings,
)


def test_round_trip_through_json():
    from astropy.coordinates import SkyCoord

    s = MeasureSettings.from_keywords(fwhm=3.5, annulus=(8.0, 12.0), clip_sigma=2.5,
                                      solve_wcs="never", radius=2.0, offline=True,
                                      center=SkyCoord(10.0, 20.0, unit="deg"))
    d = json.loads(json.dumps(s.to_dict()))
    back = MeasureSettings.from_dict(d)
    assert back.photometry == PhotometrySettings(fwhm=3.5, annulus=(8.0, 12.0))
    assert back.fit.clip_sigma == 2.5 and back.radius == 2.0 and back.offline is True
    assert back.wcs.center == pytest.approx((10.0, 20.0))
    assert MeasureSettings.from_dict(back.to_dict()) == back


def test_unknown_names_are_refused():
    with pytest.raises(TypeError, match="fhwm"):
        MeasureSettings.from_keywords(fhwm=3.0)
    with pytest.raises(InputError, match="unknown setting.*nope"):
        FitSettings.from_dict({"nope": 1})


def test_keywords_override_settings():
    base = MeasureSettings(fit=FitSettings(floor=0.02))
    s = MeasureSettings.from_keywords(base, clip_sigma=4.0)
    assert s.fit.floor == 0.02 and s.fit.clip_sigma == 4.0
    assert base.fit.clip_sigma == 3.0  # not changed in place


def test_solve_mode():
    assert WCSSettings(solve_wcs=True).mode == "always"
    assert WCSSettings(solve_wcs=None).mode == "never"
    with pytest.raises(InputError, match="solve_wcs"):
        _ = WCSSettings(solve_wcs="sometimes").mode


def test_fit_arrays_settings_same_as_keywords():
    rng = np.random.default_rng(3)
    y = 21.0 + rng.normal(0, 0.05, 60)
    y[:3] += 1.0
    err = np.full(60, 0.02)
    a = fit_zeropoint_arrays(y, err, clip_sigma=2.5, floor=0.015)
    b = fit_zeropoint_arrays(y, err, settings=FitSettings(clip_sigma=2.5, floor=0.015))
    assert a.zp == b.zp and a.n_used == b.n_used and a.sigma_int == b.sigma_int
