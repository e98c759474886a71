"""prepare_image: units, gain, uncertainty, masks, header chains."""

import numpy as np
import pytest
from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty

from glue_zeropoint.exceptions import InputError
from glue_zeropoint.photometry import header_value, prepare_image


def test_electrons_with_uncertainty_and_mask():
    data = np.full((10, 10), 100.0)
    mask = np.zeros((10, 10), bool)
    mask[2, 3] = True
    data[5, 5] = np.nan
    ccd = CCDData(data, unit="electron", uncertainty=StdDevUncertainty(np.full((10, 10), 3.0)),
                  mask=mask, meta={"EXPTIME": 12.0, "SATURATE": 60000.0, "GAIN": 2.0})
    im = prepare_image(ccd)
    assert im.gain == 1.0  # already electrons: GAIN not applied
    assert im.exptime == 12.0 and im.saturation == 60000.0
    assert np.allclose(im.variance, 9.0)
    assert im.bad[2, 3] and im.bad[5, 5] and im.bad.sum() == 2


def test_adu_image_gain_from_header_or_argument():
    ccd = CCDData(np.full((4, 4), 10.0), unit="adu", meta={"EGAIN": 1.5, "EXPOSURE": 30,
                                                           "SATURATE": 1000})
    im = prepare_image(ccd)
    assert im.gain == 1.5 and im.data[0, 0] == 15.0 and im.exptime == 30.0
    assert im.saturation == 1500.0  # converted to electrons
    assert prepare_image(ccd, gain=3.0).data[0, 0] == 30.0
    bare = prepare_image(np.ones((3, 3)))
    assert bare.gain == 1.0 and any("assuming 1" in n for n in bare.notes)
    with pytest.raises(InputError, match="gain"):
        prepare_image(ccd, gain=-1)


def test_inverse_variance_and_errors():
    ccd = CCDData(np.ones((5, 5)), unit="electron",
                  uncertainty=InverseVariance(np.full((5, 5), 4.0)))
    assert np.allclose(prepare_image(ccd).variance, 0.25)
    with pytest.raises(InputError, match="2-D"):
        prepare_image(np.ones(5))
    with pytest.raises(InputError, match="no finite"):
        prepare_image(np.full((3, 3), np.nan))
    with pytest.raises(InputError, match="mask"):
        prepare_image(np.ones((3, 3)), mask=np.zeros((2, 2), bool))
    im = prepare_image(np.ones((3, 3)))
    with pytest.raises(InputError, match="EXPTIME"):
        im.require_exptime()


def test_header_value():
    assert header_value({"EXPTIME": "nan", "EXPOSURE": 5}, ("EXPTIME", "EXPOSURE")) == (5.0, "EXPOSURE")
    assert header_value({}, ("A",)) == (None, None)
