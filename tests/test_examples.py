"""The example scripts run as a user would run them (the Glue one up to the window)."""

import runpy
import sys

import pytest

EXAMPLES = __import__("pathlib").Path(__file__).parents[1] / "examples"


def test_calibrate_and_fit_example_on_its_simulated_night(tmp_path, monkeypatch, capsys):
    import glue_zeropoint.simulate as simulate
    import glue_zeropoint.zeropoint as zeropoint

    truths, results = [], []
    real_simulate, real_measure = simulate.simulate_night, zeropoint.measure_image

    def simulate_and_keep(*args, **kwargs):
        truths.append(real_simulate(*args, **kwargs))
        return truths[-1]

    def measure_and_keep(*args, **kwargs):
        results.append(real_measure(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(simulate, "simulate_night", simulate_and_keep)
    monkeypatch.setattr(zeropoint, "measure_image", measure_and_keep)
    monkeypatch.setattr(sys, "argv", ["calibrate_and_fit.py", "--out", str(tmp_path / "cal")])
    runpy.run_path(str(EXAMPLES / "calibrate_and_fit.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "calibrated 2 light(s)" in out
    assert sorted(p.name for p in (tmp_path / "cal").glob("*_cal.fits")) == [
        "M13-B-60s-001_cal.fits", "M13-V-30s-001_cal.fits"]
    (truth,) = truths
    assert sorted(r.zeropoint.band for r in results) == ["B", "V"]
    for result in results:
        zp = result.zeropoint
        filt = truth.filters[zp.band]
        # the example quotes the ZP at the stars' mean colour; the truth is at filt.color_ref
        expected = filt.zp + filt.color_term * (zp.color_ref - filt.color_ref)
        assert abs(zp.zp - expected) < 4 * zp.zp_err_total, (
            f"ZP({zp.band}) = {zp.zp:.4f} +/- {zp.zp_err_total:.4f}, truth {expected:.4f}")
        assert zp.zp_err_total < 0.02  # millimag errors: the window above is a tight one
        assert abs(zp.color_term - filt.color_term) < 4 * zp.color_term_err
        assert f"ZP({zp.band}) = {zp.zp:.3f} +/- {zp.zp_err:.3f}" in out


def test_open_in_glue_example_builds_the_app(tmp_path, monkeypatch, qapp, no_modal_dialogs):
    from glue_zeropoint.calibration import calibrate_night
    from glue_zeropoint.qt import app as app_module
    from glue_zeropoint.simulate import reference_catalog, simulate_night

    truth = simulate_night(tmp_path / "raw", shape=(256, 256), seed=4,
                           lights=(("V", 30.0, 1),), field_kwargs={"n_stars": 80})
    calibrate_night(tmp_path / "raw", tmp_path / "cal")
    reference_catalog(truth.field, seed=4).write(tmp_path / "cat.ecsv", format="ascii.ecsv")
    started = []
    real_build = app_module.build_app

    def build_and_record(*args, **kwargs):
        app = real_build(*args, **kwargs)
        app.start = lambda **kw: started.append(app)
        return app

    monkeypatch.setattr(app_module, "build_app", build_and_record)
    monkeypatch.setattr(sys, "argv", ["open_in_glue.py", str(tmp_path / "cal"),
                                      str(tmp_path / "cat.ecsv")])
    runpy.run_path(str(EXAMPLES / "open_in_glue.py"), run_name="__main__")
    (app,) = started
    result = app.zp_viewers["zeropoint"].state.result
    assert result is not None and abs(result.zp - 21.6) < 3 * result.zp_err_total
    app.close()
    with pytest.raises(SystemExit):
        monkeypatch.setattr(sys, "argv", ["open_in_glue.py", str(tmp_path / "raw"),
                                          str(tmp_path / "cat.ecsv")])
        runpy.run_path(str(EXAMPLES / "open_in_glue.py"), run_name="__main__")
