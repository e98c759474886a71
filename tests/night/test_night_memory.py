"""A night holds a few frames' pixels, not all of them (issue 13: peak memory bounded by a
few frames): the plan keeps each calibrated light as its product file (header, WCS, shape),
no pixels and no open file; measuring it memory-maps it."""

import mmap
import os

import numpy as np

from glue_zeropoint.night.run import plan_night
from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night


def _mapped(array):
    base = array
    while getattr(base, "base", None) is not None:
        base = base.base
    return isinstance(base, (mmap.mmap, np.memmap))


def test_calibrated_lights_are_kept_as_their_products(tmp_path):
    write_extinction_night(tmp_path / "raw", seed=2, n_per_band=3, shape=(64, 64),
                           bands={"V": DEFAULT_BANDS["V"]}, n_stars=20)
    fds = len(os.listdir("/proc/self/fd"))
    plan = plan_night(tmp_path / "raw", None, out=tmp_path / "out")
    assert len(plan.lights) == 3
    assert len(os.listdir("/proc/self/fd")) <= fds  # no file held open per light
    for light in plan.lights:
        assert not hasattr(light, "data") and light.shape == (64, 64)
        assert light.wcs is not None and light.meta["FILTER"] == "V"
        ccd = light.load()
        assert _mapped(ccd.data) and _mapped(ccd.uncertainty.array)
    assert len(list((tmp_path / "out" / "calibrated").glob("*_cal.fits"))) == 3
