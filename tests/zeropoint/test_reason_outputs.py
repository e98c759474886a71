"""The rejection reasons reach the files a user reads: stars.ecsv, stars.reg, zeropoint.json."""

import json

import numpy as np
import pytest
from astropy.table import Table
from regions import Regions

from glue_zeropoint.simulate import reference_catalog, simulate_image
from glue_zeropoint.zeropoint import measure_image
from glue_zeropoint.zeropoint.reasons import REASONS, REGION_COLOURS, reason_group


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    ccd, truth = simulate_image(shape=(384, 384), n_stars=120, seed=7)
    cat = reference_catalog(truth["field"], style="normalised", seed=7)
    first = measure_image(ccd, cat, "V", fit_color=False)
    used = np.asarray(first.matches["cat_index"])[np.asarray(first.zeropoint.stars["used"])]
    # a catalog as real ones are: a few variables, one duplicate, one poor magnitude, on
    # stars that were used
    bright = used[np.argsort(np.asarray(cat["mag_V"])[used])]
    cat["variable"][bright[[3, 9]]] = True
    cat["dupvar"] = np.zeros(len(cat), np.int16)  # ATLAS-Refcat2's flag: 2 = duplicate
    cat["dupvar"][bright[12]] = 2
    cat["err_V"][bright[15]] = 0.3
    m = measure_image(ccd, cat, "V", fit_color=False)
    out = tmp_path_factory.mktemp("reasons")
    m.write(out, plot=False)
    return m, out, first, bright


def test_stars_ecsv_has_a_reason_per_star(written):
    m, out, first, bright = written
    stars = Table.read(out / "stars.ecsv")
    reason = np.array(["" if np.ma.is_masked(r) else str(r) for r in stars["reason"]])
    used = np.asarray(stars["used"], bool)
    assert np.all((reason == "") == used)  # used <=> no reason
    index = np.asarray(stars["cat_index"])
    row = {int(i): k for k, i in enumerate(index) if i >= 0}
    for j, code in ((bright[3], "variable"), (bright[9], "variable"),
                    (bright[12], "duplicate"), (bright[15], "cat_err")):
        assert reason[row[j]] == code
    assert m.zeropoint.n_used <= first.zeropoint.n_used - 4
    # every code is in the vocabulary, which the file itself explains
    codes = {c for r in reason for c in r.split(",") if c}
    assert codes <= set(REASONS)
    assert set(stars.meta["reasons"]) == set(REASONS)
    assert stars.meta["rejected"] == m.zeropoint.rejected
    d = json.loads((out / "zeropoint.json").read_text())
    assert d["rejected"] == m.zeropoint.rejected
    assert sum(1 for r in reason if "no_match" in r) == d["rejected"].get("no_match", 0)


def test_stars_reg_colours_labels_and_tags_by_reason(written):
    m, out, *_ = written
    text = (out / "stars.reg").read_text()
    assert "# cyan: catalog (no_cat_mag, variable, duplicate" in text
    assert "used, left out:" in text
    regs = Regions.read(str(out / "stars.reg"), format="ds9")
    assert len(regs) == len(m.stars)
    zs = m.zeropoint.stars
    why = dict(zip(np.asarray(zs["star_id"]).tolist(), np.asarray(zs["reason"]).astype(str),
                   strict=True))
    seen = set()
    for reg, star_id in zip(regs, np.asarray(m.stars["star_id"]).tolist(), strict=True):
        reason = why[star_id]
        label = str(reg.meta["text"])
        colour = reg.visual.get("edgecolor", reg.visual.get("color", "green"))
        tags = reg.meta.get("tag", [])
        assert colour == REGION_COLOURS[reason_group(reason)]
        if reason:
            assert label == f"{star_id} {reason}"
            assert tags == ["rejected"] + reason.split(",")
        else:
            assert label == str(star_id) and tags == []
        seen.add(reason_group(reason))
    assert {"used", "catalog"} <= seen
