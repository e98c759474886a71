"""crossmatch: proper motions, radius from the WCS quality, ambiguity, output layout."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astropy.time import Time

from glue_zeropoint.catalogs.crossmatch import (
    crossmatch,
    estimate_match_radius,
    propagate_proper_motion,
)
from glue_zeropoint.exceptions import CatalogError, InputError
from glue_zeropoint.simulate import make_field, reference_catalog


@pytest.fixture(scope="module")
def field():
    return make_field(shape=(512, 512), n_stars=200, seed=4, proper_motion=300.0,
                      obs_epoch=2024.5, catalog_epoch=2016.0)


def _sources(field, jitter_arcsec=0.2, seed=0):
    rng = np.random.default_rng(seed)
    s = field.stars
    inside = (s["x"] > 0) & (s["x"] < 511) & (s["y"] > 0) & (s["y"] < 511)
    s = s[inside]
    t = Table()
    t["star_id"] = np.arange(1, len(s) + 1)
    cosd = np.cos(np.deg2rad(s["dec"]))
    t["ra"] = s["ra"] + rng.normal(0, jitter_arcsec, len(s)) / 3600 / cosd
    t["dec"] = s["dec"] + rng.normal(0, jitter_arcsec, len(s)) / 3600
    t["true_index"] = np.nonzero(inside)[0]
    return t


def test_proper_motion_propagation(field):
    cat = reference_catalog(field, style="normalised", extra_stars=0)
    ra, dec = propagate_proper_motion(cat, 2024.5)
    sep = np.hypot((ra - field.stars["ra"]) * np.cos(np.deg2rad(dec)), dec - field.stars["dec"])
    assert np.max(sep) * 3600 < 1e-3
    # Time and ISO strings work too; unknown motions stay put
    ra2, _ = propagate_proper_motion(cat, Time("2024-07-02T00:00:00"))
    assert np.allclose(ra2, ra, atol=1e-6)
    cat["pmra"][0] = np.nan
    ra3, _ = propagate_proper_motion(cat, "2024-07-02")
    assert ra3[0] == cat["ra"][0]


def test_matches_with_proper_motion_and_measured_radius(field):
    cat = reference_catalog(field, style="normalised", extra_stars=30)
    src = _sources(field)
    m = crossmatch(src, cat, obstime=2024.5)
    xm = m.meta["crossmatch"]
    # separations ~ Rayleigh(0.2"): sigma measured, radius = 5 sigma (at least 1")
    assert xm["sigma_arcsec"] == pytest.approx(0.2, rel=0.25)
    assert xm["radius_arcsec"] == pytest.approx(max(1.0, 5 * xm["sigma_arcsec"]))
    ok = m["match"] == "ok"
    assert ok.mean() > 0.95
    # the right star: catalog row == true row (catalog rows follow the field's stars)
    assert np.mean(m["cat_index"][ok] == m["true_index"][ok]) > 0.99
    # layout: source columns first, catalog columns prefixed, one row per source
    assert m.colnames[:3] == ["star_id", "ra", "dec"]
    assert {"cat_id", "cat_ra", "cat_mag_V", "cat_err_V", "cat_variable", "sep_arcsec",
            "match", "cat_index"} <= set(m.colnames)
    assert len(m) == len(src)
    # without the propagation (8.5 yr at ~300 mas/yr) many stars are lost
    m0 = crossmatch(src, cat, radius=1.0 * u.arcsec)
    assert (m0["match"] == "ok").mean() < 0.5


def test_none_and_ambiguous(field):
    cat = reference_catalog(field, style="normalised", extra_stars=0)
    src = _sources(field, jitter_arcsec=0.05)[:20]
    ra0, dec0 = propagate_proper_motion(cat, 2024.5)
    src.meta["date_obs"] = "2024-07-01T22:00:00"  # used when obstime is not given
    # a source far from any catalog star
    src["ra"][0] += 60 / 3600.0
    # a second catalog star 1.5" from source 1's star -> ambiguous at radius 1"
    i1 = src["true_index"][1]
    extra = cat[i1:i1 + 1].copy()
    extra["id"] = ["EXTRA"]
    extra["ra"] = ra0[i1] + 1.5 / 3600 / np.cos(np.deg2rad(dec0[i1]))
    extra["dec"] = dec0[i1]
    extra["pmra"] = 0.0
    extra["pmdec"] = 0.0
    from astropy.table import vstack

    cat2 = vstack([cat, extra])
    m = crossmatch(src, cat2, radius=1.0)
    assert m["match"][0] == "none"
    assert m["cat_id"].mask[0] and m["cat_index"][0] == -1
    assert m["match"][1] == "ambiguous"
    assert m.meta["crossmatch"]["n_ambiguous"] >= 1
    # the second catalog star that made it ambiguous is reported (1.5" from the first)
    assert 1.0 < m["sep2_arcsec"][1] < 2.0
    ok = np.asarray(m["match"]) == "ok"
    assert np.all(m["sep2_arcsec"][ok] > 2.0)  # clean matches: no other star within 2 radii
    assert m.meta["crossmatch"]["obstime"] == pytest.approx(2024.5, abs=0.01)
    # two sources on one catalog star: the farther one is ambiguous
    dup = src[2:4].copy()
    dup["ra"][1] = dup["ra"][0] + 0.3 / 3600
    dup["dec"][1] = dup["dec"][0]
    md = crossmatch(dup, cat, radius=1.0, obstime=2024.5)
    assert sorted(md["match"]) == ["ambiguous", "ok"]


def test_bad_inputs(field):
    cat = reference_catalog(field, style="normalised", extra_stars=0)
    with pytest.raises(InputError, match="'ra'.*--wcs"):
        crossmatch(Table({"x": [1.0]}), cat)
    with pytest.raises(CatalogError, match="no 'ra'"):
        crossmatch(Table({"ra": [1.0], "dec": [2.0]}), Table({"id": ["a"]}))
    with pytest.raises(InputError, match="ambiguity_factor"):
        crossmatch(Table({"ra": [1.0], "dec": [2.0]}), cat, ambiguity_factor=0.5)
    with pytest.raises(InputError, match="radius"):
        crossmatch(Table({"ra": [1.0], "dec": [2.0]}), cat, radius=-1.0)
    nan = cat.copy()
    nan["ra"] = np.nan
    with pytest.raises(CatalogError, match="no finite position"):
        crossmatch(Table({"ra": [1.0], "dec": [2.0]}), nan)
    # NaN source positions are simply unmatched
    m = crossmatch(Table({"ra": [np.nan], "dec": [2.0]}), cat, radius=1.0)
    assert m["match"][0] == "none"


def test_estimate_match_radius_ignores_chance_pairs():
    rng = np.random.default_rng(3)
    true = np.hypot(*rng.normal(0, 0.5, (2, 300)))
    chance = rng.uniform(0, 10, 60)
    r, s = estimate_match_radius(np.r_[true, chance], 10.0)
    assert s == pytest.approx(0.5, rel=0.2)
    assert r == pytest.approx(5 * s)
