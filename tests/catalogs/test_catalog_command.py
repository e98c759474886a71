"""``glue-zeropoint catalog IMAGE --catalog SPEC --out FILE`` through ``cli.main``."""

import shutil

import numpy as np
import pytest
from catalog_helpers import CDS, write_image

from glue_zeropoint.catalogs import read_catalog
from glue_zeropoint.cli import main


def _one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_saves_the_field_catalog(stub, image, output_dir, capsys):
    out = output_dir / "apass.ecsv"
    assert main(["catalog", str(image), "--catalog", "vizier:II/336/apass9", "--out",
                 str(out)]) == 0
    table = read_catalog(out)
    assert table.meta["bands"] == ["B", "V", "g", "r", "i"] and len(table) > 10
    assert table.meta["origin_catalog"] == "vizier:II/336/apass9"
    params = stub.vizier_requests()[0]["params"]
    # the cone covers the 600x400 px, 1.5"/px image plus a 1' margin: 9.01' ... 10'
    assert 9.0 / 60 < float(params["-c.rd"]) < 10.1 / 60
    line = _one_line(capsys.readouterr().out)
    assert str(out) in line and "vizier:II/336/apass9" in line and "B, V, g, r, i" in line


def test_radius_option_and_offline_rerun(stub, image, output_dir, capsys):
    out = output_dir / "simbad.fits"
    assert main(["catalog", str(image), "--catalog", "simbad", "--radius", "4", "--out",
                 str(out)]) == 0
    adql = stub.simbad_queries()[-1]
    assert f"{4 / 60}" in adql
    stub.stop()
    again = output_dir / "simbad-offline.ecsv"
    assert main(["catalog", str(image), "--catalog", "simbad", "--radius", "4", "--offline",
                 "--out", str(again)]) == 0
    assert "cache" in capsys.readouterr().out.splitlines()[-1]
    first, second = read_catalog(out), read_catalog(again)
    assert list(first["id"]) == list(second["id"])
    np.testing.assert_allclose(first["mag_V"], second["mag_V"])


def test_default_catalog_by_band(stub, image, output_dir):
    out = output_dir / "v.csv"
    assert main(["catalog", str(image), "--catalog", "default", "--band", "V", "--out",
                 str(out)]) == 0
    assert read_catalog(out)["mag_V"].size > 0


def test_local_landolt_file(tmp_path, image, output_dir):
    source = tmp_path / "landolt.csv"
    shutil.copy(CDS / "landolt1992_standards.csv", source)
    out = output_dir / "landolt.vot"
    assert main(["catalog", str(image), "--catalog", str(source), "--out", str(out)]) == 0
    assert len(read_catalog(out)) == 526


@pytest.mark.parametrize("make_args, message", [
    (lambda d, img: [str(d / "missing.fits")], "no such image file"),
    (lambda d, img: [str(write_image(d / "nowcs.fits", with_wcs=False))], "no celestial WCS"),
    (lambda d, img: [str(img), "--radius", "-3"], "--radius must be a positive"),
])
def test_bad_image_input_exits_2(cds_stub, tmp_path, image, output_dir, capsys, make_args,
                                 message):
    args = ["catalog", *make_args(tmp_path, image), "--catalog", "simbad", "--out",
            str(output_dir / "x.ecsv")]
    assert main(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("glue-zeropoint catalog: error:") and message in line
    assert cds_stub.requests == []


@pytest.mark.parametrize("spec, extra, message", [
    ("nothere.csv", [], "nothere.csv: no such catalog file"),
    ("default", [], "add --band"),
    ("vizier:II/336/apass9", ["--band", "R"], "has no band 'R'; it has: B, V, g, r, i"),
])
def test_bad_catalog_input_exits_2(stub, image, output_dir, capsys, spec, extra, message):
    assert main(["catalog", str(image), "--catalog", spec, *extra, "--out",
                 str(output_dir / "x.ecsv")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert message in line


def test_bad_output_suffix_exits_2(cds_stub, image, output_dir, capsys):
    assert main(["catalog", str(image), "--catalog", "simbad", "--out",
                 str(output_dir / "x.xlsx")]) == 2
    assert "unknown catalog file type" in _one_line(capsys.readouterr().err)


def test_service_down_exits_1_with_one_line(stub, image, output_dir, capsys):
    stub.fail("http429")
    assert main(["catalog", str(image), "--catalog", "vizier:II/336/apass9", "--out",
                 str(output_dir / "x.ecsv")]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("glue-zeropoint catalog: failed:") and "HTTP 429" in line
    assert not (output_dir / "x.ecsv").exists()


def test_offline_with_nothing_cached_exits_2(stub, image, output_dir, capsys):
    assert main(["catalog", str(image), "--catalog", "vizier:II/336/apass9", "--offline",
                 "--out", str(output_dir / "x.ecsv")]) == 2
    assert "offline: no cached answer" in _one_line(capsys.readouterr().err)
    assert stub.requests == []
