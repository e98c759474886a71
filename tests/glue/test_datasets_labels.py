"""Images given as CCDData are labelled by object and filter, numbered within each."""

import numpy as np
from astropy.nddata import CCDData
from glue.core import DataCollection

from glue_zeropoint.glue.datasets import image_datasets


def _ccd(obj, filt):
    meta = {k: v for k, v in (("OBJECT", obj), ("FILTER", filt)) if v}
    return CCDData(np.zeros((8, 8)), unit="electron", meta=meta)


def test_labels_numbered_within_object_and_filter():
    """A night's B light and two V lights read 'M13 B 001', 'M13 V 001', 'M13 V 002', as
    their raw files are numbered (the running index made them 'M13 V 002', 'M13 V 003')."""
    dc = DataCollection()
    data = image_datasets(dc, [_ccd("M13", "B"), _ccd("M13", "V"), _ccd("M13", "V"),
                               _ccd(None, None)])
    assert [d.label for d in data] == ["M13 B 001", "M13 V 001", "M13 V 002", "image 001"]
