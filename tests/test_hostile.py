"""Hostile cases (issue 11): the real ``glue-zeropoint`` command in a subprocess, on real FITS
files in temporary folders. Each case asserts the message, the exit code and that nothing
wrong was written; the kill -9 cases use a real SIGKILL.
"""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from glue_zeropoint.exceptions import StaleProductsError
from glue_zeropoint.simulate import reference_catalog, simulate_night

REPO = Path(__file__).resolve().parents[1]


def _env(tmp_path, **extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    env["GLUE_ZEROPOINT_CACHE_DIR"] = str(tmp_path / "catalog cache")
    env["GLUE_ZEROPOINT_PRODUCTS_DIR"] = str(tmp_path / "glue products")
    # nothing may reach the network: every service points at a closed local port
    env["GLUE_ZEROPOINT_VIZIER_URL"] = env["GLUE_ZEROPOINT_SIMBAD_URL"] = \
        f"http://127.0.0.1:{_closed_port()}"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(tmp_path, *args, env=None, timeout=300, preexec_fn=None):
    """Run ``glue-zeropoint ARGS`` in a subprocess; returns (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "glue_zeropoint.cli", *map(str, args)],
                          capture_output=True, text=True, env=env or _env(tmp_path),
                          timeout=timeout, preexec_fn=preexec_fn, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def night(path, n_lights=3, shape=(64, 64), **kwargs):
    simulate_night(path, shape=shape, n_bias=3, n_dark=3, n_flat=3,
                   lights=(("V", 20.0, n_lights),), cosmic_rays=0, **kwargs)
    return Path(path)


def snapshot(folder):
    """{relative path: bytes} of every file below ``folder``."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def set_key(path, key, value, ext=0):
    with fits.open(path, mode="update") as hdul:
        hdul[ext].header[key] = value


def lights_of(folder):
    return sorted(p.name for p in Path(folder).glob("*_cal.fits"))


def manifest(folder):
    return json.loads((Path(folder) / "calibration.json").read_text())


@pytest.fixture
def raw(tmp_path):
    return night(tmp_path / "raw")


# -- 1. products know they are products ---------------------------------------------------------
def test_products_inside_the_raw_folder_are_never_calibrated_again(tmp_path, raw):
    before = snapshot(raw)
    code, out, err = cli(tmp_path, "calibrate", raw, "--out", raw / "calibrated")
    assert code == 0, err
    first = {p: fits.getdata(raw / "calibrated" / p) for p in lights_of(raw / "calibrated")}
    assert len(first) == 3
    # again into the same sub-folder, and from the raw folder into another folder
    code, out, err = cli(tmp_path, "calibrate", raw, "--out", raw / "calibrated")
    assert code == 0, err
    code, out, err = cli(tmp_path, "calibrate", raw, "--out", tmp_path / "elsewhere")
    assert code == 0, err
    assert "never calibrated again" in err and err.count("never calibrated again") == 1
    for folder in (raw / "calibrated", tmp_path / "elsewhere"):
        assert lights_of(folder) == sorted(first)  # no *_cal_cal.fits
        for name, data in first.items():
            np.testing.assert_allclose(fits.getdata(folder / name), data, rtol=1e-6)
        assert fits.getheader(folder / sorted(first)[0])["ZPSOFT"].startswith("glue-zeropoint")
    after = snapshot(raw)
    assert {k: v for k, v in after.items() if not k.startswith("calibrated/")} == before


def test_copied_products_in_a_subfolder_are_left_out(tmp_path, raw):
    assert cli(tmp_path, "calibrate", raw, "--out", tmp_path / "cal")[0] == 0
    (raw / "copies").mkdir()
    for p in (tmp_path / "cal").glob("*.fits"):
        (raw / "copies" / p.name).write_bytes(p.read_bytes())
    code, out, err = cli(tmp_path, "calibrate", raw, "--out", tmp_path / "cal2")
    assert code == 0, err
    assert lights_of(tmp_path / "cal2") == lights_of(tmp_path / "cal")
    assert "left out" in err
    assert all(f.startswith("copies/") for f in manifest(tmp_path / "cal2")["products_skipped"])


# -- 2. a manifest written last; reruns ----------------------------------------------------------
def test_manifest_names_products_inputs_hashes_and_settings(tmp_path, raw):
    out = tmp_path / "cal"
    assert cli(tmp_path, "calibrate", raw, "--out", out)[0] == 0
    m = manifest(out)["manifest"]
    assert m["complete"] and m["settings"]["combine"] == "median"
    assert len(m["inputs"]) == 12
    import hashlib

    for rel, entry in m["inputs"].items():
        assert entry["sha256"] == hashlib.sha256((raw / rel).read_bytes()).hexdigest()
    light = m["products"]["M13-V-20s-001_cal.fits"]
    assert light["kind"] == "light" and light["inputs"] == ["M13-V-20s-001.fit"]
    assert "master_flat_V.fits" in light["masters"]
    assert set(m["products"]) == {p.name for p in out.glob("*.fits")}


def test_rerun_reuses_what_is_current_and_redoes_the_rest(tmp_path, raw):
    out = tmp_path / "cal"
    assert cli(tmp_path, "calibrate", raw, "--out", out)[0] == 0
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
    assert code == 0 and "reused 3 calibrated light(s)" in stdout
    # a different gain: every light redone, nothing of the first run left
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out, "--gain", "2.5")
    assert code == 0, err
    assert "reused" not in stdout
    for name in lights_of(out):
        assert fits.getheader(out / name)["RAWGAIN"] == 2.5
    assert manifest(out)["manifest"]["settings"]["gain"] == 2.5
    assert manifest(out)["gain"]["value"] == 2.5


def test_removed_raw_light_makes_the_folder_stale_and_its_product_goes(tmp_path, raw):
    from glue_zeropoint.glue.loader import load_night

    out = tmp_path / "cal"
    assert cli(tmp_path, "calibrate", raw, "--out", out)[0] == 0
    (raw / "M13-V-20s-003.fit").unlink()
    with pytest.raises(StaleProductsError, match="removed or renamed.*M13-V-20s-003.fit"):
        load_night(out)
    code, stdout, err = cli(tmp_path, "measure", out / "M13-V-20s-001_cal.fits", "--catalog",
                            "cat.ecsv", "--band", "V", "--out", tmp_path / "zp")
    assert code == 2 and "cannot be trusted" in err and "M13-V-20s-003.fit" in err
    assert not (tmp_path / "zp" / "zeropoint.json").exists()
    assert cli(tmp_path, "calibrate", raw, "--out", out)[0] == 0
    assert lights_of(out) == ["M13-V-20s-001_cal.fits", "M13-V-20s-002_cal.fits"]
    assert "M13-V-20s-003_cal.fits" in manifest(out)["manifest"]["removed"]
    assert len(load_night(out)) == 2 + 3


def test_a_folder_of_another_night_is_refused(tmp_path, raw):
    other = night(tmp_path / "other night", seed=4)
    out = tmp_path / "cal"
    assert cli(tmp_path, "calibrate", raw, "--out", out)[0] == 0
    before = snapshot(out)
    code, stdout, err = cli(tmp_path, "calibrate", other, "--out", out)
    assert code == 2 and "products of another raw folder" in err
    assert snapshot(out) == before


# -- 3. one writer at a time; kill -9 -------------------------------------------------------------
def _holder(tmp_path, folder):
    code = ("import sys, time; from glue_zeropoint.io import OutputLock; "
            f"lock = OutputLock({str(folder)!r}, 'calibrate').acquire(); "
            "print('locked', flush=True); "
            "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=_env(tmp_path))
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_refused_then_stale_lock_of_killed_holder_taken_over(tmp_path, raw):
    out = tmp_path / "cal"
    out.mkdir()
    holder = _holder(tmp_path, out)
    try:
        code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
        assert code == 2
        assert f"process {holder.pid} on host {socket.gethostname()!r}" in err
        assert "another glue-zeropoint run is writing" in err
        assert lights_of(out) == [] and not (out / "calibration.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / ".glue-zeropoint.lock").exists()  # left behind by the killed holder
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
    assert code == 0, err
    assert "no longer running" in stdout
    assert not (out / ".glue-zeropoint.lock").exists()


def test_kill_9_mid_calibration_leaves_an_untrusted_folder_then_a_rerun_repairs(tmp_path):
    from glue_zeropoint.glue.loader import load_night

    raw = night(tmp_path / "big", n_lights=30, shape=(256, 256))
    out = tmp_path / "cal"
    proc = subprocess.Popen([sys.executable, "-m", "glue_zeropoint.cli", "calibrate", str(raw),
                             "--out", str(out)], env=_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(out.glob("*_cal.fits")):
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("the calibration finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "calibration.json").exists()
    (out / ".M13-V-20s-009_cal.fits.abcd1234.tmp").write_bytes(b"")  # as a killed write leaves
    with pytest.raises(StaleProductsError, match="did not finish"):
        load_night(out)
    product = sorted(out.glob("*_cal.fits"))[0]
    with pytest.raises(StaleProductsError, match="did not finish"):
        load_night(product)
    code, stdout, err = cli(tmp_path, "measure", product, "--catalog", "cat.ecsv", "--band",
                            "V", "--out", tmp_path / "zp")
    assert code == 2 and "did not finish" in err
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
    assert code == 0, err
    assert len(lights_of(out)) == 30 and not list(out.glob(".*.tmp"))
    assert not (out / ".glue-zeropoint.lock").exists()
    assert len(load_night(out)) == 30 + 3


def test_glue_loader_reports_an_incomplete_folder_without_a_traceback(tmp_path, raw):
    from glue_zeropoint.glue import loader

    out = tmp_path / "cal"
    assert cli(tmp_path, "calibrate", raw, "--out", out)[0] == 0
    (out / "calibration.json").unlink()  # as after a kill -9
    messages = []
    previous = loader.set_error_reporter(messages.append)
    try:
        assert loader.raw_night_factory(str(out)) == []
    finally:
        loader.set_error_reporter(previous)
    assert len(messages) == 1 and "calibration.json" in messages[0]
    assert "glue-zeropoint calibrate" in messages[0]


# -- 4. headers checked before any pixel ---------------------------------------------------------
@pytest.mark.parametrize("value", [-20.0, 0.0])
def test_light_with_nonpositive_exptime_is_refused_the_rest_calibrated(tmp_path, raw, value):
    set_key(raw / "M13-V-20s-002.fit", "EXPTIME", value)
    out = tmp_path / "cal"
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
    assert code == 0, err
    assert f"M13-V-20s-002.fit: exposure time {value:g} s for a light" in err
    assert "correct EXPTIME" in err and "REFUSED" in stdout
    assert lights_of(out) == ["M13-V-20s-001_cal.fits", "M13-V-20s-003_cal.fits"]
    assert manifest(out)["refused"][0]["file"] == "M13-V-20s-002.fit"


def test_darks_with_negative_exptime_are_refused_not_added(tmp_path, raw):
    for p in raw.glob("Dark-*.fit"):
        set_key(p, "EXPTIME", -20.0)
    out = tmp_path / "cal"
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
    assert code == 0, err
    assert err.count("for a dark (must be > 0); refused") == 3
    assert not (out / "master_dark.fits").exists()
    assert "dark current not subtracted" in stdout
    good = tmp_path / "good"
    raw2 = night(tmp_path / "raw2")
    assert cli(tmp_path, "calibrate", raw2, "--out", good)[0] == 0
    a = fits.getdata(out / "M13-V-20s-001_cal.fits")
    b = fits.getdata(good / "M13-V-20s-001_cal.fits")
    # without the dark the hot pixels stay (not doubled): never below the dark-subtracted one
    assert np.nanmax(a) < 2 * np.nanmax(b) + 1000


def test_name_and_header_type_conflict_is_refused(tmp_path, raw):
    set_key(raw / "Bias-001.fit", "IMAGETYP", "Light Frame")
    set_key(raw / "Bias-001.fit", "EXPTIME", 20.0)
    out = tmp_path / "cal"
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
    assert code == 0, err
    assert "Bias-001.fit: IMAGETYP = 'Light Frame' says light but the file name says bias" in err
    assert "Bias-001_cal.fits" not in lights_of(out)


def test_conflicting_gains_are_refused_unless_given(tmp_path, raw):
    set_key(raw / "Flat-V-002.fit", "EGAIN", 2.2)
    before = snapshot(raw)
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", tmp_path / "cal")
    assert code == 2
    assert "disagree on the gain" in err and "Flat-V-002.fit" in err and "--gain" in err
    assert lights_of(tmp_path / "cal") == []
    assert not (tmp_path / "cal" / "calibration.json").exists()
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", tmp_path / "cal", "--gain",
                            "1.4")
    assert code == 0 and "headers disagree on the gain" in err
    assert snapshot(raw) == before


def test_multi_extension_frames_take_keywords_from_the_primary_header(tmp_path, raw):
    for p in sorted(raw.glob("*.fit")):
        with fits.open(p) as hdul:
            header, data = hdul[0].header.copy(), hdul[0].data.copy()
        primary = fits.PrimaryHDU()
        for key in ("IMAGETYP", "EXPTIME", "FILTER", "EGAIN", "DATE-OBS"):
            if key in header:
                primary.header[key] = header[key]
                del header[key]
        ext = fits.ImageHDU(data, header=header)
        fits.HDUList([primary, ext]).writeto(p, overwrite=True)
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", tmp_path / "cal")
    assert code == 0, err
    assert len(lights_of(tmp_path / "cal")) == 3
    assert fits.getheader(tmp_path / "cal" / "M13-V-20s-001_cal.fits")["EXPTIME"] == 20.0


# -- 5. any file name, any disk state --------------------------------------------------------------
def test_non_ascii_file_names_work_everywhere(tmp_path, raw):
    from glue_zeropoint.glue.loader import load_night

    (raw / "Dark-20s-001.fit").rename(raw / "Dark-ü.fit")
    (raw / "Flat-V-001.fit").rename(raw / "Flat-Hα.fit")
    (raw / "M13-V-20s-001.fit").rename(raw / "M13-V-20s-été.fit")
    set_key(raw / "Flat-Hα.fit", "FILTER", "V")
    out = tmp_path / "cal"
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out)
    assert code == 0, err
    assert "M13-V-20s-été_cal.fits" in lights_of(out)
    m = manifest(out)["manifest"]
    assert {"Dark-ü.fit", "Flat-Hα.fit", "M13-V-20s-été.fit"} <= set(m["inputs"])
    history = str(fits.getheader(out / "M13-V-20s-été_cal.fits")["HISTORY"])
    assert "M13-V-20s-ete.fit" in history
    assert "Flat-H\\u03b1.fit" in str(fits.getheader(out / "master_flat_V.fits")["HISTORY"])
    # the Glue loader on the raw folder (calibrates into its products folder)
    os.environ["GLUE_ZEROPOINT_PRODUCTS_DIR"] = str(tmp_path / "glue products")
    try:
        datasets = load_night(raw)
    finally:
        del os.environ["GLUE_ZEROPOINT_PRODUCTS_DIR"]
    assert "M13-V-20s-été" in [d.label for d in datasets]


def _file_size_limit(nbytes):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return limit


def test_full_disk_names_the_file_and_leaves_nothing_half_written(tmp_path, raw):
    # a first run without the limit, so that numba's on-disk kernel cache is written
    assert cli(tmp_path, "calibrate", raw, "--out", tmp_path / "warm")[0] == 0
    out = tmp_path / "cal"
    before = snapshot(raw)
    code, stdout, err = cli(tmp_path, "calibrate", raw, "--out", out,
                            preexec_fn=_file_size_limit(20_000))
    assert code == 1
    assert "could not be written" in err and "free some space" in err
    assert "internal error" not in err and ".fits" in err
    assert not (out / "calibration.json").exists()
    assert not list(out.glob(".*.tmp"))
    assert snapshot(raw) == before
    for p in out.glob("*.fits"):  # whatever is there is complete
        with fits.open(p) as hdul:
            hdul.verify("exception")
            assert "MASK" in hdul


# -- measure: stale, results, --wcs, positions, catalogs -------------------------------------------
@pytest.fixture
def measured(tmp_path):
    """A calibrated night with a WCS and its local catalog file (cat.ecsv in tmp_path)."""
    truth = simulate_night(tmp_path / "wraw", shape=(256, 256), n_bias=3, n_dark=3, n_flat=3,
                           lights=(("V", 20.0, 1),), cosmic_rays=0, seed=2)
    cat = reference_catalog(truth.field, bands=("B", "V"), seed=2) \
        if "bands" in reference_catalog.__code__.co_varnames else reference_catalog(truth.field)
    cat.write(tmp_path / "cat.ecsv", format="ascii.ecsv", overwrite=True)
    out = tmp_path / "wcal"
    code, stdout, err = cli(tmp_path, "calibrate", tmp_path / "wraw", "--out", out)
    assert code == 0, err
    return next(out.glob("*_cal.fits")), tmp_path / "cat.ecsv"


def test_measure_that_fails_to_write_leaves_no_result(tmp_path, measured):
    image, cat = measured
    zp = tmp_path / "zp"
    code, stdout, err = cli(tmp_path, "measure", image, "--catalog", cat, "--band", "V",
                            "--out", zp, "--no-plot")
    if code != 0:
        pytest.skip(f"the simulated image gives no zero point here: {err}")
    assert (zp / "zeropoint.json").exists()
    code, stdout, err = cli(tmp_path, "measure", image, "--catalog", cat, "--band", "V",
                            "--out", zp, preexec_fn=_file_size_limit(30_000))
    assert code == 1 and "could not be written" in err
    assert not (zp / "zeropoint.json").exists()  # neither the new one nor the old one
    assert not [p for p in zp.iterdir() if p.name.startswith(".measure-")]


def test_wcs_file_of_another_image_size_is_refused(tmp_path, measured):
    image, cat = measured
    header = fits.getheader(image)
    wcs = tmp_path / "other.wcs"
    hdr = fits.Header({k: header[k] for k in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2",
                                              "CRPIX1", "CRPIX2") if k in header})
    for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2", "CDELT1", "CDELT2"):
        if k in header:
            hdr[k] = header[k]
    hdr["IMAGEW"], hdr["IMAGEH"] = 512, 512
    fits.PrimaryHDU(header=hdr).writeto(wcs)
    code, stdout, err = cli(tmp_path, "measure", image, "--catalog", cat, "--band", "V",
                            "--wcs", wcs, "--out", tmp_path / "zp")
    assert code == 2 and "is for a 512x512 image but the image is 256x256" in err


def test_off_image_positions_say_so(tmp_path, measured):
    image, cat = measured
    pos = tmp_path / "pos.csv"
    pos.write_text("x,y\n1000,1000\n-50,2000\n")
    code, stdout, err = cli(tmp_path, "measure", image, "--catalog", cat, "--band", "V",
                            "--positions", pos, "--out", tmp_path / "zp")
    assert code == 2 and "none of the 2 pixel positions falls on the image" in err


def test_header_only_catalog_file_is_a_clear_error(tmp_path, measured):
    image, _ = measured
    empty = tmp_path / "empty.ecsv"
    empty.write_text("# %ECSV 1.0\n# ---\n# datatype:\n# - {name: ra, datatype: float64}\n"
                     "# - {name: dec, datatype: float64}\n# - {name: V, datatype: float64}\n"
                     "ra dec V\n")
    code, stdout, err = cli(tmp_path, "measure", image, "--catalog", empty, "--band", "V",
                            "--out", tmp_path / "zp")
    assert code == 2 and "NoneType" not in err and "empty.ecsv" in err


class _SilentServer:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_default_catalog_with_the_service_down_is_exit_1(tmp_path, measured):
    image, _ = measured
    code, stdout, err = cli(tmp_path, "measure", image, "--catalog", "default", "--band", "V",
                            "--out", tmp_path / "zp", "--timeout", "5")
    assert code == 1 and "could not be reached" in err
    assert not (tmp_path / "zp" / "zeropoint.json").exists()


def test_a_silent_service_honours_timeout_and_names_the_right_option(tmp_path, measured):
    image, _ = measured
    server = _SilentServer()
    try:
        env = _env(tmp_path, GLUE_ZEROPOINT_VIZIER_URL=f"http://127.0.0.1:{server.port}")
        for cmd in (["measure", image, "--catalog", "default", "--band", "V", "--out",
                     tmp_path / "zp"],
                    ["catalog", image, "--catalog", "vizier:II/336/apass9", "--out",
                     tmp_path / "c.ecsv"]):
            code, stdout, err = cli(tmp_path, *cmd, "--timeout", "2", env=env, timeout=120)
            assert code == 1, err
            assert "did not answer within 2 s" in err and "--timeout" in err
            assert "--radius" not in err
    finally:
        server.close()


def test_glue_opens_a_raw_folder_holding_its_own_products(tmp_path, raw, monkeypatch):
    from glue_zeropoint.glue.loader import load_night

    assert cli(tmp_path, "calibrate", raw, "--out", raw / "calibrated")[0] == 0
    monkeypatch.setenv("GLUE_ZEROPOINT_PRODUCTS_DIR", str(tmp_path / "glue products"))
    datasets = load_night(raw)
    labels = [d.label for d in datasets]
    assert labels[:3] == ["M13-V-20s-001", "M13-V-20s-002", "M13-V-20s-003"]
    assert not any("_cal" in label for label in labels)
    # and the folder of products itself loads through its manifest
    assert len(load_night(raw / "calibrated")) == 3 + 3


def test_a_cube_of_colour_planes_is_refused_with_what_to_do(tmp_path):
    """A debayered colour image saved as R, G, B planes (NAXIS3 = 3) is not a frame: the
    scan and measure say what it is and what to give instead, not 'no 2-D image'."""
    cube = np.zeros((3, 40, 50), np.float32)
    path = tmp_path / "raw" / "M13_rgb_001.fits"
    path.parent.mkdir()
    fits.PrimaryHDU(cube, fits.Header({"EXPTIME": 30.0})).writeto(path)
    code, _out, err = cli(tmp_path, "measure", path, "--catalog", "simbad", "--band", "V",
                          "--out", tmp_path / "m")
    assert code == 2 and "3-D image (3 x 40 x 50" in err and "R, G, B planes" in err
    code, _out, err = cli(tmp_path, "calibrate", path.parent, "--out", tmp_path / "c")
    assert code == 2 and "3-D image" in err and "save one plane" in err


def test_a_multi_extension_file_says_only_its_first_image_is_measured(tmp_path):
    """A mosaic camera's file (one CCD per extension, EXPTIME in the primary header): the
    first image is measured with the primary's keywords, and the others are said to be left
    out (calibrate and measure), never silently."""
    rng = np.random.default_rng(0)
    hdus = [fits.PrimaryHDU(header=fits.Header({"EXPTIME": 30.0, "IMAGETYP": "LIGHT"}))]
    hdus += [fits.ImageHDU(rng.normal(1000, 10, (60, 80)).astype(np.float32), name=f"CCD{i}")
             for i in (1, 2, 3)]
    path = tmp_path / "raw" / "mosaic_001.fits"
    path.parent.mkdir()
    fits.HDUList(hdus).writeto(path)
    code, _out, err = cli(tmp_path, "measure", path, "--catalog", "simbad", "--band", "V",
                          "--offline", "--out", tmp_path / "m")
    assert "3 image extensions; only the first (CCD1) is measured" in err
    assert code == 2 and "EXPTIME" not in err  # the primary's exposure time was taken
    code, _out, err = cli(tmp_path, "calibrate", path.parent, "--out", tmp_path / "c",
                          "--gain", "1", "--read-noise", "5")
    assert "3 image extensions: only the first (HDU 1) is calibrated" in err
