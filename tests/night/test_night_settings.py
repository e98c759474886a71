"""The night's settings object: one object for the CLI, the Glue action and the archive."""

import json
import warnings

import pytest

from glue_zeropoint.archive import ClusterSettings, run_archive
from glue_zeropoint.archive.keys import Settings as KeySettings
from glue_zeropoint.exceptions import InputError
from glue_zeropoint.night.run import measure_night
from glue_zeropoint.night.settings import NightSettings


def test_round_trip_through_json():
    s = NightSettings(site="46.87,-96.45,311", band_map={"Clear": "V"}, gain=1.5,
                      calibrate=False, max_stars=50)
    back = NightSettings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    with pytest.raises(InputError, match="unknown setting.*bogus"):
        NightSettings.from_dict({"bogus": 1})
    with pytest.raises(InputError, match="aperture radius -2"):
        NightSettings(aperture_radius=-2)
    with pytest.raises(InputError, match="max_stars 0"):
        s.replace(max_stars=0)


def test_unknown_keyword_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="sight"):
        measure_night(tmp_path, None, sight="46,-96")
    with pytest.raises(TypeError, match="worker_count"):
        run_archive([tmp_path], tmp_path / "store", worker_count=2)


def test_archive_key_settings_follow_the_night_settings():
    night = NightSettings(site="46.87,-96.45", band_map={"Clear": "V"}, gain=2.0,
                          offline=True, max_stars=120, aperture_radius=3.5)
    key = KeySettings.from_night("vizier:II/336/apass9", night)
    assert key.band_map == (("Clear", "V"),) and key.gain == 2.0 and key.max_stars == 120
    assert key.aperture_radius == 3.5
    assert KeySettings.from_night("vizier:II/336/apass9",
                                  night.replace(aperture_radius=None)).hash != key.hash
    assert key.night() == night  # what a worker measures with is what was asked for
    # a changed setting is another result key; the cluster is not part of it
    assert KeySettings.from_night("vizier:II/336/apass9", night.replace(gain=2.1)).hash \
        != key.hash
    assert ClusterSettings(workers=3).to_dict()["workers"] == 3


def test_keywords_and_settings_combine(tmp_path, monkeypatch):
    """A keyword applies over the given settings object, and what reaches the night's plan is
    the combination (the plan is stopped there: no frames are needed)."""
    import glue_zeropoint.night.run as run

    seen = {}

    def stop(raw_dir, catalog, *, settings, **kw):
        seen["settings"] = settings
        raise RuntimeError("stop")

    monkeypatch.setattr(run, "plan_night", stop)
    with pytest.raises(RuntimeError, match="stop"):
        measure_night(tmp_path, None, settings=NightSettings(calibrate=False, max_stars=50),
                      gain=1.5)
    assert seen["settings"] == NightSettings(calibrate=False, max_stars=50, gain=1.5)


def test_trailed_frames_flagged():
    """A frame whose stars stand out as elongated is flagged and named; a night of uniformly
    round stars is not."""
    import numpy as np
    from astropy.table import Table

    from glue_zeropoint.night.run import flag_trailed

    e = [0.05, 0.07, 0.06, 0.08, 0.05, 0.42, 0.06, np.nan]
    frames = Table({"file": [f"f{i}.fits" for i in range(8)], "ellipticity": e,
                    "flags": ["", "", "raw", "", "", "raw", "", ""]})
    notes = flag_trailed(frames)
    assert list(frames["flags"]) == ["", "", "raw", "", "", "raw,trailed", "", ""]
    assert len(notes) == 1 and "f5.fits" in notes[0] and "0.42" in notes[0]
    round_night = Table({"file": ["a", "b", "c", "d", "e"], "ellipticity": [0.1] * 5,
                         "flags": [""] * 5})
    assert flag_trailed(round_night) == [] and set(round_night["flags"]) == {""}


def test_flat_sky_frames_make_no_verdict():
    """A real 8-bit SA112 light (97% of its sky exactly 0 after the overscan): the frame is
    flagged ``flat_sky``; a band resting on such frames gets no photometric verdict (its k
    was 0.96 +- 0.27 on the calibrated night, 0.31 +- 0.14 raw: the light under the floor is
    cut off), and a simulated frame with a real sky is not flagged."""
    from pathlib import Path

    import numpy as np
    from astropy.io import fits
    from astropy.nddata import CCDData
    from astropy.table import Table

    from glue_zeropoint.night.run import _flat_sky_verdict, _photometry_only, _star_columns
    from glue_zeropoint.photometry.aperture import GrowthCurveWarning
    from glue_zeropoint.simulate import simulate_image

    path = Path(__file__).parents[1] / "data" / "raw" / "SA112-SF1-002V1.fit.gz"
    with fits.open(path) as hl:
        data = hl[0].data.astype(np.float64)
        header = hl[0].header.copy()
    data = (data - np.median(data[:, 1537:1541], axis=1, keepdims=True))[:, :1536]
    settings = NightSettings()
    for ccd, flat in ((CCDData(data, unit="adu", meta=header), True),
                      (simulate_image(shape=(256, 256), n_stars=40, seed=4)[0], False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GrowthCurveWarning)  # 8 bits: no bright star
            stars, _ = _photometry_only(ccd, settings)
        row = {"flags": "", "exptime": float(ccd.header.get("EXPTIME", 30.0))}
        _star_columns(row, stars, None, None)
        assert ("flat_sky" in row["flags"].split(",")) is flat

    frames = Table({"band": ["V", "V", "V", "B"], "flags": ["flat_sky", "", "flat_sky", ""],
                    "used_in_fit": [True, True, True, True]})
    notes = []
    verdict, reason = _flat_sky_verdict(frames, {"V": None, "B": None}, "photometric",
                                        "every frame on its line", notes)
    assert verdict == "undetermined"
    assert "V 2/3" in reason and "B" not in reason.split("the fit said")[0].split("frames of")[1]
    assert "the fit said: photometric" in reason and notes
    assert _flat_sky_verdict(frames[[1, 3]], {"V": None}, "photometric", "ok", []) == \
        ("photometric", "ok")
    # frames left out of the fit (--exclude) do not count
    frames["used_in_fit"] = [False, True, False, True]
    assert _flat_sky_verdict(frames, {"V": None, "B": None}, "photometric", "ok", []) == \
        ("photometric", "ok")
