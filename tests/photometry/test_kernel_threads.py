"""The compiled kernels run on one thread when their work is small and on all threads when it
is large (``_kernels._threads_by_work``, issue 13's speed work): the answer must not depend on
which."""

import numba
import numpy as np
import pytest

from glue_zeropoint.photometry import _kernels as K
from glue_zeropoint.photometry.psf import PSF


def _cases():
    rng = np.random.default_rng(7)
    ny, nx = 120, 150
    data = rng.normal(100.0, 5.0, (ny, nx))
    for _ in range(12):  # a few stars, so that clipping and maxima have work to do
        y, x = rng.uniform(10, ny - 10), rng.uniform(10, nx - 10)
        yy, xx = np.mgrid[0:ny, 0:nx]
        data += 3000.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.5)
    var = np.abs(data) + 25.0
    bad = rng.random((ny, nx)) < 0.01
    n = 40
    xs, ys = rng.uniform(5, nx - 5, n), rng.uniform(5, ny - 5, n)
    e0 = np.empty(0)
    kern = np.exp(-0.5 * np.arange(-4, 5) ** 2 / 1.5 ** 2)
    return [
        ("aperture_sums", (data, var, bad, xs, ys, rng.uniform(2, 8, n), True)),
        ("annulus_sky", (data, var, bad, bad, xs, ys, np.full(n, 8.0), np.full(n, 14.0), 3.0,
                         3.0, 5, True, False, False, e0, e0, e0, np.full(n, -1, np.int64))),
        ("windowed_centroids", (data, bad, xs, ys, np.full(n, 100.0), 1.3, 30, 3.0)),
        ("mesh_stats", (data, bad, 32, 1, 3.0, 10)),
        ("local_maxima", (data, bad, 130.0, 2)),
        ("smooth_separable", (data, kern / kern.sum())),
        ("bilinear_mesh", (rng.normal(size=(4, 5)), ny, nx, 32)),
        ("subtract_mesh", (data, bad, rng.normal(size=(4, 5)), 32, 140.0)),
        ("block_mean", (data, bad, 4)),
        ("fraction_arcs", (np.linspace(0.0, 20.0, 30), 6.0, 256, *PSF(fwhm=3.0)._profile())),
    ]


@pytest.mark.parametrize("name, args", _cases(), ids=[c[0] for c in _cases()])
def test_one_thread_and_all_threads_agree(name, args, monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only on this machine")
    run = getattr(K, name)
    monkeypatch.setattr(K, "SERIAL_BELOW_NS", np.inf)  # every call on one thread
    seen = []
    orig = numba.set_num_threads
    monkeypatch.setattr(numba, "set_num_threads", lambda n: (seen.append(n), orig(n)))
    serial = run(*args)
    assert seen and seen[0] == 1 and numba.get_num_threads() > 1  # and restored after
    monkeypatch.setattr(K, "SERIAL_BELOW_NS", 0.0)  # every call on all threads
    seen.clear()
    parallel = run(*args)
    assert not seen
    serial = serial if isinstance(serial, tuple) else (serial,)
    parallel = parallel if isinstance(parallel, tuple) else (parallel,)
    assert len(serial) == len(parallel)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(np.size(a) for a in serial)


def test_small_work_runs_on_one_thread(monkeypatch):
    seen = []
    orig = numba.set_num_threads
    monkeypatch.setattr(numba, "set_num_threads", lambda n: (seen.append(n), orig(n)))
    K.bilinear_mesh(np.ones((2, 2)), 50, 60, 32)  # 3,000 pixels: one thread
    if numba.get_num_threads() > 1:
        assert seen[:1] == [1]
    seen.clear()
    K.local_maxima(np.zeros((2000, 2000)), np.zeros((2000, 2000), bool), 1.0, 2)  # all threads
    assert seen == []
