"""The PSF core fit's analytic Jacobian and the wing fit's grid start (the speed work of
issue 13 must not change what is fitted)."""

import math

import numpy as np
import pytest

from glue_zeropoint.photometry.psf import (
    MIN_TAIL_INDEX,
    _core_jacobian,
    _core_model,
    _fit_core,
    _fit_tail_law,
    law_annulus_mean,
)


@pytest.mark.parametrize("p", [
    [5000.0, 7.2, 6.9, math.log(1.3), math.log(0.9), 0.4, math.log(2.0)],
    [800.0, 5.0, 5.4, math.log(0.4), math.log(0.35), -1.1, math.log(0.3)],
    [1.0e5, 10.1, 9.7, math.log(3.0), math.log(3.0), 2.5, math.log(40.0)],
])
def test_core_jacobian_matches_finite_differences(p):
    os = 4
    sub = (np.arange(os) + 0.5) / os - 0.5
    yy, xx = np.mgrid[0:15, 0:15]
    gx = xx.ravel().astype(float)  # pixel centres; the kernel adds the sub-samples
    gy = yy.ravel().astype(float)
    assert sub.size == os
    jac = _core_jacobian(np.asarray(p), gx, gy, os)
    # a floor for derivatives that vanish (theta of a round star): the rounding noise of a
    # finite difference of the model
    peak = np.max(np.abs(_core_model(np.asarray(p), gx, gy, os)))
    for k in range(7):
        h = 1e-6 * max(abs(p[k]), 1.0)
        hi, lo = np.array(p, float), np.array(p, float)
        hi[k] += h
        lo[k] -= h
        num = (_core_model(hi, gx, gy, os) - _core_model(lo, gx, gy, os)) / (2 * h)
        rounding = 100 * np.finfo(float).eps * peak / h
        assert np.max(np.abs(jac[:, k] - num)) < 1e-5 * np.max(np.abs(num)) + rounding, k


def test_core_fit_recovers_a_gaussian_width():
    """A Gaussian star drawn on a fine grid (not the fitted family): FWHM within 1%."""
    rng = np.random.default_rng(4)
    n, fwhm, x0, y0 = 21, 3.0, 10.3, 9.8
    sig = fwhm / (2 * math.sqrt(2 * math.log(2)))
    sub = (np.arange(10) + 0.5) / 10 - 0.5
    yy, xx = np.mgrid[0:n, 0:n]
    img = sum(np.exp(-((xx + a - x0) ** 2 + (yy + b - y0) ** 2) / (2 * sig ** 2))
              for a in sub for b in sub)
    img = img * 2e5 / img.sum()
    img = rng.poisson(img + 20.0) - 20.0
    fa, fb, _th, xc, yc, flux = _fit_core(img, np.ones(img.shape, bool), 10, 10, 2.5, 20.0)
    assert abs(math.sqrt(fa * fb) / fwhm - 1) < 0.01
    assert abs(xc - x0) < 0.02 and abs(yc - y0) < 0.02
    assert abs(flux / 2e5 - 1) < 0.02


def test_tail_fit_finds_the_injected_law():
    """Rings of a softened power law minus its sky-annulus mean: index and softening back."""
    a, p, c = 0.02, 4.2, 2.5
    q_true = (math.log(a), p, math.log(c))
    r = np.linspace(4.0, 15.0, 12)
    sky_in, sky_out = 20.0, 30.0
    s = a * (r ** 2 + c * c) ** (-p / 2) - law_annulus_mean(q_true, sky_in, sky_out)
    err = np.full(r.size, 1e-3 * s.min())
    res = _fit_tail_law((r, s, err, sky_in, sky_out), np.ones(r.size, bool), True)
    assert res is not None
    assert abs(res.x[1] - p) < 0.01
    assert abs(math.exp(res.x[2]) - c) < 0.02
    assert res.x[1] >= MIN_TAIL_INDEX


def _gaussian_curves(radii, fluxes, fwhm, sky_offsets):
    """Noise-free curves of growth of Gaussian stars (no wing beyond ~2.5 FWHM) whose sky
    levels are off by ``sky_offsets`` (per pixel): every ring of a star gains the offset."""
    sig = fwhm / 2.3548
    r = np.asarray(radii, float)
    inside = 1.0 - np.exp(-0.5 * (r / sig) ** 2)
    return (np.asarray(fluxes, float)[:, None] * inside[None, :]
            + np.asarray(sky_offsets, float)[:, None] * math.pi * r[None, :] ** 2)


def test_a_sky_error_shared_by_the_rings_is_not_taken_for_a_wing():
    """Three Gaussian stars whose sky levels all came out 1.5 of their errors low: each ring
    gains the same excess, a flat 'tail'. Judged ring by ring (rings independent) it is
    significant and a flat power law extrapolates it into missing light; with each star's
    sky error shared by its rings (their covariance), it is what a sky error looks like and
    no tail is added."""
    from glue_zeropoint.photometry.psf import fit_power_tail

    radii = np.linspace(0.75, 12.0, 28)
    fluxes = np.array([4e5, 2e5, 1e5])
    pixel_var = np.full(3, 100.0)  # sky noise 10 e- per pixel
    sky_var = pixel_var * 1.57 / 600.0  # the sky level's variance from a 600-pixel annulus
    curves = _gaussian_curves(radii, fluxes, 3.0, 1.5 * np.sqrt(sky_var))
    args = (radii, curves, pixel_var, 15.0, 21.0, 6.0)
    flat = fit_power_tail(*args)
    assert flat["index"] is not None and flat["missing"] > 0.001  # the excess taken for light
    shared = fit_power_tail(*args, sky_var=sky_var)
    assert shared["index"] is None and shared["missing"] == 0.0
    # a real wing is still found with the covariance: add a r**-3.5 tail to the rings
    ring = np.diff(np.r_[0.0, math.pi * radii ** 2])
    mid = np.sqrt(np.r_[radii[0] ** 2 / 2, 0.5 * (radii[1:] ** 2 + radii[:-1] ** 2)])
    wing = np.cumsum(1e-2 * (mid ** 2 + 4.0) ** -1.75 * ring)
    winged = fit_power_tail(radii, curves + fluxes[:, None] * wing[None, :], pixel_var,
                            15.0, 21.0, 6.0, sky_var=sky_var)
    assert winged["index"] is not None and winged["missing"] > 0.0


def test_the_curve_of_growth_mean_does_not_flatten_on_a_chance_scatter():
    """A bright star (error 0.1%) and two faint ones 1.4 and 1.7 of their errors away: chi^2
    is within its chance range, so the mean stays on the bright star with an error near the
    floor-limited one (it was 1.203 +- 0.024 when every chi^2 above its dof solved an extra
    scatter); stars that disagree far beyond their errors still get one."""
    from glue_zeropoint.photometry.aperture import _robust_weighted_mean

    v = np.array([1.1967, 1.1802, 1.2784])
    e = np.array([0.0010, 0.0116, 0.0476])
    mean, err, n = _robust_weighted_mean(v, e)
    assert n == 3 and abs(mean - 1.1967) < 0.002 and err < 0.005
    v = np.array([1.00, 1.06, 0.94, 1.05, 0.95, 1.00])
    e = np.full(v.size, 0.02)  # chi^2 29 for 5 dof
    mean, err, n = _robust_weighted_mean(v, e)
    assert n == 6 and abs(mean - 1.0) < 0.01 and err > 0.012  # scatter 0.045 / sqrt(6)
    # two stars: half their difference only when they disagree
    assert _robust_weighted_mean(np.array([1.10, 1.11]), np.array([0.01, 0.01]))[1] < 0.0075
    assert _robust_weighted_mean(np.array([1.10, 1.20]), np.array([0.01, 0.01]))[1] > 0.049


@pytest.mark.parametrize("q", [(math.log(0.02), 4.2, math.log(2.5)),
                               (math.log(3.0), 3.05, math.log(0.02)),
                               (math.log(0.5), 3.0, math.log(1.0))])
def test_tail_jacobian_matches_finite_differences(q):
    from glue_zeropoint.photometry.psf import _tail_jacobian, _tail_model

    r = np.linspace(3.0, 14.0, 9)
    jac = _tail_jacobian(np.asarray(q), r, 18.0, 26.0)
    for k in range(3):
        h = 1e-6
        hi, lo = np.array(q, float), np.array(q, float)
        hi[k] += h
        lo[k] -= h
        num = (_tail_model(hi, r, 18.0, 26.0) - _tail_model(lo, r, 18.0, 26.0)) / (2 * h)
        assert np.allclose(jac[:, k], num, rtol=1e-5, atol=1e-9 * np.max(np.abs(num))), k


def _scipy_core_fit(stamp, x0, y0, fwhm0, noise2):
    """The reference: the same model, start and bounds through scipy's least_squares."""
    from scipy.optimize import least_squares

    from glue_zeropoint.photometry.psf import _subgrid

    os = int(min(12, max(3, math.ceil(4.0 / max(fwhm0, 0.3)))))
    yy, xx = np.mgrid[0:stamp.shape[0], 0:stamp.shape[1]]
    use = (xx - x0) ** 2 + (yy - y0) ** 2 <= max(2.5, 2.0 * fwhm0) ** 2
    px, py, z = xx[use].astype(float), yy[use].astype(float), stamp[use].astype(float)
    sig = np.sqrt(noise2 + np.clip(z, 0, None))
    a0 = fwhm0 / (2.0 * math.sqrt(2.0 ** (1.0 / 3.0) - 1.0))
    p0 = [max(np.clip(z, 0, None).sum(), 1e-6) * 1.2, x0, y0, math.log(a0), math.log(a0), 0.0,
          math.log(2.0)]
    lo = [0.0, x0 - 1.5, y0 - 1.5, math.log(0.05), math.log(0.05), -2 * math.pi,
          math.log(0.1)]
    hi = [np.inf, x0 + 1.5, y0 + 1.5, math.log(200.0), math.log(200.0), 2 * math.pi,
          math.log(1000.0)]
    sub = _subgrid(os)
    assert sub.size == os

    def resid(p):
        return (_core_model(p, px, py, os) - z) / sig

    def jac(p):
        return _core_jacobian(p, px, py, os) / sig[:, None]

    res = least_squares(resid, p0, jac=jac, bounds=(lo, hi), x_scale="jac", max_nfev=150)
    fl, xc, yc, la, lb, _th, lbeta = res.x
    beta = 1.0 + math.exp(lbeta)
    k = 2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0)
    return k * math.exp(0.5 * (la + lb)), xc, yc, fl, beta


@pytest.mark.parametrize("profile,fwhm,ell", [("gauss", 3.0, 0.0), ("gauss", 0.7, 0.0),
                                              ("moffat2", 2.5, 0.25), ("moffat5", 5.0, 0.1)])
def test_compiled_core_fit_finds_scipys_minimum(profile, fwhm, ell):
    """The compiled Levenberg-Marquardt lands where scipy's trf does, a Gaussian star's
    kurtosis at its bound (beta -> 1000) included."""
    rng = np.random.default_rng(int(fwhm * 10))
    n = int(max(15, 6 * fwhm)) | 1
    x0, y0 = n // 2 + 0.23, n // 2 - 0.31
    sub = (np.arange(10) + 0.5) / 10 - 0.5
    yy, xx = np.mgrid[0:n, 0:n]
    img = np.zeros((n, n))
    for a in sub:
        for b in sub:
            r2 = (xx + a - x0) ** 2 / (1 - ell) + (yy + b - y0) ** 2 * (1 - ell)
            if profile == "gauss":
                img += np.exp(-r2 / (2 * (fwhm / 2.3548) ** 2))
            else:
                beta = 2.0 if profile == "moffat2" else 5.0
                al2 = (fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))) ** 2
                img += (1 + r2 / al2) ** -beta
    img = rng.poisson(img * 5e4 / img.sum() + 30.0) - 30.0
    ref = _scipy_core_fit(img, n // 2, n // 2, fwhm, 30.0)
    fa, fb, _th, xc, yc, flux = _fit_core(img, np.ones(img.shape, bool), n // 2, n // 2,
                                          fwhm, 30.0)
    assert abs(math.sqrt(fa * fb) / ref[0] - 1) < 1e-4
    assert abs(xc - ref[1]) < 1e-4 and abs(yc - ref[2]) < 1e-4
    assert abs(flux / ref[3] - 1) < 1e-4
    if profile == "gauss" and fwhm > 1:
        assert ref[4] > 100  # the case where a bound holds


def test_core_fit_refuses_non_finite_input():
    img = np.ones((11, 11))
    img[5, 5] = 50.0
    assert _fit_core(img, np.ones(img.shape, bool), 5, 5, 2.0, np.nan) is None


@pytest.mark.parametrize("kind", ["gaussian", "growth", "growth_no_tail"])
def test_displaced_light_table_is_the_integral_of_the_profile(kind):
    """The compiled table (exact ring areas, the midpoint rule over a smooth core or tail) is
    the integral of PSF.surface_brightness over the displaced circle: a fine polar grid of
    the circle agrees to 2e-4 of the star's light (the grid's own error at the rings' edges),
    centred, overlapping and far; centred on rings, the table is the curve of growth."""
    from glue_zeropoint.photometry import _kernels as K
    from glue_zeropoint.photometry.psf import FRACTION_RADII, PSF

    psf = PSF(fwhm=2.2) if kind == "gaussian" else PSF(
        fwhm=2.0, radii=(1, 2, 3, 4, 6, 8), growth=(0.2, 0.5, 0.7, 0.8, 0.9, 0.95),
        tail_amplitude=0.02 if kind == "growth" else None, tail_index=3.5,
        tail_softening=1.5, growth_stars=5)
    radius = 3.3
    d = np.r_[np.linspace(0.0, 20.0, 17), 3.3, 4.0, 8.0, 11.3]  # edges on the rings too
    n_r, n_th = 1000, 1440
    rr = (np.arange(n_r) + 0.5) / n_r * radius
    th = (np.arange(n_th) + 0.5) / n_th * 2 * np.pi
    want = np.empty(d.size)
    for k, dk in enumerate(d):
        R, T = np.meshgrid(rr, th, indexing="ij")
        sb = psf.surface_brightness(np.hypot(R * np.cos(T) + dk, R * np.sin(T)))
        want[k] = np.sum(sb * R) * (radius / n_r) * (2 * np.pi / n_th)
    got = K.fraction_arcs(d, radius, FRACTION_RADII, *psf._profile())
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-4)
    assert got[0] == pytest.approx(float(psf.encircled(radius)),
                                   abs=1e-4 if kind == "gaussian" else 1e-12)


@pytest.mark.parametrize("correlated", [False, True])
def test_compiled_tail_fit_finds_scipys_minimum(correlated):
    """The wing law through the compiled fit lands where scipy's least_squares does, with
    independent ring errors and with a shared (sky) error whitened by its covariance."""
    from scipy.linalg import solve_triangular
    from scipy.optimize import least_squares

    from glue_zeropoint.photometry.psf import _tail_jacobian, _tail_model

    rng = np.random.default_rng(5)
    q_true = (math.log(0.03), 3.8, math.log(2.0))
    r = np.linspace(3.0, 12.0, 10)
    sky_in, sky_out = 15.0, 22.0
    clean = _tail_model(np.asarray(q_true), r, sky_in, sky_out)
    err = 0.03 * clean.max() * np.ones(r.size)
    cov = np.diag(err ** 2) + (np.full((r.size, r.size), (0.5 * err[0]) ** 2)
                               if correlated else 0.0)
    s = clean + np.linalg.cholesky(cov) @ rng.normal(size=r.size)
    rings = (r, s, err, sky_in, sky_out) + ((cov,) if correlated else ())
    res = _fit_tail_law(rings, np.ones(r.size, bool), True)
    chol = np.linalg.cholesky(cov)
    lo, hi = [-80.0, MIN_TAIL_INDEX, math.log(1e-2)], [80.0, 20.0, math.log(3.0)]
    ref = least_squares(
        lambda q: solve_triangular(chol, _tail_model(q, r, sky_in, sky_out) - s, lower=True),
        res.x, jac=lambda q: solve_triangular(chol, _tail_jacobian(q, r, sky_in, sky_out),
                                              lower=True), bounds=(lo, hi))
    assert abs(res.cost - ref.cost) <= 1e-6 * ref.cost + 1e-12
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(res.jac, ref.jac, rtol=1e-4, atol=1e-6 * np.abs(ref.jac).max())


def test_surface_brightness_is_the_rings_then_the_tail_law():
    from glue_zeropoint.photometry.psf import PSF

    radii, growth = (1.0, 2.0, 3.0, 4.0, 6.0), (0.2, 0.5, 0.7, 0.8, 0.9)
    psf = PSF(fwhm=2.0, radii=radii, growth=growth, tail_amplitude=0.02, tail_index=3.5,
              tail_softening=1.5, growth_stars=5)
    edges = np.r_[0.0, radii]
    rings = np.diff(np.r_[0.0, growth]) / np.diff(math.pi * edges ** 2)
    mid = 0.5 * (edges[1:] + edges[:-1])
    np.testing.assert_allclose(psf.surface_brightness(mid), rings, rtol=1e-15)
    r = np.array([6.5, 10.0, 30.0])
    np.testing.assert_allclose(psf.surface_brightness(r), 0.02 * (r ** 2 + 2.25) ** -1.75,
                               rtol=1e-14)
    assert psf.surface_brightness(np.ones((2, 3))).shape == (2, 3)
    g = PSF(fwhm=2.5)
    s2 = g.sigma_eff ** 2
    np.testing.assert_allclose(g.surface_brightness(r / 10),
                               np.exp(-0.5 * (r / 10) ** 2 / s2) / (2 * math.pi * s2), rtol=1e-14)
    assert np.isnan(psf.surface_brightness(np.nan))
    assert PSF(fwhm=2.0, radii=radii, growth=growth).surface_brightness(7.0) == 0.0
