"""Rejection reasons of the zero-point fit: each problem gives exactly its code and keeps the
star out; a clean star is used; several problems give several codes."""

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from glue_zeropoint.exceptions import FitError
from glue_zeropoint.photometry import flags as F
from glue_zeropoint.zeropoint import ZeroPoint, fit_zeropoint
from glue_zeropoint.zeropoint.reasons import (
    ANNULUS_NEIGHBOUR_RATIO,
    GROUPS,
    MAX_CAT_ERR,
    REASONS,
    describe,
    join_reasons,
    reason_counts,
    reason_group,
    reason_groups,
    split_reasons,
)

N = 60
ZP = 21.5
T = 30.0


def _base(n=N, seed=3):
    """Clean matched stars on a 30-pixel grid (no neighbour within 25 pixels), with the
    columns a real catalog answer may carry after the crossmatch."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(12.0, 16.0, n)
    bv = rng.uniform(0.0, 1.4, n)
    err_inst = np.full(n, 0.01)
    m_inst = v - ZP + rng.normal(0, np.hypot(0.01, 0.02), n)  # as the errors say
    t = Table()
    t["star_id"] = np.arange(1, n + 1)
    t["x"] = 20.0 + 30.0 * (np.arange(n) % 10)
    t["y"] = 20.0 + 30.0 * (np.arange(n) // 10)
    t["mag_inst"] = m_inst
    t["mag_inst_err"] = err_inst
    t["flux"] = 10 ** (-0.4 * m_inst) * T
    t["flags"] = np.zeros(n, np.int64)
    t["match"] = np.full(n, "ok", dtype="U9")
    t["cat_id"] = MaskedColumn([f"S{i}" for i in range(n)])
    t["cat_mag_V"] = MaskedColumn(v)
    t["cat_err_V"] = MaskedColumn(np.full(n, 0.02))
    t["cat_mag_B"] = MaskedColumn(v + bv)
    t["cat_err_B"] = MaskedColumn(np.full(n, 0.02))
    t["cat_variable"] = MaskedColumn(np.zeros(n, bool))
    t["cat_nonstellar"] = MaskedColumn(np.zeros(n, bool))
    t["cat_otype"] = MaskedColumn(np.full(n, "*", dtype="U8"))
    t["cat_VarFlag"] = MaskedColumn(np.full(n, "NOT_AVAILABLE", dtype="U14"))
    t["cat_Dup"] = MaskedColumn(np.zeros(n, np.int16))
    t["cat_VFlag"] = MaskedColumn(np.ones(n, np.int16))
    t["cat_dupvar"] = MaskedColumn(np.zeros(n, np.int16))
    t["cat_of"] = MaskedColumn(np.zeros(n, np.int16))
    t["cat_db"] = MaskedColumn(np.zeros(n, np.int16))
    t.meta.update({"exptime": T, "aperture_radius": 4.0, "annulus_in": 10.0,
                   "annulus_out": 16.0, "fwhm": 2.5, "crossmatch": {"catalog": "test"}})
    return t


def _unmatch(t, row):
    t["match"][row] = "none"
    for name in t.colnames:
        if name.startswith("cat_"):
            t[name].mask[row] = True


def _shift_star(t, row, dmag):
    """Make a star brighter or fainter (catalog and instrumental alike: same residual)."""
    t["cat_mag_V"][row] += dmag
    t["cat_mag_B"][row] += dmag
    t["mag_inst"][row] += dmag
    t["flux"][row] *= 10 ** (-0.4 * dmag)


# one problem per case: (name, how to make it, expected reason of row 5)
CASES = [
    ("no_match", lambda t: _unmatch(t, 5)),
    ("ambiguous", lambda t: t["match"].__setitem__(5, "ambiguous")),
    ("no_cat_mag", lambda t: t["cat_mag_V"].mask.__setitem__(5, True)),
    ("variable", lambda t: t["cat_variable"].__setitem__(5, True)),
    ("variable", lambda t: t["cat_VarFlag"].__setitem__(5, "VARIABLE")),  # Gaia
    ("variable", lambda t: t["cat_dupvar"].__setitem__(5, 1)),  # Refcat2
    ("variable", lambda t: t["cat_otype"].__setitem__(5, "RR*")),  # SIMBAD
    ("duplicate", lambda t: t["cat_dupvar"].__setitem__(5, 2)),  # Refcat2
    ("duplicate", lambda t: t["cat_Dup"].__setitem__(5, 1)),  # Gaia duplicated_source
    ("nonstellar", lambda t: t["cat_nonstellar"].__setitem__(5, True)),
    ("nonstellar", lambda t: t["cat_otype"].__setitem__(5, "G")),  # SIMBAD galaxy
    ("cat_flag", lambda t: t["cat_VFlag"].__setitem__(5, 0)),  # Gaia GSPC out of range
    ("cat_flag", lambda t: t["cat_of"].__setitem__(5, 1)),  # UCAC4 near overexposed star
    ("cat_flag", lambda t: t["cat_db"].__setitem__(5, 3)),  # UCAC4 double star
    ("cat_err", lambda t: t["cat_err_V"].__setitem__(5, MAX_CAT_ERR + 0.05)),
    ("saturated", lambda t: t["flags"].__setitem__(5, F.FLAG_SATURATED)),
    ("nonlinear", lambda t: t["flags"].__setitem__(5, F.FLAG_NONLINEAR)),
    ("masked", lambda t: t["flags"].__setitem__(5, F.FLAG_MASKED)),
    ("edge", lambda t: t["flags"].__setitem__(5, F.FLAG_EDGE)),
    ("crowded", lambda t: t["flags"].__setitem__(5, F.FLAG_CROWDED)),
    ("bad_sky", lambda t: t["flags"].__setitem__(5, F.FLAG_BAD_SKY)),
    ("no_flux", lambda t: (t["flags"].__setitem__(5, F.FLAG_NEGATIVE),
                           t["mag_inst"].__setitem__(5, np.nan))),
    ("clipped", lambda t: t["mag_inst"].__setitem__(5, t["mag_inst"][5] + 0.8)),
]


@pytest.mark.parametrize("code, make", CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_each_problem_gives_exactly_its_reason(code, make):
    t = _base()
    make(t)
    zp = fit_zeropoint(t, "V")
    reason = list(zp.stars["reason"])
    used = np.asarray(zp.stars["used"])
    assert reason[5] == code
    assert not used[5]
    assert all(r == "" for i, r in enumerate(reason) if i != 5)  # every clean star is used
    assert used.sum() == N - 1
    assert zp.rejected == {code: 1}
    assert abs(zp.zp - ZP) < 0.01


def test_clean_stars_are_all_used():
    zp = fit_zeropoint(_base(), "V")
    assert zp.n_used == N and set(zp.stars["reason"]) == {""} and zp.rejected == {}


def test_user_exclusion_and_missing_colour():
    t = _base()
    zp = fit_zeropoint(t, "V", exclude=[6])  # star_id 6 = row 5
    assert zp.stars["reason"][5] == "excluded" and zp.rejected == {"excluded": 1}
    t["cat_mag_B"].mask[5] = True
    zp = fit_zeropoint(t, "V", color="B-V", fit_color=True)
    assert zp.color_term is not None
    assert zp.stars["reason"][5] == "no_colour" and not zp.stars["used"][5]
    assert zp.n_used == N - 1


def test_measured_neighbour_in_the_aperture_makes_both_crowded():
    t = _base()
    t["x"][6] = t["x"][5] + 3.0  # inside the 4-pixel aperture of star 5, and 5 in 6's
    t["y"][6] = t["y"][5]
    zp = fit_zeropoint(t, "V")
    assert list(zp.stars["reason"][5:7]) == ["crowded", "crowded"]
    assert zp.n_used == N - 2
    # a neighbour too faint to matter (< 1% of the star's flux) is not a reason
    t["flux"][6] = 0.005 * t["flux"][5]
    t["flux"][5] = 1.0 * t["flux"][5]
    zp = fit_zeropoint(t, "V")
    assert zp.stars["reason"][5] == "" and zp.stars["reason"][6] == "crowded"
    # no radii in the meta: no geometry check (nothing to check against)
    for key in ("aperture_radius", "annulus_in", "annulus_out"):
        del t.meta[key]
    assert fit_zeropoint(t, "V").stars["reason"][5] == ""
    assert fit_zeropoint(_base(), "V", check_neighbours=False).n_used == N


def test_much_brighter_neighbour_in_the_annulus_gives_sky_crowded():
    t = _base()
    t["x"][6] = t["x"][5] + 13.0  # in star 5's 10-16 pixel annulus
    t["y"][6] = t["y"][5]
    bright = 2.5 * np.log10(ANNULUS_NEIGHBOUR_RATIO) + 1.0  # > 10x brighter
    _shift_star(t, 6, (t["mag_inst"][5] - t["mag_inst"][6]) - bright)
    zp = fit_zeropoint(t, "V")
    assert zp.stars["reason"][5] == "sky_crowded"
    assert zp.stars["reason"][6] == ""  # the faint one in the bright one's annulus: no harm
    # only 3x brighter: kept
    t2 = _base()
    t2["x"][6], t2["y"][6] = t2["x"][5] + 13.0, t2["y"][5]
    _shift_star(t2, 6, (t2["mag_inst"][5] - t2["mag_inst"][6]) - 2.5 * np.log10(3.0))
    assert fit_zeropoint(t2, "V").stars["reason"][5] == ""
    # Glue's stars keep the radii in meta['zp_aperture']
    for key in ("aperture_radius", "annulus_in", "annulus_out", "fwhm"):
        del t.meta[key]
    t.meta["zp_aperture"] = {"r": 4.0, "r_in": 10.0, "r_out": 16.0, "fwhm": 2.5}
    assert fit_zeropoint(t, "V").stars["reason"][5] == "sky_crowded"


def test_several_problems_are_all_recorded_in_vocabulary_order():
    t = _base()
    t["flags"][5] = F.FLAG_SATURATED | F.FLAG_CROWDED | F.FLAG_CENTROID  # centroid: not a reason
    t["cat_dupvar"][5] = 3  # Refcat2: variable and duplicate
    t["cat_err_V"][5] = 0.5
    _unmatch(t, 7)
    t["flags"][7] = F.FLAG_EDGE
    zp = fit_zeropoint(t, "V", exclude=[8, 9])  # star ids: rows 7 and 8
    assert zp.stars["reason"][5] == "variable,duplicate,cat_err,saturated,crowded"
    assert zp.stars["reason"][7] == "no_match,edge,excluded"
    assert zp.rejected == {"no_match": 1, "variable": 1, "duplicate": 1, "cat_err": 1,
                           "saturated": 1, "edge": 1, "crowded": 1, "excluded": 2}
    assert zp.stars["reason"][8] == "excluded"
    assert zp.n_used == N - 3
    # a limit can be lifted
    zp = fit_zeropoint(t, "V", max_cat_err=None)
    assert "cat_err" not in zp.stars["reason"][5]


def test_only_candidates_are_clipped_and_the_fit_is_robust():
    t = _base(n=80)
    rows = np.arange(0, 80, 8)  # 10 outliers, 12% of the stars, all on one side
    t["mag_inst"][rows] -= 0.5
    zp = fit_zeropoint(t, "V")
    reason = np.asarray(zp.stars["reason"])
    assert set(reason[rows]) == {"clipped"}
    assert zp.n_clipped == 10 and zp.n_used == 70
    assert abs(zp.zp - ZP) < 3 * zp.zp_err
    assert zp.chi2_dof == pytest.approx(1.0, abs=0.35)  # errors honest, or sigma_int solved
    # a star left out for a reason is not also "clipped", whatever its residual
    t["cat_variable"][rows[0]] = True
    assert fit_zeropoint(t, "V").stars["reason"][rows[0]] == "variable"


def test_intrinsic_scatter_brings_chi2_to_one():
    t = _base(n=200, seed=9)
    rng = np.random.default_rng(2)
    t["mag_inst"] += rng.normal(0, 0.05, len(t))  # scatter beyond the stated errors
    zp = fit_zeropoint(t, "V")
    assert zp.sigma_int == pytest.approx(0.05, rel=0.25)
    assert zp.chi2_dof == pytest.approx(1.0, abs=1e-3)


def test_fit_error_counts_the_reasons():
    t = _base()
    for row in range(N - 2):
        t["cat_variable"][row] = True
    with pytest.raises(FitError, match=r"only 2 usable star\(s\).*left out: 58 variable"):
        fit_zeropoint(t, "V")


def test_reasons_in_json_and_round_trip():
    t = _base()
    t["flags"][3] = F.FLAG_SATURATED
    zp = fit_zeropoint(t, "V")
    d = zp.to_dict()
    assert d["rejected"] == {"saturated": 1}
    back = ZeroPoint.from_json(zp.to_json())
    assert back.rejected == {"saturated": 1}
    assert "rejected" not in zp.to_table().colnames  # a dict is no table cell
    assert zp.stars.meta["rejected"] == {"saturated": 1}


def test_vocabulary_helpers():
    assert all(group in GROUPS for group, _ in REASONS.values())
    assert all(code == code.strip() and "," not in code and " " not in code for code in REASONS)
    assert join_reasons(["clipped", "no_match", "", "no_match"]) == "no_match,clipped"
    assert split_reasons("") == []
    assert reason_group("saturated,excluded") == "user"  # what the user did shows first
    assert reason_group("clipped") == "fit"
    assert reason_group("new_flag") == "photometry"  # a photometry flag added later
    assert list(reason_groups(["", "ambiguous", "cat_err"])) == ["used", "match", "catalog"]
    assert reason_groups([]).size == 0
    assert describe("") == "used in the fit"
    assert describe("saturated,crowded").startswith("saturated: saturated; crowded: ")
    assert reason_counts(["a", "", "saturated,crowded", "saturated"]) == {
        "saturated": 2, "crowded": 1, "a": 1}


def test_bright_stars_at_the_floor_are_not_clipped_for_the_intrinsic_scatter():
    """Half the stars with errors at the 0.01 floor, a real 0.05 mag scatter the errors miss,
    10% gross outliers: the robust start (median, MAD-scaled sigma_int) keeps the good stars
    and drops every outlier, and the ZP pulls stay near unit width."""
    from glue_zeropoint.zeropoint import fit_zeropoint_arrays

    pulls, good_clipped, bad_used = [], 0, 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = 80
        err = np.where(rng.random(n) < 0.5, 0.01, rng.uniform(0.03, 0.1, n))
        y = ZP + rng.normal(0, np.hypot(err, 0.05))
        bad = rng.random(n) < 0.1
        y[bad] += rng.choice([-1, 1], bad.sum()) * rng.uniform(0.5, 2, bad.sum())
        fit = fit_zeropoint_arrays(y, err)
        pulls.append((fit.zp - ZP) / fit.zp_err)
        good_clipped += int((fit.clipped & ~bad).sum())
        bad_used += int((fit.used & bad).sum())
    assert bad_used == 0
    assert good_clipped / (60 * 72) < 0.015  # ~0.3% expected at 3 sigma, MAD noise on top
    assert abs(np.mean(pulls)) < 0.35 and 0.75 < np.std(pulls) < 1.3


def test_precautionary_reasons_give_way_in_a_sparse_field(caplog):
    t = _base(n=8)
    t["cat_err_V"][:5] = 0.15  # five faint stars with poor catalog magnitudes
    with caplog.at_level("WARNING"):
        zp = fit_zeropoint(t, "V")
    assert zp.stars.meta["relaxed"] == ["cat_err"]
    assert "cat_err" not in ",".join(zp.stars["reason"]) and zp.n_used > 3
    assert "cat_err not applied" in caplog.text
    # hard reasons never give way
    t["cat_variable"][5] = True
    zp = fit_zeropoint(t, "V", clip_sigma=None)
    assert zp.stars["reason"][5] == "variable" and zp.n_used == 7
    # enough stars: applied
    t = _base()
    t["cat_err_V"][:5] = 0.15
    zp = fit_zeropoint(t, "V")
    assert zp.n_used == N - 5 and zp.stars.meta["relaxed"] == []
