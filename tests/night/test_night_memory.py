"""A night holds a few frames' pixels, not all of them (issue 13: peak memory bounded by a
few frames): the calibrated lights the plan keeps are memory-mapped from their products."""

import mmap

import numpy as np

from glue_zeropoint.night.run import plan_night
from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night


def _mapped(array):
    base = array
    while getattr(base, "base", None) is not None:
        base = base.base
    return isinstance(base, (mmap.mmap, np.memmap))


def test_calibrated_lights_are_memory_mapped_from_their_products(tmp_path):
    write_extinction_night(tmp_path / "raw", seed=2, n_per_band=3, shape=(64, 64),
                           bands={"V": DEFAULT_BANDS["V"]}, n_stars=20)
    plan = plan_night(tmp_path / "raw", None, out=tmp_path / "out")
    assert len(plan.lights) == 3
    for ccd in plan.lights:
        assert _mapped(ccd.data) and _mapped(ccd.uncertainty.array)
    assert len(list((tmp_path / "out" / "calibrated").glob("*_cal.fits"))) == 3
