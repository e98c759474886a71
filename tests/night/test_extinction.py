"""The night's extinction line, clouds and verdict (glue_zeropoint.night.extinction)."""

import numpy as np
import pytest

from glue_zeropoint.exceptions import FitError
from glue_zeropoint.night.extinction import (
    colour_airmass_term,
    fit_extinction,
    night_verdict,
    solve_sigma_int,
)


def test_clean_line_recovered_with_errors():
    rng = np.random.default_rng(3)
    x = np.linspace(1.0, 2.5, 25)
    y = 22.0 - 0.25 * x + rng.normal(0, 0.01, x.size)
    f = fit_extinction(x, y, np.full(x.size, 0.01), band="V")
    assert abs(f.k - 0.25) < f.k_ci95
    # the larger of the analytic error and the jackknife's (noisy with 25 frames)
    analytic = 0.01 / np.sqrt(x.size) / np.std(x)
    assert 0.7 * analytic < f.k_err < 1.6 * analytic
    assert not f.cloudy.any() and f.n_used == 25
    assert f.transparency == pytest.approx(10 ** (0.4 * f.residual))
    assert night_verdict([f])[0] == "photometric"


def test_a_run_of_cloudy_frames_is_named_and_left_out():
    rng = np.random.default_rng(5)
    x = np.linspace(1.0, 2.5, 30)
    y = 21.0 - 0.3 * x + rng.normal(0, 0.005, x.size)
    cloud = np.zeros(x.size, bool)
    cloud[8:17] = True  # 30% of the night under a cloud of 0.1-0.3 mag
    y[cloud] -= rng.uniform(0.1, 0.3, cloud.sum())
    f = fit_extinction(x, y, np.full(x.size, 0.005), band="B")
    assert np.array_equal(f.cloudy, cloud)
    assert abs(f.k - 0.3) < f.k_ci95
    verdict, reason = night_verdict([f])
    assert verdict == "not photometric"
    assert "9 frame(s) below the extinction line" in reason and "clouds" in reason
    assert np.all(f.transparency[cloud] < 0.95)


def test_intrinsic_scatter_solved():
    rng = np.random.default_rng(7)
    x = np.linspace(1.0, 2.0, 200)
    y = 20.0 - 0.2 * x + rng.normal(0, 0.02, x.size)
    f = fit_extinction(x, y, np.full(x.size, 0.005))
    assert f.sigma_int == pytest.approx(np.sqrt(0.02 ** 2 - 0.005 ** 2), rel=0.15)
    assert solve_sigma_int(np.array([0.1, -0.1]), np.array([1.0, 1.0]), 1) == 0.0
    # chi^2/dof = 1 at the solution, also where it lies beyond max|resid| + 1 (three large
    # residuals, one degree of freedom: the bisection this replaced stopped at that bound)
    for resid, err, dof in (([0.03, -0.05, 0.01, 0.04], [0.01] * 4, 2),
                            ([3.0, -3.0, 3.0], [0.01] * 3, 1)):
        resid, err = np.array(resid), np.array(err)
        s = solve_sigma_int(resid, err, dof)
        assert np.sum(resid ** 2 / (err ** 2 + s ** 2)) == pytest.approx(dof, rel=1e-9)
    # no answer from non-finite values or errors that are not > 0
    for resid, err in (([0.0, 0.1, 0.2], [0.0, 0.01, 0.01]), ([np.nan, 0.1, 0.2], [0.01] * 3),
                       ([0.0, 0.1, 0.2], [0.01, np.inf, 0.01])):
        assert np.isnan(solve_sigma_int(np.array(resid), np.array(err), 1))


def test_user_exclusion_and_too_few_frames():
    x = np.array([1.0, 1.5, 2.0, 2.5])
    y = 21 - 0.2 * x
    f = fit_extinction(x, y, np.full(4, 0.01), use=[True, True, True, False])
    assert f.n_frames == 3 and not f.used[3]
    with pytest.raises(FitError, match="at least 3"):
        fit_extinction(x[:2], y[:2], np.full(2, 0.01), band="R")


def test_small_airmass_range_uses_a_given_k():
    x = np.linspace(1.20, 1.25, 10)
    y = 21 - 0.2 * x + np.random.default_rng(1).normal(0, 0.005, 10)
    f = fit_extinction(x, y, np.full(10, 0.005), k=0.2, k_err=0.02)
    assert f.k_fixed and f.k == 0.2 and f.zp0 == pytest.approx(21.0, abs=0.01)
    free = fit_extinction(x, y, np.full(10, 0.005))
    assert "too small" in free.notes[0]


def test_negative_k_is_not_photometric():
    x = np.linspace(1.0, 2.0, 12)
    f = fit_extinction(x, 21 + 0.2 * x, np.full(12, 0.005))
    assert night_verdict([f])[0] == "not photometric"


def test_colour_airmass_term_only_when_constrained():
    x = np.linspace(1.0, 2.5, 12)
    c = 0.05 - 0.03 * x + np.random.default_rng(0).normal(0, 0.002, 12)
    out = colour_airmass_term(x, c, np.full(12, 0.002))
    assert out["fitted"] and out["k2"] == pytest.approx(0.03, abs=0.006)
    flat = colour_airmass_term(x, np.full(12, 0.05), np.full(12, 0.01))
    assert not flat["fitted"] and "not significant" in flat["reason"]
    short = colour_airmass_term(x[:3], c[:3], np.full(3, 0.002))
    assert not short["fitted"] and "not constrained" in short["reason"]


def test_unconstrained_night_is_undetermined():
    rng = np.random.default_rng(2)
    x = np.linspace(1.60, 1.90, 8)
    f = fit_extinction(x, 12.7 - 0.1 * x + rng.normal(0, 0.05, 8), np.full(8, 0.01))
    verdict, reason = night_verdict([f])
    assert verdict == "undetermined" and "constrains k" in reason
