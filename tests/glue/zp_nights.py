"""Shared test helpers for the glue/Qt layers: simulated products, a fake calibration.

Imported by ``tests/glue/conftest.py`` and ``tests/qt/conftest.py`` (fixtures ``zp_products``,
``fake_calibration``, ``products_root``).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from glue_zeropoint.glue import loader
from glue_zeropoint.simulate import make_field, simulate_image

SHAPE = (160, 160)


def sim_field(seed=3, sip=True):
    return make_field(SHAPE, n_stars=40, seed=seed, mag_range=(11.0, 16.0), edge_margin=0,
                      sip_coeff=2.0 if sip else 0.0)


def sim_ccd(seed=3, exptime=20.0, filter_name="V", star_field=None):
    star_field = star_field if star_field is not None else sim_field(seed)
    ccd, truth = simulate_image(star_field, exptime=exptime, seed=seed, filter_name=filter_name)
    return ccd, truth


def write_products(folder, n=2, seed=3):
    """``n`` light products (``M13_V_00i_cal.fits``) and a master flat in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    star_field = sim_field(seed)
    truths = []
    for i in range(n):
        ccd, truth = sim_ccd(seed + i, star_field=star_field)
        loader.write_product(ccd, folder / f"M13_V_{i:03d}_cal.fits")
        truths.append(truth)
    flat, _ = sim_ccd(seed, star_field=star_field)
    flat.data[:] = 1.0
    loader.write_product(flat, folder / "master_flat_V.fits")
    return folder, truths


@dataclass
class FakeNight:
    products: list
    masters: dict = field(default_factory=dict)
    lights: list = field(default_factory=list)
    report: dict = field(default_factory=dict)


class FakeCalibration:
    """Stands in for ``calibration.calibrate_night``: writes simulated products, counts calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, raw_dir, out_dir, progress):
        self.calls.append((Path(raw_dir), Path(out_dir)))
        n = len(loader._raw_files(raw_dir))
        products = []
        star_field = sim_field(5)
        for i in range(2):
            if progress is not None:
                progress(i, 2, f"calibrating light {i}")
            ccd, _truth = sim_ccd(5 + i, star_field=star_field)
            ccd.meta["NRAW"] = n
            products.append(loader.write_product(ccd, Path(out_dir) / f"light_{i:03d}_cal.fits"))
        bias, _ = sim_ccd(9, star_field=star_field)
        bias.data[:] = 0.0
        return FakeNight(products=products, masters={"bias": bias})


def fake_raw_dir(folder, n=4):
    """A folder of FITS files the loader recognises as a raw night (content irrelevant)."""
    from astropy.io import fits

    folder = Path(folder)
    (folder / "Darks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sub = folder / ("Darks" if i % 2 else "")
        fits.PrimaryHDU(np.zeros((8, 8), np.uint16)).writeto(sub / f"frame_{i:03d}.FIT")
    return folder


@pytest.fixture
def products_root(tmp_path, monkeypatch):
    root = tmp_path / "products root"
    monkeypatch.setenv("GLUE_ZEROPOINT_PRODUCTS_DIR", str(root))
    return root


@pytest.fixture
def zp_products(tmp_path):
    return write_products(tmp_path / "calibrated night é")


@pytest.fixture
def fake_calibration(monkeypatch, products_root):
    fake = FakeCalibration()
    monkeypatch.setattr(loader, "_calibrate", fake)
    return fake
