"""``glue-zeropoint night`` end to end on a simulated raw night (the real CLI, a subprocess).

The night (:func:`glue_zeropoint.simulate.extinction.write_extinction_night`): B and V, six
lights each from airmass 2.3 to 1.05 at a real site, k_B = 0.30, k_V = 0.18, a cloud of
0.4 mag over the third and fourth light of each band, plus one blank light (no stars) that
must fail alone while the night goes on.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from glue_zeropoint.simulate import reference_catalog
from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    base = tmp_path_factory.mktemp("simnight")
    truth, lights = write_extinction_night(base / "raw", seed=1, n_per_band=6)
    cat = reference_catalog(truth.field, style="normalised")
    cat.write(base / "catalog.ecsv")
    # a blank light: the dome was closed
    h = fits.getheader(lights[0]["path"])
    h["DATE-OBS"] = lights[-1]["time"]
    data = np.full(fits.getdata(lights[0]["path"]).shape, 1000, np.uint16)
    fits.PrimaryHDU(data, header=h).writeto(base / "raw" / "SIMFIELD-V-blank.fit")
    raw_bytes = {p: p.read_bytes() for p in (base / "raw").glob("*.fit")}
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen",
               MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "glue_zeropoint.cli", "night", str(base / "raw"),
         "--catalog", str(base / "catalog.ecsv"), "--out", str(base / "out")],
        capture_output=True, text=True, env=env, timeout=900)
    return {"base": base, "truth": truth, "lights": lights, "proc": proc,
            "raw_bytes": raw_bytes}


def test_runs_and_prints_a_line_per_frame(night):
    proc = night["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[")]
    assert len(lines) == 13
    blank = [ln for ln in lines if "blank" in ln]
    assert len(blank) == 1 and "FAILED" in blank[0]
    assert sum("ZP" in ln for ln in lines) == 12
    assert "verdict: NOT PHOTOMETRIC" in proc.stdout


def test_raw_files_untouched(night):
    for p, b in night["raw_bytes"].items():
        assert p.read_bytes() == b


def test_extinction_recovered_and_clouds_named(night):
    summary = json.loads((night["base"] / "out" / "night.json").read_text())
    for band, bt in DEFAULT_BANDS.items():
        b = summary["bands"][band]
        assert abs(b["k"] - bt.k) <= b["k_ci95"], (band, b)
        assert b["n_cloudy"] == 2
    cloudy = {Path(str(lt["path"])).name for lt in night["lights"] if lt["cloud"] > 0}
    assert set(summary["cloudy_frames"]) == cloudy
    assert list(summary["failed_frames"]) == ["SIMFIELD-V-blank.fit"]
    assert summary["verdict"] == "not photometric" and "clouds" in summary["verdict_reason"]


def test_night_table_units_and_provenance(night):
    t = Table.read(night["base"] / "out" / "night.ecsv")
    assert len(t) == 13
    assert str(t["sky_sb"].unit) == "mag / arcsec2"
    assert t["airmass_source"][0].startswith("header AIRMASS")
    assert "provenance" in t.meta and t.meta["provenance"]["catalog"].endswith("catalog.ecsv")
    ok = t["status"] == "ok"
    # the header's airmass (sec z, as MaxIm writes it) moved to mid-exposure; the computed
    # one (Young 1994) is below sec z by ~0.013 at X = 2.3, less lower down
    dx = t["airmass"][ok] - t["airmass_computed"][ok]
    assert np.all((dx > -0.002) & (dx < 0.015))
    # the sky brightness of clear frames: the simulated 21.3 (B) and 20.5 (V)
    clear = ok & ~t["cloudy"]
    for band, sky in (("B", 21.3), ("V", 20.5)):
        m = clear & (t["band"] == band)
        assert np.median(t["sky_sb"][m]) == pytest.approx(sky, abs=0.1)
    assert np.all(np.isfinite(t["moon_alt"][ok])) and np.all(t["sun_alt"][ok] < -12)


def test_standard_magnitudes_of_every_star(night):
    st = Table.read(night["base"] / "out" / "stars_standard.ecsv")
    assert len(st) > 40
    assert str(st["mag_V"].unit) == "mag"
    m = np.isfinite(st["cat_V"]) & (st["err_V"] < 0.02)
    d = st["mag_V"][m] - st["cat_V"][m]
    assert abs(np.median(d)) < 0.03
    assert "model" in st.meta
    # stars the catalog does not have get a magnitude too (none here: every simulated star
    # is in the catalog) -- the colour source says where the colour came from
    assert set(st["colour_source_V"]) <= {"catalog", "night", "none"}


def test_plots_and_regions_written(night):
    out = night["base"] / "out"
    for name in ("extinction.png", "night_time.png", "night_detections.ecsv"):
        assert (out / name).stat().st_size > 1000
    regs = sorted((out / "regions").glob("*.reg"))
    assert len(regs) == 12
    assert "circle" in regs[0].read_text()
    assert not list(out.glob(".*.tmp"))


def test_relative_night_without_catalog(night):
    """The same frames, no catalog: k and the clouds from the night's own stars."""
    from astropy.nddata import CCDData

    from glue_zeropoint.night.run import measure_night

    cal = sorted((night["base"] / "out" / "calibrated").glob("SIMFIELD-[BV]-0*_cal.fits"))
    lights = [CCDData.read(p, hdu=0, unit="electron") for p in cal]
    r = measure_night(night["base"] / "raw", None, lights=lights,
                      names=[p.name for p in cal])
    assert set(r.frames["status"]) == {"relative"}
    for band, bt in DEFAULT_BANDS.items():
        f = r.fits[band]
        assert abs(f.k - bt.k) <= f.k_ci95
        assert f.cloudy.sum() == 2
    assert r.standards is None
    assert np.nanmax(r.frames["rel_transparency"]) == 1.0
    assert any("no catalog" in n for n in r.notes)


def test_one_aperture_for_the_night(night):
    """--aperture: every frame measured in the same radius, the night compares aperture
    magnitudes under the band's median correction, and k is still recovered."""
    from astropy.nddata import CCDData

    from glue_zeropoint.night.run import measure_night

    cal = sorted((night["base"] / "out" / "calibrated").glob("SIMFIELD-[BV]-0*_cal.fits"))
    lights = [CCDData.read(p, hdu=0, unit="electron") for p in cal]
    r = measure_night(night["base"] / "raw", None, lights=lights,
                      names=[p.name for p in cal], aperture_radius=5.0)
    assert np.all(np.asarray(r.frames["aperture_radius"], float) == 5.0)
    assert set(r.frames["photometry"]) == {"aperture"}
    for band, bt in DEFAULT_BANDS.items():
        f = r.fits[band]
        assert abs(f.k - bt.k) <= f.k_ci95
    assert r.provenance["settings"]["aperture_radius"] == 5.0
    # 5 px is less than 2.5x the widest simulated frame's FWHM (~3 px): the night says so
    fw = float(np.nanmax(np.asarray(r.frames["fwhm"], float)))
    assert fw > 2.0
    assert any(n.startswith("one aperture of 5 px") and f"{2.5 * fw:.1f} px" in n
               for n in r.notes)


@pytest.fixture(scope="module")
def products_night(night):
    """The first run's calibrated products measured again (``night OUT/calibrated
    --no-calibrate``), in one process; and the products' modification times before."""
    from glue_zeropoint.night.run import measure_night

    cal_dir = night["base"] / "out" / "calibrated"
    before = {p: p.stat().st_mtime_ns for p in cal_dir.iterdir()}
    r = measure_night(cal_dir, str(night["base"] / "catalog.ecsv"), calibrate=False)
    return r, before


def test_products_measured_again_without_calibrating(night, products_night):
    """``night OUT/calibrated --no-calibrate``: the calibrated lights of a first run are
    measured as they are (their uncertainty and mask read, the masters left out) and give the
    first run's zero points, with nothing calibrated again."""
    cal_dir = night["base"] / "out" / "calibrated"
    r, before = products_night
    first = Table.read(night["base"] / "out" / "night.ecsv")
    assert r.provenance["calibration"] == ("none: calibrated products of glue-zeropoint "
                                           "measured as they are")
    files = [str(f) for f in r.frames["file"]]
    assert len(files) == 13 and all(f.endswith("_cal.fits") for f in files)
    assert not any(f.startswith("master") for f in files)
    zp0 = {str(f).rsplit(".", 1)[0]: z for f, z, s in
           zip(first["file"], first["zp"], first["status"], strict=True) if s == "ok"}
    zp1 = {f[:-len("_cal.fits")]: z for f, z, s in
           zip(files, r.frames["zp"], r.frames["status"], strict=True) if s == "ok"}
    assert len(zp0) == 12 and zp1.keys() == zp0.keys()
    for k in zp0:
        assert zp1[k] == pytest.approx(zp0[k], abs=1e-9)
    sb0 = first["sky_sb"][first["status"] == "ok"]
    sb1 = r.frames["sky_sb"][r.frames["status"] == "ok"]
    np.testing.assert_allclose(np.sort(sb1), np.sort(sb0), atol=1e-9)  # calibrated: sky kept
    assert {p: p.stat().st_mtime_ns for p in cal_dir.iterdir()} == before


def test_raw_lights_and_products_never_both(night, tmp_path):
    """A folder holding raw lights and, below it, an earlier run's products: the raw lights
    are measured and the products left out with a warning (never the same frame twice)."""
    import shutil

    from glue_zeropoint.exceptions import CalibrationWarning
    from glue_zeropoint.night.run import plan_night

    raw = tmp_path / "raw"
    (raw / "out").mkdir(parents=True)
    shutil.copy(night["lights"][0]["path"], raw)
    prod = sorted((night["base"] / "out" / "calibrated").glob("SIMFIELD-*_cal.fits"))[0]
    shutil.copy(prod, raw / "out")
    shutil.copy(night["base"] / "out" / "calibrated" / "master_bias.fits", raw / "out")
    with pytest.warns(CalibrationWarning, match="1 calibrated product.*left out"):
        plan = plan_night(raw, None, calibrate=False)
    assert plan.names == [Path(night["lights"][0]["path"]).name]
    assert "raw lights" in plan.provenance["calibration"]
    plan = plan_night(raw / "out", None, calibrate=False)  # the products alone
    assert plan.names == [prod.name]


def _same_table(a, b):
    assert a.colnames == b.colnames and len(a) == len(b)
    for c in a.colnames:
        x, y = np.asarray(a[c]), np.asarray(b[c])
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=c)  # NaN == NaN here
        else:
            assert x.tolist() == y.tolist(), c


def test_workers_measure_the_same_night(night, products_night):
    """``night --workers 2``: the frames on two worker processes give the night of one
    process, row for row, with a line per frame and progress as they finish."""
    from glue_zeropoint.night.run import measure_night

    cal_dir = night["base"] / "out" / "calibrated"
    serial, _ = products_night
    lines, steps = [], []
    r = measure_night(cal_dir, str(night["base"] / "catalog.ecsv"), calibrate=False,
                      workers=2, echo=lines.append, progress=lambda d, t, m: steps.append(
                          (d, t, m)))
    _same_table(r.frames, serial.frames)
    _same_table(r.detections, serial.detections)
    assert r.verdict == serial.verdict
    for band, f in serial.fits.items():
        assert r.fits[band].k == f.k and r.fits[band].k_err == f.k_err
    assert len(lines) == 13 and lines[0].startswith("[1/13] ") and lines[-1].startswith(
        "[13/13] ")
    assert steps[0][2] == "measuring 13 frames on 2 processes"
    assert sum(m.startswith("measured ") for _, _, m in steps) == 13


def test_workers_refused_when_not_a_count(night):
    from glue_zeropoint.exceptions import InputError
    from glue_zeropoint.night.run import measure_night

    with pytest.raises(InputError, match="workers=0"):
        measure_night(night["base"] / "raw", None, workers=0)
    proc = subprocess.run(
        [sys.executable, "-m", "glue_zeropoint.cli", "night", str(night["base"] / "raw"),
         "--out", str(night["base"] / "out_w0"), "--workers", "0"], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode != 0 and "--workers 0: give 1 or more" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("workers", [None, 2])
def test_a_frame_unreadable_since_planned_fails_alone(night, tmp_path, workers):
    """A light whose pixels cannot be read when it is measured (truncated after the night was
    planned) is a failed row saying why; the other frames are measured, in one process or on
    worker processes."""
    import shutil

    from glue_zeropoint.night.parallel import local_cluster
    from glue_zeropoint.night.run import _measure_frames, plan_night
    from glue_zeropoint.night.settings import NightSettings

    raw = tmp_path / "raw"
    raw.mkdir()
    paths = [Path(x["path"]) for x in night["lights"][:4]]
    for p in paths:
        shutil.copy(p, raw)
    st = NightSettings(calibrate=False)
    plan = plan_night(raw, None, settings=st)
    bad = raw / paths[1].name
    head = len(fits.getheader(bad).tostring())
    bad.write_bytes(bad.read_bytes()[:head + 5000])  # the header whole, most pixels gone
    with local_cluster(workers or 1) as cluster:
        out = _measure_frames(plan, st, cluster if workers else None, None, None)
    rows = {o.row["file"]: o.row for o in out.values()}
    assert len(rows) == 4
    assert rows[bad.name]["status"] == "failed"
    assert rows[bad.name]["reason"].startswith("could not read the frame's pixels: ValueError")
    assert rows[bad.name]["band"] == "V"  # from the header read when the night was planned
    assert all(r["status"] == "relative" for f, r in rows.items() if f != bad.name)


@pytest.mark.parametrize("imagetyp, name, is_light", [
    ("Light Frame", "x_cal.fits", True), ("OBJECT", "x_cal.fits", True),
    ("", "M13_20s_Clear001_cal.fits", True),
    ("master bias", "x_cal.fits", False), ("Master Flat V", "x_cal.fits", False),
    ("Flat Field", "x_cal.fits", False), ("BIAS", "x_cal.fits", False),
    ("Dark Frame", "x_cal.fits", False), ("", "flat_15s_V003_cal.fits", False)])
def test_products_told_apart_without_light_in_imagetyp(tmp_path, imagetyp, name, is_light):
    """A calibrated light keeps its raw frame's IMAGETYP ('OBJECT' in IRAF-style headers,
    empty where the raw frames were told apart by file name): a 2-D product with an
    uncertainty plane is a light for ``--no-calibrate`` unless its header (or, where the
    header is silent, its name) says master, bias, dark or flat."""
    from glue_zeropoint.night.run import _is_light_product

    h = fits.Header({"IMAGETYP": imagetyp} if imagetyp else {})
    path = tmp_path / name
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4), np.float32), header=h),
                  fits.ImageHDU(np.ones((4, 4), np.float32), name="UNCERT")]).writeto(path)
    assert _is_light_product(path) is is_light
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4), np.float32), header=h)]).writeto(
        tmp_path / "plain.fits")  # no uncertainty plane: not our product
    assert _is_light_product(tmp_path / "plain.fits") is False


def test_cluster_started_in_the_background_reports_its_failure(monkeypatch):
    """``local_cluster.start()`` starts the processes while the night is planned; a start
    that fails raises in the caller's thread at ``client()``, and the context closes cleanly
    whether or not the client was ever asked for."""
    from glue_zeropoint.night import parallel

    def broken(self):
        raise OSError("no processes here")

    monkeypatch.setattr(parallel.local_cluster, "_make", broken)
    with parallel.local_cluster(2) as cluster:
        cluster.start()
        with pytest.raises(OSError, match="no processes here"):
            cluster.client()
    monkeypatch.undo()
    # started, never used (the planning failed, say): the context waits and closes it
    with pytest.raises(RuntimeError, match="planning failed"), \
            parallel.local_cluster(1) as cluster:
        cluster.start()
        raise RuntimeError("planning failed")
    assert cluster._thread is None and cluster._client is not None
    assert cluster._client.status == "closed" and cluster.cluster.status.name == "closed"


def test_cluster_quiet_beside_a_running_dask():
    """Port 8787 taken (a user's own Dask dashboard): the night's cluster starts without a
    warning, its scheduler's HTTP server on a free local port, no dashboard."""
    import socket
    import warnings

    from glue_zeropoint.night.parallel import local_cluster

    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 8787))
        sock.listen()
    except OSError:
        pass  # already taken: the same situation
    try:
        with warnings.catch_warnings(record=True) as caught, local_cluster(1) as cluster:
            warnings.simplefilter("always")
            client = cluster.client()
            assert client.submit(sum, [1, 2]).result() == 3
            port = cluster.cluster.scheduler.http_server.port
        assert port != 8787
        assert not [w for w in caught if "8787" in str(w.message)]
    finally:
        sock.close()


_NUMBA_FIRST = """\
import os
from types import SimpleNamespace

import numba  # imported by the main module: a spawned worker re-imports it first

import glue_zeropoint.night.run as run
from glue_zeropoint.night.parallel import local_cluster, measure_frames


def threads(light, **kwargs):
    return numba.get_num_threads()


def trim():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset")


run.measure_frame = threads  # (in the workers too: they re-import this module)

if __name__ == "__main__":
    plan = SimpleNamespace(lights=[None] * 4, cats={},
                           frame_kwargs=lambda i: {"index": i, "field": 0})
    got = []
    with local_cluster(2) as cluster:
        measure_frames(plan, range(4), None, cluster,
                       lambda i, fo, error=None: got.append(fo if error is None else error))
        print("trim", sorted(cluster.client().run(trim).values()))
    print("threads", sorted(got))
"""


def test_worker_kernels_on_one_thread_whatever_the_main_module_imported(tmp_path):
    """The workers' environment (``NUMBA_NUM_THREADS=1``) is applied by the Dask nanny only
    after the spawned worker has re-imported the parent's main module; a script that imports
    numba (or ``glue_zeropoint.night.run``) at its top had its workers run every kernel on
    all cores, N workers fighting for N cores (2 workers were slower than one process on
    HAT-P-32). The frames ``measure_frames`` submits run one thread regardless. And the
    workers keep glibc's allocator as it is (Dask's MALLOC_TRIM_THRESHOLD_ made each frame
    fault its arrays' pages in afresh: 16% slower)."""
    script = tmp_path / "numba_first.py"
    script.write_text(_NUMBA_FIRST)
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "threads [1, 1, 1, 1]" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "trim ['unset', 'unset']" in proc.stdout, proc.stdout


def test_in_worker_keeps_numba_threads_where_no_limit_is_set(monkeypatch):
    """Outside our workers (no ``NUMBA_NUM_THREADS`` in the environment, e.g. a user's own
    ``dask worker``) the task's threads are numba's own."""
    import numba

    from glue_zeropoint.night.parallel import in_worker

    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    n = numba.get_num_threads()
    assert in_worker(numba.get_num_threads) == n
    assert in_worker(lambda a, b=0: a + b, 1, b=2) == 3


def test_read_noise_given_where_the_night_cannot_measure_it(night, tmp_path):
    """No RDNOISE in the headers, one bias, one dark: the night cannot measure the read noise
    and
    says to pass --read-noise, which `night` (and `archive`) now take; given, the night is
    calibrated with it and says where it came from."""
    import shutil

    from glue_zeropoint.exceptions import InputError
    from glue_zeropoint.night.run import plan_night
    from glue_zeropoint.night.settings import NightSettings

    src = night["base"] / "raw"
    raw = tmp_path / "raw"
    raw.mkdir()
    for pattern in ("Bias-001.fit", "Dark-*-001.fit", "Flat-V-*.fit", "SIMFIELD-V-00[12].fit"):
        for p in src.glob(pattern):
            shutil.copy(p, raw)
    with pytest.raises(InputError, match="no read noise.*pass --read-noise"):
        plan_night(raw, None, out=tmp_path / "out0", settings=NightSettings())
    plan = plan_night(raw, None, out=tmp_path / "out",
                      settings=NightSettings(read_noise=7.5))
    assert len(plan.names) == 2
    report = json.loads((tmp_path / "out" / "calibrated" / "calibration.json").read_text())
    assert report["read_noise"]["value"] == 7.5
    assert "given" in report["read_noise"]["source"]
    proc = subprocess.run(
        [sys.executable, "-m", "glue_zeropoint.cli", "night", "--help"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert "--read-noise R" in proc.stdout


def test_a_multi_extension_raw_light_is_measured_with_its_planned_header(tmp_path):
    """A raw light whose FILTER and DATE-OBS sit in the primary header of a multi-extension
    file: the night plans it and measures it with the same header (the frame scan's, the
    primary's keys added), so its band and time are the same in both."""
    import numpy as np
    from astropy.io import fits

    from glue_zeropoint.night.run import _lights

    raw = tmp_path / "raw"
    raw.mkdir()
    primary = fits.PrimaryHDU(header=fits.Header({
        "IMAGETYP": "LIGHT", "FILTER": "V", "DATE-OBS": "2024-07-01T22:00:00",
        "EXPTIME": 30.0}))
    image = fits.ImageHDU(np.full((40, 50), 100, np.uint16), name="SCI")
    fits.HDUList([primary, image]).writeto(raw / "field_V_001.fits")
    names, lights, _ = _lights(raw, None, False, None, None)
    assert names == ["field_V_001.fits"]
    lazy = lights[0]
    assert lazy.meta["FILTER"] == "V" and lazy.shape == (40, 50)
    ccd = lazy.load()
    assert ccd.shape == (40, 50)
    assert ccd.meta["FILTER"] == "V" and ccd.meta["DATE-OBS"] == "2024-07-01T22:00:00"
    assert ccd.meta is not lazy.meta  # the frame's own copy
