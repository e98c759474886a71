"""The simulator's truth is self-consistent: pixel-integrated stars hold the flux they were
given and have the FWHM they were asked for, checked with estimators written here (exact erf
pixel integrals, dblquad of the textbook Moffat, second moments), not with the simulator's own
code nor the measurement's. Pipeline accuracy is checked elsewhere (tests/benchmarks)."""

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy.special import erf

from glue_zeropoint.simulate import (
    Aureole,
    FilterTruth,
    Gaussian,
    Moffat,
    SkyModel,
    Trailed,
    make_field,
    make_psf,
    reference_catalog,
    render_psf,
    simulate_image,
    simulate_raw_image,
)

SQ8LN2 = np.sqrt(8 * np.log(2))


def gaussian_pixels(shape, x0, y0, sigma, flux=1.0):
    """Exact pixel integrals of a round Gaussian (independent of the simulator)."""
    ny, nx = shape
    ex = np.diff(erf((np.arange(nx + 1) - 0.5 - x0) / (np.sqrt(2) * sigma))) / 2
    ey = np.diff(erf((np.arange(ny + 1) - 0.5 - y0) / (np.sqrt(2) * sigma))) / 2
    return flux * ey[:, None] * ex[None, :]


def moments(img):
    """Centroid and second moments (pixel-centre sums) of a noiseless image."""
    ny, nx = img.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    f = img.sum()
    xc, yc = (img * xx).sum() / f, (img * yy).sum() / f
    mxx = (img * (xx - xc) ** 2).sum() / f
    myy = (img * (yy - yc) ** 2).sum() / f
    mxy = (img * (xx - xc) * (yy - yc)).sum() / f
    return xc, yc, mxx, myy, mxy


@pytest.mark.parametrize("fwhm", [0.4, 0.5, 1.0, 3.0, 6.0])
@pytest.mark.parametrize("family", ["gaussian", "moffat:beta=3", "moffat:beta=2",
                                    "moffat:beta=5", "elliptical",
                                    "trailed:length=5,angle=20", "aureole:halo_fraction=0.04"])
def test_total_flux_of_a_pixel_integrated_star(family, fwhm):
    psf = make_psf(family, fwhm=fwhm)
    rng = np.random.default_rng(int(fwhm * 10))
    n = 2 * psf.stamp_radius() + 41
    x0, y0 = n // 2 + rng.uniform(-0.5, 0.5, 2)
    img, frac = render_psf((n, n), [x0], [y0], [1e5], psf)
    # the stamp lies inside the image: what was drawn is the stamp's share, and the light
    # beyond the stamp is bounded by the family's analytic tail
    assert img.sum() == pytest.approx(1e5 * frac["stamp"][0], rel=1e-12)
    assert frac["image"][0] == pytest.approx(frac["stamp"][0], rel=1e-12)
    assert img.sum() == pytest.approx(1e5, rel=1e-3)
    assert -1e-9 <= frac["outside"][0] <= psf.outside(psf.stamp_radius()) + 2e-6


@pytest.mark.parametrize("fwhm", [0.4, 0.5, 1.0, 3.0])
def test_gaussian_pixels_are_the_exact_integrals(fwhm):
    psf = Gaussian(fwhm)
    x0, y0 = 20.37, 19.81
    img, _ = render_psf((41, 41), [x0], [y0], [1.0], psf)
    exact = gaussian_pixels((41, 41), x0, y0, fwhm / SQ8LN2)
    assert np.abs(img - exact).max() < 1e-7
    # an independent FWHM estimator: least-squares fit of the exact pixel-integrated model
    def resid(p):
        return (gaussian_pixels((41, 41), p[0], p[1], p[2], p[3]) - img).ravel()

    fit = optimize.least_squares(resid, [20.2, 20.0, 0.8 * fwhm / SQ8LN2, 0.9])
    assert fit.x[2] * SQ8LN2 == pytest.approx(fwhm, rel=1e-3)
    assert fit.x[3] == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("fwhm", [0.4, 0.5, 2.0])
def test_moffat_pixels_are_the_integrals_of_the_textbook_profile(fwhm):
    beta = 3.0
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))

    def moffat(y, x, x0, y0):
        return (beta - 1) / (np.pi * alpha ** 2) * (1 + ((x - x0) ** 2 + (y - y0) ** 2)
                                                    / alpha ** 2) ** -beta

    x0, y0 = 10.23, 9.66
    img, _ = render_psf((21, 21), [x0], [y0], [1.0], Moffat(fwhm, beta))
    for j, i in [(10, 10), (10, 11), (9, 10), (11, 9), (10, 13)]:
        exact, _ = integrate.dblquad(moffat, i - 0.5, i + 0.5, j - 0.5, j + 0.5,
                                     args=(x0, y0), epsabs=1e-10, epsrel=1e-9)
        assert img[j, i] == pytest.approx(exact, abs=2e-6)


@pytest.mark.parametrize("beta", [2.5, 3.0, 5.0])
def test_moffat_fwhm_from_second_moments(beta):
    # <x^2> of a Moffat = alpha^2 / (2 (beta - 2)); pixel integration adds 1/12
    fwhm = 4.0
    n = 1201
    img, _ = render_psf((n, n), [600.3], [600.6], [1.0], Moffat(fwhm, beta),
                        max_outside=1e-9 if beta > 2.5 else 1e-6, max_radius=600)
    _, _, mxx, myy, mxy = moments(img)
    alpha2 = 2 * (beta - 2) * ((mxx + myy) / 2 - 1 / 12)
    measured = 2 * np.sqrt(alpha2) * np.sqrt(2 ** (1 / beta) - 1)
    assert measured == pytest.approx(fwhm, rel=0.01 if beta > 2.5 else 0.03)
    assert abs(mxy) < 1e-6 * mxx


def test_elliptical_and_trailed_shapes_from_moments():
    psf = Gaussian(3.0, ellipticity=0.4, angle=30.0)
    img, _ = render_psf((81, 81), [40.2], [40.4], [1.0], psf)
    _, _, mxx, myy, mxy = moments(img)
    cov = np.array([[mxx, mxy], [mxy, myy]]) - np.eye(2) / 12
    w, v = np.linalg.eigh(cov)
    sa, sb = np.sqrt(w[::-1])
    assert sb / sa == pytest.approx(0.6, rel=1e-3)
    assert np.sqrt(sa * sb) * SQ8LN2 == pytest.approx(3.0, rel=1e-3)
    ang = np.degrees(np.arctan2(v[1, 1], v[0, 1])) % 180
    assert ang == pytest.approx(30.0, abs=0.1)
    # a trail of length L adds L^2/12 to the variance along it
    core = Gaussian(2.0)
    img, _ = render_psf((81, 81), [40.2], [40.4], [1.0], Trailed(core, length=8.0, angle=0.0))
    _, _, mxx, myy, _ = moments(img)
    s2 = (2.0 / SQ8LN2) ** 2 + 1 / 12
    assert mxx == pytest.approx(s2 + 8.0 ** 2 / 12, rel=2e-3)
    assert myy == pytest.approx(s2, rel=1e-3)


def test_aureole_halo_holds_its_fraction():
    psf = Aureole(Gaussian(2.0), halo_fraction=0.05, halo_scale=10.0, halo_beta=3.0)
    n = 2 * psf.stamp_radius() + 1
    img, _ = render_psf((n, n), [n // 2], [n // 2], [1.0], psf)
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - n // 2, yy - n // 2)
    # beyond 6 core FWHM the core holds nothing: all that light is the halo's
    alpha_h = 20.0 / (2 * np.sqrt(2 ** (1 / 3) - 1))
    halo_inside = 1 - (1 + (12.0 / alpha_h) ** 2) ** -2
    assert img[r > 12.0].sum() == pytest.approx(0.05 * (1 - halo_inside), rel=0.03)


def test_psf_specs_round_trip_and_errors():
    for spec in ["gaussian:fwhm=2", "moffat:fwhm=0.5,beta=2", "elliptical",
                 "trailed:length=6,core=moffat(fwhm=2,beta=3)", "aureole:halo_fraction=0.05"]:
        psf = make_psf(spec, fwhm=2.0)
        assert make_psf(psf.spec) == psf
        assert make_psf(psf.to_dict()) == psf
    assert make_psf("moffat:beta=2", fwhm=0.5) == Moffat(0.5, 2.0)
    assert make_psf("trailed", fwhm=1.5).core == Gaussian(1.5)
    with pytest.raises(ValueError, match="unknown PSF family 'airy'"):
        make_psf("airy")
    with pytest.raises(ValueError, match="beta must be > 1"):
        Moffat(2.0, beta=1.0)


@pytest.mark.parametrize("family", ["gaussian", "moffat:beta=3"])
@pytest.mark.parametrize("seed", [1, 2])
def test_simulated_image_truth_is_consistent(family, seed):
    filt = FilterTruth(zp=21.5)
    ccd, truth = simulate_image(shape=(160, 160), n_stars=40, seed=seed, fwhm=2.5, psf=family,
                                filt=filt)
    field = truth["field"]
    assert field.psf == make_psf(family, fwhm=2.5) and field.fwhm == pytest.approx(2.5)
    frac = truth["fractions"]
    stars = truth["expected"] - truth["sky_image"]
    flux = field.rates(filt) * truth["exptime"]
    # every electron of every star is accounted for
    assert stars.sum() == pytest.approx(np.sum(flux * frac["image"]), rel=1e-9)
    inside = (frac["image"] > 0.999 * frac["stamp"])
    assert np.all(frac["stamp"] > 1 - 1e-3) and inside.sum() > 20
    # the FWHM of the isolated, noiseless stars, from their second moments
    x, y = np.asarray(field.stars["x"]), np.asarray(field.stars["y"])
    fw = []
    for k in np.argsort(-flux)[:10]:
        d = np.hypot(x - x[k], y - y[k])
        d[k] = np.inf
        if d.min() < 15 or not (12 < x[k] < 147 and 12 < y[k] < 147):
            continue
        one, _ = render_psf((31, 31), [15 + x[k] % 1], [15 + y[k] % 1], [1.0], field.psf)
        _, _, mxx, myy, _ = moments(one)
        fw.append(np.sqrt((mxx + myy) / 2 - 1 / 12))
    if family == "gaussian":
        assert np.median(fw) * SQ8LN2 == pytest.approx(2.5, rel=2e-3)
    else:  # beta 3: <x^2> = alpha^2 / 2 (the 31 x 31 box holds ~all of it)
        alpha = np.median(fw) * np.sqrt(2)
        assert 2 * alpha * np.sqrt(2 ** (1 / 3) - 1) == pytest.approx(2.5, rel=0.03)
    # noise as stated
    pulls = (ccd.data - truth["expected"]) / ccd.uncertainty.array
    assert 0.9 < np.std(pulls) < 1.1


def test_raw_frame_in_adu_with_unknown_gain():
    ccd, truth = simulate_raw_image(shape=(200, 220), n_stars=60, seed=4, psf="gaussian",
                                    fwhm=0.6, gain=2.1, pedestal=700.0, n_saturated=3,
                                    cosmic_rays=15, hot_fraction=1e-3, exptime=20.0)
    assert ccd.data.dtype == np.uint16 and str(ccd.unit) == "adu"
    assert "GAIN" not in ccd.header and "RDNOISE" not in ccd.header
    assert ccd.header["SATURATE"] == 65535
    sky_adu = np.median(ccd.data)
    assert sky_adu == pytest.approx(700.0 + truth["sky"] / 2.1 + 0.02 * 20 / 2.1, abs=2.0)
    assert truth["saturated"].sum() >= 3
    for k in np.nonzero(truth["saturated"])[0]:
        s = truth["field"].stars[k]
        assert ccd.data[int(round(s["y"])), int(round(s["x"]))] == 65535
    assert truth["hot"].sum() > 10 and truth["cosmic_rays"].sum() >= 15
    assert np.all(ccd.data[truth["hot"]] > sky_adu + 50)


def test_sky_model_gradient_and_patches():
    sky = SkyModel(gradient=0.4, angle=0.0, patches=3, patch_amplitude=0.5, seed=2)
    img = sky.image((100, 200), 100.0)
    assert img.min() > 75 and img.max() < 100 * (1.2 + 3 * 0.5) + 1
    flat = SkyModel(gradient=0.4, angle=0.0).image((100, 200), 100.0)
    assert flat[:, -1].mean() - flat[:, 0].mean() == pytest.approx(40.0 * 199 / 200)


def test_blends_variables_and_imperfect_catalogs():
    field = make_field((300, 300), n_stars=100, seed=9, psf="moffat:beta=2.5", fwhm=2.0,
                       blend_fraction=0.2, variable_fraction=0.1, variable_amplitude=0.3)
    s = field.stars
    comp = np.asarray(s["blend_of"]) >= 0
    assert comp.sum() > 5 and len(s) == 100 + comp.sum()
    sep = np.hypot(s["x"][comp] - s["x"][s["blend_of"][comp]],
                   s["y"][comp] - s["y"][s["blend_of"][comp]])
    assert np.all((sep >= 0.99) & (sep <= 4.01))
    var = np.asarray(s["variable"])
    assert np.all(s["dmag"][~var] == 0) and np.abs(s["dmag"][var]).max() > 0.05
    cat = reference_catalog(field, style="normalised", seed=9, extra_stars=0,
                            drop_fraction=0.1, spurious=7, merge_blends=True,
                            flag_variables=0.5, truth_column=True)
    ids = np.asarray(cat["sim_star_id"])
    assert np.sum(ids < 0) == 7
    assert not set(ids[ids >= 0]) & set(np.asarray(s["star_id"])[comp])
    assert 0.75 * 100 < np.sum(ids >= 0) < 0.97 * 100
    assert cat["variable"].sum() < var.sum()
    # a merged primary is brighter in the catalog by its companion's light
    k = int(np.asarray(s["star_id"])[comp][0])
    p = int(s["blend_of"][k])
    if p in ids:
        both = -2.5 * np.log10(10 ** (-0.4 * s["mag_V"][p]) + 10 ** (-0.4 * s["mag_V"][k]))
        row = cat[ids == p][0]
        assert abs(row["mag_V"] - both) < 5 * row["err_V"]


def test_the_simulator_imports_no_measurement_code():
    forbidden = {"photometry", "zeropoint", "catalogs", "calibration", "astrometry", "night",
                 "archive"}
    root = Path(__import__("glue_zeropoint.simulate").simulate.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = (node.module or "").split(".")
                if node.level >= 2 or parts[0] == "glue_zeropoint":
                    assert not forbidden & set(parts), f"{path.name} imports {node.module}"
                    assert node.level < 2, f"{path.name}: relative import outside simulate"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not (alias.name.startswith("glue_zeropoint.")
                                and forbidden & set(alias.name.split("."))), path.name


def test_raw_night_with_a_psf_family(tmp_path):
    from glue_zeropoint.simulate import simulate_night

    truth = simulate_night(tmp_path, shape=(64, 64), n_bias=1, n_dark=1, n_flat=1,
                           lights=(("V", 10.0, 1),), cosmic_rays=0,
                           field_kwargs={"n_stars": 5, "psf": "moffat:beta=2", "fwhm": 1.5})
    assert truth.field.psf == Moffat(1.5, 2.0)
    light = truth.of_kind("light")[0]
    img, frac = truth.field.render(truth.filters["V"], 10.0, include_sky=False)
    flux = truth.field.rates(truth.filters["V"]) * 10.0
    assert img.sum() == pytest.approx(np.sum(flux * frac["image"]), rel=1e-9)
    assert np.allclose(truth.expected_electrons(light) - img,
                       truth.filters["V"].sky_rate(truth.field.pixel_area_arcsec2) * 10.0)


def test_a_cluster_adds_concentrated_stars_and_leaves_the_field():
    plain = make_field((300, 300), n_stars=100, seed=4, psf="moffat:beta=3", fwhm=3.0)
    field = make_field((300, 300), n_stars=100, seed=4, psf="moffat:beta=3", fwhm=3.0,
                       cluster_stars=2000, cluster_radius=20.0)
    s = field.stars
    assert len(s) == 2100
    for col in ("x", "y", "mag_V"):  # the field's own stars are drawn as without a cluster
        assert np.array_equal(np.asarray(s[col][:100]), np.asarray(plain.stars[col]))
    r = np.hypot(s["x"][100:] - 149.5, s["y"][100:] - 149.5)
    # projected Plummer: a fraction R^2 / (R^2 + a^2) within R (the draw stops at 98%):
    # 0.51 within a = 20 px, 0.64 within 26 px
    assert 0.46 < np.mean(r < 20.0) < 0.56
    assert 0.59 < np.mean(r < 26.0) < 0.70
    v = np.asarray(s["mag_V"][100:])
    assert v.min() >= 11.0 and v.max() <= 21.0 and np.mean(v > 18.0) > 0.5
    other = make_field((300, 300), n_stars=100, seed=5, cluster_stars=2000)
    assert not np.array_equal(np.asarray(other.stars["x"][100:]), np.asarray(s["x"][100:]))
