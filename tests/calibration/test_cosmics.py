import numpy as np

from glue_zeropoint.calibration import flag_cosmic_rays


def test_cosmic_rays_of_a_light_are_flagged(calibrated):
    truth, night, _ = calibrated("iraf")
    ccd = night.lights[0]
    hits = truth.of_kind("light")[0].cosmic_rays
    flagged = flag_cosmic_rays(ccd)
    assert flagged is not ccd and ccd.mask.sum() < flagged.mask.sum()
    new = flagged.mask & ~ccd.mask
    # most hit pixels are caught (the faintest tails of tracks may not be) ...
    assert (new & hits).sum() >= 0.8 * hits.sum()
    # ... and few others away from the edges (stars cut by the image edge look sharp enough
    # to be taken for hits there)
    inner = np.zeros(ccd.shape, bool)
    inner[6:-6, 6:-6] = True
    assert (new & ~hits & inner).sum() <= 0.25 * hits.sum()
    assert flagged.meta["NCOSMIC"] == int(new.sum())
    assert "cosmic rays" in str(flagged.meta["HISTORY"])
    np.testing.assert_array_equal(flagged.data, ccd.data)
