"""Every warning of the package is a GlueZeropointWarning (an AstropyUserWarning) of its layer,
so users can filter them (``warnings.simplefilter('ignore', GlueZeropointWarning)``)."""

import ast
import warnings
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

import glue_zeropoint
from glue_zeropoint import exceptions
from glue_zeropoint.exceptions import GlueZeropointWarning, InputWarning

PACKAGE = Path(glue_zeropoint.__file__).parent


def _warn_calls():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "warn" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "warnings"):
                yield path.relative_to(PACKAGE.parent), node


def _category_name(call):
    for kw in call.keywords:
        if kw.arg == "category":
            return getattr(kw.value, "id", None)
    if len(call.args) >= 2:
        return getattr(call.args[1], "id", None)
    return None


def test_the_package_warns():
    calls = list(_warn_calls())
    assert len(calls) >= 20  # the scan sees the package's warnings.warn calls


def test_every_warnings_warn_names_a_category_of_ours():
    from glue_zeropoint.photometry.aperture import GrowthCurveWarning

    ours = {name: obj for name, obj in vars(exceptions).items()
            if isinstance(obj, type) and issubclass(obj, GlueZeropointWarning)}
    ours["GrowthCurveWarning"] = GrowthCurveWarning
    bad = [f"{path}:{call.lineno} ({_category_name(call)})" for path, call in _warn_calls()
           if _category_name(call) not in ours]
    assert not bad, "warnings.warn without a GlueZeropointWarning category: " + ", ".join(bad)


def test_layer_warnings_are_astropy_user_warnings_and_filterable():
    assert issubclass(GlueZeropointWarning, AstropyUserWarning)
    from glue_zeropoint.photometry.aperture import GrowthCurveWarning

    assert issubclass(GrowthCurveWarning, exceptions.PhotometryWarning)
    from glue_zeropoint.obstime import observation_time

    with pytest.warns(InputWarning, match="not a date"):
        assert observation_time(fits.Header({"DATE-OBS": "yesterday"}), "night1.fits") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", GlueZeropointWarning)
        assert observation_time(fits.Header({"DATE-OBS": "yesterday"}), "night1.fits") is None
