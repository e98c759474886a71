"""Quality of a WCS against a catalog, and detection accuracy."""

import json

import numpy as np
import pytest
from astrometry_helpers import make_frame
from astropy import units as u
from astropy.table import Table
from scipy.spatial import cKDTree

from glue_zeropoint.astrometry import detect_sources, wcs_quality
from glue_zeropoint.exceptions import InputError
from glue_zeropoint.io import to_jsonable


@pytest.fixture(scope="module")
def frame():
    return make_frame(seed=12, rotation=15.0)


def test_quality_of_the_true_wcs(frame):
    ccd, field, cat = frame
    src = detect_sources(ccd)
    q = wcs_quality(field.wcs, src, cat, radius=2 * u.arcsec, shape=(1024, 1024))
    assert q.n_matched > 200 and q.n_used > 0.8 * q.n_matched
    assert q.rms_pix < 0.2 and q.rms_arcsec == pytest.approx(q.rms_pix * q.pixel_scale)
    assert np.hypot(*q.offset_arcsec) < 0.02
    assert 250 < q.n_catalog < 320
    json.dumps(to_jsonable(q.to_dict()))
    assert "rms" in str(q) and len(q.to_table()) == len(q.to_dict())


def test_a_shifted_wcs_shows_its_offset(frame):
    ccd, field, cat = frame
    w = field.wcs.deepcopy()
    w.wcs.crval = [w.wcs.crval[0] + 2.0 / 3600 / np.cos(np.deg2rad(w.wcs.crval[1])),
                   w.wcs.crval[1]]
    src = detect_sources(ccd)
    q = wcs_quality(w, np.column_stack([src["x"], src["y"]]), cat, radius=4.0)
    # the WCS's sky is 2" east of the truth: the stars are found 2" east of the catalog
    assert q.offset_arcsec[0] == pytest.approx(2.0, abs=0.05)
    assert abs(q.offset_arcsec[1]) < 0.05
    q0 = wcs_quality(w, src, cat, radius=0.5 * u.arcsec)
    assert q0.n_matched < 5


def test_quality_input_errors(frame):
    ccd, field, cat = frame
    with pytest.raises(InputError, match="no ra"):
        wcs_quality(field.wcs, [[1.0, 2.0]], Table({"RAJ2000": [1.0]}))
    with pytest.raises(InputError, match="radius must be positive"):
        wcs_quality(field.wcs, [[1.0, 2.0]], cat, radius=0)
    empty = wcs_quality(field.wcs, np.zeros((0, 2)), cat)
    assert empty.n_matched == 0 and np.isnan(empty.rms_pix)


@pytest.mark.parametrize("method", ["fast", "daofind"])
def test_detection_centroids(frame, method):
    ccd, field, cat = frame
    src = detect_sources(ccd, method=method, max_sources=150)
    assert len(src) == 150 and np.all(np.diff(src["flux"]) <= 0)
    tree = cKDTree(np.column_stack([field.stars["x"], field.stars["y"]]))
    d, _ = tree.query(np.column_stack([src["x"], src["y"]]))
    assert np.median(d[:100]) < 0.05
    assert 2.5 < src.meta["fwhm"] < 6.0


def test_detection_honours_masks_and_nans(frame):
    ccd, field, cat = frame
    data = np.array(ccd.data)
    data[:, :300] = np.nan
    src = detect_sources(data)
    assert len(src) > 50 and src["x"].min() > 295
    with pytest.raises(InputError, match="no finite"):
        detect_sources(np.full((50, 50), np.nan))
    with pytest.raises(InputError, match="2-D"):
        detect_sources(np.zeros(10))


def test_cosmic_rays_are_not_taken_for_stars(frame):
    ccd, field, cat = frame
    data = np.array(ccd.data)
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(5, 1019, (2, 200))
    data[ys, xs] += rng.uniform(3000, 30000, 200)  # single-pixel hits
    src = detect_sources(data)
    tree = cKDTree(np.column_stack([xs, ys]))
    d, _ = tree.query(np.column_stack([src["x"], src["y"]]))
    assert (d < 1.5).sum() <= 3
