"""Fixtures of the catalog tests: a simulated field served by the CDS stub, an image with a WCS."""

import pytest
from astropy.coordinates import SkyCoord
from catalog_helpers import CDS, DEC0, RA0, write_image
from cds_stub import StarField


@pytest.fixture
def cds_data():
    return CDS


@pytest.fixture
def field():
    """60 simulated stars within 0.2 deg of (150, 20)."""
    return StarField(RA0, DEC0, radius=0.2, n=60, seed=3)


@pytest.fixture
def center():
    return SkyCoord(RA0, DEC0, unit="deg")


@pytest.fixture
def stub(cds_stub, field):
    """The CDS stub answering APASS, Gaia syntphot (+ gaiadr3), Refcat2 and SIMBAD."""
    cds_stub.set_vizier("II/336/apass9", field.apass())
    cds_stub.set_vizier("I/360/syntphot", field.syntphot(), ra_col="RA_ICRS", dec_col="DE_ICRS")
    cds_stub.set_vizier("I/355/gaiadr3", field.gaiadr3(), ra_col="RA_ICRS", dec_col="DE_ICRS")
    cds_stub.set_vizier("J/ApJ/867/105/refcat2", field.refcat2(), ra_col="RA_ICRS", dec_col="DE_ICRS")
    cds_stub.set_simbad(field.simbad())
    return cds_stub


@pytest.fixture
def image(tmp_path):
    return write_image(tmp_path / "field.fits")

