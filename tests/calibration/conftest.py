"""Simulated raw nights shared by the calibration tests (written once per session)."""

import pytest
from calibration_helpers import night_kwargs

from glue_zeropoint.calibration import calibrate_night
from glue_zeropoint.simulate import simulate_night


@pytest.fixture(scope="session")
def calibrated(tmp_path_factory):
    """``calibrated(style)`` -> (truth, night, out_dir), computed once per style."""
    cache = {}

    def get(style):
        if style not in cache:
            root = tmp_path_factory.mktemp(f"night {style} é")
            truth = simulate_night(root / "raw frames", **night_kwargs(style))
            night = calibrate_night(root / "raw frames", root / "out")
            cache[style] = (truth, night, root / "out")
        return cache[style]

    return get
