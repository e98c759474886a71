"""Faster paths of the detection and the sky give the answers of the plain ones they replace
(issue 13's speed work): DAOStarFinder on the candidates' stamps and the frame's edge strips
instead of the whole frame, the 3x3 moment centroids on their boxes only, the separable
smoothing, the sky mask's block means."""

import math
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.centroids import centroid_com, centroid_sources
from photutils.utils.exceptions import NoDetectionsWarning
from scipy import ndimage

from glue_zeropoint.photometry import _kernels as K
from glue_zeropoint.photometry import detection as D
from glue_zeropoint.simulate import simulate_image
from glue_zeropoint.zeropoint.sky import _block_mean


def _sorted_rows(t):
    t = t.copy()
    t.sort(["x", "y"])
    return t


@pytest.mark.parametrize("fwhm", [1.0, 4.0])
def test_finder_on_stamps_gives_the_whole_frames_rows(monkeypatch, fwhm):
    ccd, _ = simulate_image(shape=(1050, 1000), n_stars=1500, fwhm=fwhm, seed=11)
    # stars whose finder cutout crosses each edge and corner of the frame
    yy, xx = np.mgrid[0:1050, 0:1000]
    for x, y in ((0.3, 500.2), (999.1, 300.7), (400.4, 0.2), (600.6, 1049.3), (1.0, 1.2),
                 (998.7, 1048.6), (3.2, 700.5)):
        ccd.data += 20000.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (fwhm / 2.35) ** 2))
    calls = []
    parts = D._finder_parts
    monkeypatch.setattr(D, "_finder_parts", lambda *a, **k: calls.append(1) or parts(*a, **k))
    with warnings.catch_warnings():
        # a part none of whose candidates pass the finder's filters is no news for the user
        # (the demo printed photutils' "none pass the filtering criteria" twice)
        warnings.simplefilter("error", NoDetectionsWarning)
        fast = D.find_stars(ccd)
    assert calls  # the stamps were used
    monkeypatch.setattr(D, "_finder_parts", lambda *a, **k: None)
    plain = D.find_stars(ccd)
    assert len(fast) == len(plain) > 500
    a, b = _sorted_rows(fast), _sorted_rows(plain)
    edge = (a["x"] < 3) | (a["x"] > 996) | (a["y"] < 3) | (a["y"] > 1046)
    assert edge.sum() >= 5
    for col in ("x", "y", "peak", "flux", "sharpness", "roundness1", "roundness2", "snr"):
        np.testing.assert_allclose(np.asarray(a[col], float), np.asarray(b[col], float),
                                   rtol=1e-12, atol=1e-9, err_msg=col)


@pytest.mark.parametrize("major, minor, theta", [(3.0, 3.0, 0.0), (6.0, 2.0, 10.0),
                                                  (6.0, 2.5, 90.0), (5.0, 2.5, 0.0)])
def test_finder_parts_give_the_whole_frames_rows_in_order(major, minor, theta):
    """DAOStarFinder on the parts (round and elongated, non-square kernels) against the
    whole frame: the same rows in the same order, candidates on every edge, corner and the
    strips' inner boundary included."""
    from glue_zeropoint.photometry.psf import PSF

    rng = np.random.default_rng(int(major * 10 + theta))
    ny, nx = 1001, 1000
    sub = rng.normal(0.0, 3.0, (ny, nx))
    yy, xx = np.mgrid[0:ny, 0:nx]
    xs = np.r_[rng.integers(0, nx, 400), 0, nx - 1, 0, nx - 1, 5, 6, 7, nx - 8, 500, 500]
    ys = np.r_[rng.integers(0, ny, 400), 0, 0, ny - 1, ny - 1, 300, 301, 302, 600, 0, ny - 6]
    t = np.radians(theta)
    for x, y in zip(xs, ys, strict=True):
        u = (xx - x) * np.cos(t) + (yy - y) * np.sin(t)
        v = -(xx - x) * np.sin(t) + (yy - y) * np.cos(t)
        near = (np.abs(xx - x) < 20) & (np.abs(yy - y) < 20)
        sub[near] += 500.0 * np.exp(-0.5 * ((u[near] / (major / 2.355)) ** 2
                                            + (v[near] / (minor / 2.355)) ** 2))
    psf = PSF(fwhm=math.sqrt(major * minor), fwhm_major=major, fwhm_minor=minor, theta=theta)
    cand = D.Candidates(ys.astype(int), xs.astype(int), np.full(xs.size, 50.0),
                        np.full(xs.size, 100.0), 0.1, 3.0)
    bad = np.zeros(sub.shape, bool)
    fast = D._run_finder(None, psf, cand, sub, bad, 3.0)
    parts = D._finder_parts
    try:
        D._finder_parts = lambda *a, **k: None
        plain = D._run_finder(None, psf, cand, sub, bad, 3.0)
    finally:
        D._finder_parts = parts
    assert len(fast) == len(plain) > 300
    for col in plain.colnames:
        if col == "id":
            continue
        np.testing.assert_allclose(np.asarray(fast[col], float), np.asarray(plain[col], float),
                                   rtol=1e-12, atol=1e-9, err_msg=col)


def test_finder_parts_take_whole_pixels_only():
    big = np.zeros((1100, 1000))
    assert D._finder_parts(big, np.array([401.5]), np.array([300.0]), (7, 7)) is None
    assert D._finder_parts(big, np.array([401.0]), np.array([300.0]), (7, 7)) is not None


def test_finder_parts_refused_on_small_or_crowded_frames():
    sub = np.zeros((500, 500))
    xs = ys = np.array([250.0])
    assert D._finder_parts(sub, xs, ys, (7, 7)) is None  # under a million pixels
    big = np.zeros((1100, 1000))
    many = np.arange(0, 1000, 2.0)
    xs, ys = np.tile(many, 40), np.repeat(np.arange(40.0) * 25 + 10, many.size)
    assert D._finder_parts(big, xs, ys, (9, 9)) is None  # stamps as large as the frame
    assert D._finder_parts(big, xs[:100], ys[:100], (9, 9)) is not None


def test_moment_centroids_are_photutils_centroid_com():
    rng = np.random.default_rng(3)
    sub = rng.normal(0.0, 1.0, (80, 60))
    sub[5, 5], sub[20:23, 20:23] = np.nan, -1.0
    xs = np.r_[rng.integers(0, 60, 200), 0, 59, 5, 21, 0].astype(float)
    ys = np.r_[rng.integers(0, 80, 200), 0, 79, 5, 21, 40].astype(float)
    got = D._moment_centroids(sub, xs, ys)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        cx, cy = centroid_sources(np.clip(np.nan_to_num(sub), 0, None), xs, ys, box_size=3,
                                  centroid_func=centroid_com)
    ok = np.isfinite(cx) & np.isfinite(cy)
    want = np.where(ok, cx, xs), np.where(ok, cy, ys)
    assert (~ok).sum() >= 1  # the all-negative box keeps its peak
    np.testing.assert_allclose(got[0], want[0], atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], atol=1e-12)


@pytest.mark.parametrize("n, ny", [(1, 70), (3, 70), (9, 70), (15, 70), (5, 333)])
def test_smooth_separable_is_the_2d_correlation(n, ny):
    # 333 rows: six bands of 64, several per thread buffer
    rng = np.random.default_rng(n)
    img = rng.normal(100.0, 5.0, (ny, 53))
    kern = rng.random(n)
    want = ndimage.correlate(img, np.outer(kern, kern), mode="constant", cval=0.0)
    np.testing.assert_allclose(K.smooth_separable(img, kern), want, rtol=1e-12, atol=1e-9)
    tiny = img[:4, :5]  # narrower than the kernel
    np.testing.assert_allclose(K.smooth_separable(tiny, kern),
                               ndimage.correlate(tiny, np.outer(kern, kern), mode="constant"),
                               rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("f", [2, 3, 4])
def test_block_mean_is_the_mean_of_good_pixels(f):
    rng = np.random.default_rng(f)
    data = rng.normal(100.0, 5.0, (101, 77))
    bad = rng.random(data.shape) < 0.2
    bad[:f, :f] = True  # an empty block
    mean, empty, n = _block_mean(data, bad, f)
    my, mx = 101 // f, 77 // f
    d = np.where(bad, 0.0, data)[: my * f, : mx * f].reshape(my, f, mx, f)
    g = (~bad)[: my * f, : mx * f].reshape(my, f, mx, f).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        want = d.sum(axis=(1, 3)) / g
    assert empty[0, 0] and np.isnan(mean[0, 0])
    np.testing.assert_array_equal(n, g)
    np.testing.assert_allclose(mean, want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("maxiters", [1, 5, 10])
def test_clipped_stats_are_astropys(maxiters):
    from astropy.stats import sigma_clipped_stats

    from glue_zeropoint.zeropoint.sky import _clipped_stats

    rng = np.random.default_rng(maxiters)
    values = np.r_[rng.normal(500.0, 20.0, 200_000), rng.uniform(600, 5000, 3000), np.nan,
                   np.inf]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # the NaN and inf
        _, med, std = sigma_clipped_stats(values, sigma=3.0, maxiters=maxiters)
    got = _clipped_stats(values, 3.0, maxiters)
    assert got[0] == pytest.approx(float(med), rel=1e-12)
    assert got[1] == pytest.approx(float(std), rel=1e-9)
    assert np.isnan(_clipped_stats(np.array([np.nan]), 3.0, 5)[0])


def test_small_sample_clipping_is_astropys():
    """The clipped median and mean of annuli and mesh boxes (a few to ~1,000 values, integer
    ADU with ties, one to ten passes, asymmetric bounds): each pass searches the next median
    on one side of the last only, and the last pass's statistics are returned; the numbers
    are astropy's ``SigmaClip`` (median centre, population std) of the same values."""
    from astropy.stats import SigmaClip

    from glue_zeropoint.photometry import _kernels as K

    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(1, 1100))
        x = rng.normal(1000.0, 10.0, n)
        if trial % 3 == 0:
            x = np.round(x)  # raw ADU: many equal values
        k = int(rng.integers(0, max(n // 8, 1)))
        x[:k] += rng.exponential(300.0, k)  # stars, hot pixels
        rng.shuffle(x)
        lo, hi = (3.0, 3.0) if trial % 2 else (2.0, 3.5)
        iters = int((1, 3, 10)[trial % 3])
        kept = SigmaClip(sigma_lower=lo, sigma_upper=hi, maxiters=iters,
                         cenfunc="median", stdfunc="std")(x, masked=False)
        med, std, m = K._clipped_median(x.copy(), n, lo, hi, iters)
        mean, std2, m2 = K._clipped_mean(x.copy(), n, lo, hi, iters)
        assert m == m2 == kept.size
        assert med == np.median(kept)
        assert std == pytest.approx(np.std(kept), rel=1e-12, abs=1e-12)
        assert mean == pytest.approx(np.mean(kept), rel=1e-14)
        assert std2 == std


def test_sky_segments_are_detect_sources():
    from photutils.segmentation import detect_sources

    from glue_zeropoint.zeropoint.sky import _segments

    rng = np.random.default_rng(5)
    img = ndimage.uniform_filter(rng.normal(0.0, 1.0, (300, 280)), 3)
    bad = rng.random(img.shape) < 0.02
    for npix in (1, 5, 12):
        segm = detect_sources(img, 0.3, n_pixels=npix, mask=bad)
        want = np.zeros(img.shape, bool) if segm is None else segm.data > 0
        got = _segments(img > 0.3, bad, npix)
        assert want.sum() > 100
        np.testing.assert_array_equal(got, want)
    assert not _segments(img > 99.0, bad, 5).any()


def test_a_part_whose_candidates_all_fail_says_nothing():
    """The only candidate of an edge strip is nothing DAOFIND accepts (an empty patch):
    photutils warns for that part ("none pass the filtering criteria"; the demo printed it
    twice), which is no news for the user; the interior stars are found."""
    from glue_zeropoint.photometry.psf import PSF

    sub = np.zeros((1024, 1024))
    yy, xx = np.mgrid[0:1024, 0:1024]
    xs, ys = np.array([300.0, 700.0, 512.0, 0.0]), np.array([300.0, 600.0, 900.0, 500.0])
    for x, y in zip(xs[:3], ys[:3], strict=True):
        sub += 1000.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.3 ** 2))
    cand = D.Candidates(ys.astype(int), xs.astype(int), np.full(4, 50.0), np.full(4, 100.0),
                        0.1, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoDetectionsWarning)
        found = D._run_finder(None, PSF(fwhm=3.0), cand, sub, np.zeros(sub.shape, bool), 1.0)
    assert len(found) == 3
    np.testing.assert_allclose(np.sort(np.asarray(found["x_centroid"])), [300, 512, 700],
                               atol=1e-6)


def test_a_wandered_centroid_takes_the_nearest_free_candidate():
    """A finder row far from every candidate takes the nearest free one within 3 x limit,
    nearest by distance (scipy's ``return_sorted`` orders by index)."""
    cand = D.Candidates(np.array([0, 0, 0]), np.array([0, 9, 5]), np.ones(3), np.ones(3),
                        0.1, 1.0)
    j, wander = D._assign_candidates(np.array([0.0, 6.5]), np.array([0.0, 0.0]), cand, 1.0)
    assert j.tolist() == [0, 2] and wander.tolist() == [False, True]


@pytest.mark.parametrize("ms, shape, box", [((4, 5), (120, 150), 32), ((1, 7), (40, 200), 32),
                                            ((6, 1), (190, 20), 32), ((1, 1), (9, 9), 8)])
def test_bilinear_mesh_is_the_bilinear_interpolation(ms, shape, box):
    """The background mesh to every pixel (box centres, edges held), per-column weights
    computed once: the plain per-pixel formula."""
    rng = np.random.default_rng(1)
    mesh = rng.normal(size=ms)
    my, mx = ms
    ny, nx = shape

    def axis(n, m):
        f = np.clip((np.arange(n) + 0.5) / box - 0.5, 0.0, m - 1.0)
        i0 = np.minimum(f.astype(int), max(m - 2, 0))
        return i0, (i0 + 1 if m > 1 else i0), (f - i0 if m > 1 else np.zeros(n))

    j0, j1, ty = axis(ny, my)
    i0, i1, tx = axis(nx, mx)
    ty, tx = ty[:, None], tx[None, :]
    want = ((1 - ty) * ((1 - tx) * mesh[j0][:, i0] + tx * mesh[j0][:, i1])
            + ty * ((1 - tx) * mesh[j1][:, i0] + tx * mesh[j1][:, i1]))
    np.testing.assert_allclose(K.bilinear_mesh(mesh, ny, nx, box), want, rtol=1e-14,
                               atol=1e-14)


@pytest.mark.parametrize("keep", [None, 150.0])
def test_subtract_mesh_is_the_level_subtracted_and_bad_zeroed(keep):
    """find_stars' background subtraction in one pass: exactly ``data - level`` with the bad
    pixels zeroed, saturated (finite, >= keep) bad pixels keeping their value."""
    rng = np.random.default_rng(3)
    data = rng.normal(100.0, 30.0, (130, 170))
    data[5, 5] = np.nan
    bad = rng.random(data.shape) < 0.1
    bad[5, 5] = True
    bkg = D.estimate_background(data, np.zeros(data.shape, bool), box_size=32)
    sub, bad2 = bkg.subtracted(data, bad, keep)
    want_bad = bad if keep is None else bad & ~(np.isfinite(data) & (data >= keep))
    want = data - bkg.level
    want[want_bad] = 0.0
    np.testing.assert_array_equal(bad2, want_bad)
    np.testing.assert_array_equal(sub, want)  # the same arithmetic, bit for bit
    assert keep is None or (want_bad != bad).any()  # some saturated pixels were kept


def test_background_of_another_image_is_refused():
    """A background passed to find_stars from a differently shaped image is an error, not a
    misplaced subtraction."""
    from glue_zeropoint.exceptions import InputError

    bkg = D.estimate_background(np.ones((130, 170)), np.zeros((130, 170), bool), box_size=32)
    with pytest.raises(InputError, match="shape"):
        bkg.subtracted(np.ones((100, 100)), np.zeros((100, 100), bool))
