"""The archive's task functions: pure functions of paths and small objects.

- :func:`prepare_night` (one task per night): find the frames, hash them, build the masters
  once (written to the store), read the headers (time, airmass, fields) and get one catalog
  per field (cached in the store where every worker reads it); returns a :class:`NightJob`
  (small: no pixels).
- :func:`measure_frame_task` (one task per frame): calibrate one light with the night's
  masters and measure it; its pixels live only in this call; writes the frame's result
  (row + stars, small) under its key and returns a few fields.
- :func:`fit_night_task` (one task per night, after its frames): the night's model from the
  stored frame results; writes the night's archive partition and summary.

Nothing here prints; a frame that fails gives a row that says why.
"""

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..exceptions import InputError, ZeropointError
from .keys import Settings, digest, file_sha256, frame_key
from .store import Store, atomic_pickle, load_pickle, to_arrow, write_parquet

__all__ = ["FrameJob", "NightJob", "prepare_night", "measure_frame_task", "fit_night_task",
           "NIGHT_COLUMNS"]

log = logging.getLogger(__name__)

MASTERS_INFO = "masters.pkl"


@dataclass
class FrameJob:
    """What one frame's task needs (paths and small objects only)."""

    night: str
    index: int
    name: str
    path: str
    root: str
    key: str
    sha256: str
    geometry: object
    field: int
    catalog: str | None  # path of the field's cached catalog
    masters: str | None  # folder of the night's masters (None: measured raw)
    settings: Settings
    store: str

    @property
    def result_path(self):
        return Store(self.store).frame_result(self.night, self.key)


@dataclass
class NightJob:
    """A night planned by :func:`prepare_night`."""

    name: str
    raw_dir: str
    key: str
    done: bool  # its archive partition is trusted as it is
    frames: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    site: tuple = (math.nan, math.nan, math.nan)  # lat, lon (deg), height (m)
    n_stored: int = 0  # a done night's frames (all in the archive; ``frames`` is not planned)

    @property
    def todo(self):
        """Frames whose result is not stored yet."""
        return [f for f in self.frames if not f.result_path.is_file()]


# ------------------------------------------------------------------------- prepare (night)
class _HeaderLight:
    """A light as :func:`~glue_zeropoint.night.run.plan_night` needs it: header, WCS, shape."""

    def __init__(self, frame):
        from ..calibration.lights import light_header, light_wcs

        self.meta = light_header(frame)
        self.wcs = light_wcs(self.meta, frame.name)
        self.shape = tuple(frame.shape)


def prepare_night(name, raw_dir, store, settings):
    """Plan one night: frames, hashes, masters (built once, in the store), fields, catalogs.

    Returns
    -------
    NightJob

    Raises
    ------
    ZeropointError
        The night cannot be reduced (no lights, no gain, ...); the message says why.
    """
    from ..calibration.frames import scan_frames
    from ..night.run import plan_night

    store = Store(store)
    raw_dir = Path(raw_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = scan_frames(raw_dir, exclude=[store.root])
    lights = [f for f in frames if f.kind == "light"]
    if not lights:
        raise InputError(f"{raw_dir}: no light frames found")
    sha = {f.path: file_sha256(f.path) for f in frames}
    cal = sorted((f.kind, sha[f.path]) for f in frames if f.kind != "light")
    # (a read noise given joins the key; none keeps the keys of archives made before it)
    noise = [settings.gain] + ([settings.read_noise] if settings.read_noise is not None else [])
    cal_sha = digest([cal, settings.calibrate, *noise], 32) if settings.calibrate else ""
    heads = [_HeaderLight(f) for f in lights]
    names = [f.path.name for f in lights]
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_night(raw_dir, None, site=settings.site, calibrate=False,
                          lights=heads, names=names)
    notes += [n for n in plan.notes if n and not (settings.catalog and
                                                  n.startswith("no catalog"))]
    cats = _field_catalogs(plan, heads, store, settings, notes)
    # a frame's result depends on its bytes, where it lies (its name is in the row), the
    # night's calibration frames, its field's catalog and the settings
    keys = {f.path: frame_key(sha[f.path], cal_sha, settings.hash,
                              [f.path.relative_to(raw_dir).as_posix(),
                               Path(cats.get(plan.fields[i], "")).name, plan.fields[i]])
            for i, f in enumerate(lights)}
    night_key = digest([sorted(keys.values()), settings.hash, __version__], 32)
    if store.night_key_of(name) == night_key:
        return NightJob(name=name, raw_dir=str(raw_dir), key=night_key, done=True,
                        n_stored=len(lights))
    masters = _masters(frames, lights, name, store, settings, cal_sha, notes) \
        if settings.calibrate else {}
    jobs = []
    for i, f in enumerate(lights):
        jobs.append(FrameJob(
            night=name, index=i, name=names[i], path=str(f.path), root=str(raw_dir),
            key=keys[f.path], sha256=sha[f.path], geometry=plan.geoms[i],
            field=plan.fields[i], catalog=cats.get(plan.fields[i]),
            masters=masters.get(f.group_key), settings=settings, store=str(store.root)))
    prov = dict(plan.provenance, calibration=(
        "calibrated by glue-zeropoint (masters built once per night)" if settings.calibrate
        else "none: raw lights measured as they are"), catalog=settings.catalog)
    return NightJob(name=name, raw_dir=str(raw_dir), key=night_key, done=False, frames=jobs,
                    notes=notes, provenance=prov, site=_site(settings, heads))


def _site(settings, heads):
    from ..night.geometry import parse_site, site_from_header

    loc = parse_site(settings.site)
    if loc is None:
        loc, _ = site_from_header(heads[0].meta)
    if loc is None:
        return (math.nan, math.nan, math.nan)
    return (float(loc.lat.deg), float(loc.lon.deg), float(loc.height.to_value("m")))


def _masters(frames, lights, name, store, settings, cal_sha, notes):
    """Group key -> folder of that group's masters (built now, or found in the store)."""
    from ..calibration.night import _group_label

    groups = {}
    for f in frames:
        groups.setdefault(f.group_key, []).append(f)
    main_key = max(groups, key=lambda k: (sum(f.kind == "light" for f in groups[k]),
                                          len(groups[k])))
    out = {}
    for gkey, group in groups.items():
        if not any(f.kind == "light" for f in group):
            continue
        suffix = "" if gkey == main_key else f"_{_group_label(gkey)}"
        mkey = digest([cal_sha, suffix, settings.gain, __version__], 24)
        folder = store.masters_dir(name, mkey)
        if not (folder / MASTERS_INFO).is_file():
            _build_masters(group, gkey, suffix, folder, settings)
        info = load_pickle(folder / MASTERS_INFO)
        notes += [f"calibration{suffix}: {s}" for s in info["skipped_steps"]]
        out[gkey] = str(folder)
    return out


def _build_masters(group, gkey, suffix, folder, settings):
    """Master bias, darks and flats of one group, written to ``folder`` (info file last)."""
    from ..calibration.night import (
        Night,
        _Group,
        _group_label,
        _group_noise,
        _master_bias,
        _master_darks,
        _master_flats,
        _Progress,
    )
    from ..calibration.products import write_product

    kinds = {k: [f for f in group if f.kind == k] for k in ("bias", "dark", "flat", "light")}
    entry = {"name": _group_label(gkey), "counts": {k: len(v) for k, v in kinds.items()},
             "skipped_steps": [], "notes": []}
    night = Night()
    night.report = {"groups": [entry], "masters": {}, "skipped": [], "gain": None,
                    "read_noise": None}
    g = _Group(kinds=kinds, entry=entry, suffix=suffix, night=night, out=None,
               steps=_Progress(None, len(group)), writer=None, combine="median")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("glue_zeropoint.calibration.night").disabled = True
        try:
            _group_noise(g, group, settings.gain, settings.read_noise)
            _master_bias(g)
            _master_darks(g)
            _master_flats(g)
        finally:
            logging.getLogger("glue_zeropoint.calibration.night").disabled = False
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for mname, ccd in night.masters.items():
        path = folder / f"master_{mname}.fits"
        write_product(ccd, path)
        files[mname] = path.name
    atomic_pickle(folder / MASTERS_INFO, {
        "noise": g.noise, "bias": g.bias_name, "darks": list(g.darks), "flats": dict(g.flats),
        "files": files, "skipped_steps": list(entry["skipped_steps"])})


def _field_catalogs(plan, heads, store, settings, notes):
    """Field -> path of its catalog in the store (queried once per field, then cached)."""
    from astropy import units as u

    from ..catalogs import field_of
    from ..night.geometry import pointing_from_header
    from ..night.run import _catalog_for_field

    if settings.catalog is None:
        return {}
    out = {}
    for fidx in sorted(set(plan.fields)):
        if fidx < 0:
            continue
        first = next(i for i in plan.order if plan.fields[i] == fidx)
        h = heads[first]
        if h.wcs is not None and h.wcs.has_celestial:
            c, radius = field_of(h.wcs, h.shape)
        else:
            c, radius = pointing_from_header(h.meta, h.wcs, h.shape)[0], 0.5 * u.deg
        key = digest([settings.catalog, settings.catalog_sha256, round(c.ra.deg, 4),
                      round(c.dec.deg, 4), round(radius.to_value(u.deg), 4)], 24)
        path = store.catalog_path(key)
        if not path.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cat = _catalog_for_field(settings.catalog, c, radius, settings.offline, notes)
            if cat is None:
                continue
            atomic_pickle(path, cat)
        out[fidx] = str(path)
    return out


# ------------------------------------------------------------------------- measure (frame)
_CACHE = {"masters": None, "prepared": None}  # per worker process: the last night's masters


def _masters_for(folder):
    """The masters of ``folder`` (kept for the next frame of the same night, one set only)."""
    from ..calibration.products import read_product

    cached = _CACHE["masters"]
    if cached is not None and cached[0] == folder:
        return cached[1]
    _CACHE["masters"] = _CACHE["prepared"] = None  # free the previous night's first
    info = load_pickle(Path(folder) / MASTERS_INFO)
    ccds = {n: read_product(Path(folder) / f) for n, f in info["files"].items()}
    _CACHE["masters"] = (folder, (info, ccds))
    return info, ccds


def _calibrate(job):
    from ..calibration.frames import read_frame
    from ..calibration.lights import calibrate_light, prepare_masters
    from ..calibration.night import _annotate, _pick_dark, colour_channel

    frame = read_frame(job.path, job.root)
    info, ccds = _masters_for(job.masters)
    noise = info["noise"]
    dark_name, how = _pick_dark(info["darks"], frame.exptime, info["bias"] is not None)
    flat_name = info["flats"].get(frame.filter)
    masters = {"bias": ccds.get(info["bias"]) if info["bias"] else None,
               "dark": ccds.get(dark_name) if dark_name else None,
               "flat": ccds.get(flat_name) if flat_name else None}
    pkey = (job.masters, dark_name, flat_name, float(frame.exptime))
    prepared = _CACHE["prepared"]
    if prepared is None or prepared[0] != pkey:
        _CACHE["prepared"] = None
        prepared = (pkey, prepare_masters(noise, frame.exptime, **masters))
        _CACHE["prepared"] = prepared
    ccd, counts = calibrate_light(frame, noise, prepared=prepared[1], **masters)
    _annotate(ccd, frame, noise, info["bias"] or False, dark_name, how, flat_name, counts,
              None)
    # a colour camera's light: its channel as `night` takes it (pattern checked on the flat)
    return colour_channel(ccd, job.settings.cfa, frame.name, reference=masters["flat"])


def measure_frame_task(job):
    """Calibrate and measure one frame; store its result under its key.

    Returns a small dict (night, index, file, status, reason, stored). A frame that fails
    is a row with status ``failed`` and the reason (stored too: it is a result)."""
    from ..night.run import FRAME_COLUMNS, _LazyLight, measure_frame

    path = job.result_path
    if path.is_file():  # a rerun of a task whose result is stored (e.g. a retried task)
        res = load_pickle(path)
        return _brief(job, res["row"], skipped=True)
    settings = job.settings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if job.masters is not None:
                ccd = _calibrate(job)
            else:
                ccd = _LazyLight(Path(job.path))
            cat = load_pickle(job.catalog) if job.catalog else None
            fo = measure_frame(ccd, index=job.index, name=job.name, geometry=job.geometry,
                               field=job.field, catalog=cat, settings=settings.night())
            del ccd
        row, det = fo.row, fo.detections
    except Exception as err:  # noqa: BLE001 - the frame fails, the archive goes on
        if not isinstance(err, ZeropointError):
            log.debug("traceback of %s", job.name, exc_info=True)
            err = f"internal error: {type(err).__name__}: {err}"
        row = _failed_row(job, FRAME_COLUMNS, str(err))
        det = None
    atomic_pickle(path, {"row": row, "detections": det, "key": job.key,
                         "sha256": job.sha256})
    return _brief(job, row)


def _failed_row(job, columns, reason):
    g = job.geometry
    row = {c: np.nan for c in columns}
    row.update({"frame": job.index, "file": job.name, "band": "", "filter": "",
                "field": job.field, "time": g.time_mid.isot if g.time_mid else "",
                "mjd": g.time_mid.mjd if g.time_mid else np.nan,
                "exptime": g.exptime or np.nan, "airmass": g.airmass,
                "airmass_source": g.airmass_source, "status": "failed", "reason": reason,
                "flags": "", "n_matched": 0, "n_used": 0, "n_stars": 0, "color": "",
                "used_in_fit": False, "cloudy": False, "outlier": False})
    return row


def _brief(job, row, skipped=False):
    return {"night": job.night, "index": job.index, "file": job.name,
            "status": str(row["status"]), "reason": str(row["reason"]),
            "failed": row["status"] == "failed", "skipped": skipped}


# ------------------------------------------------------------------------- fit (night)
#: columns the archive adds to the night's frame table
NIGHT_COLUMNS = ("night_date", "site_lat", "site_lon", "site_height", "raw_sha256",
                 "frame_key", "settings_hash", "software_version")


def fit_night_task(job):
    """Fit a night from its stored frame results; write its archive partition and summary.

    Returns the night's summary as a dict (status ``ok`` or ``incomplete``: a frame's
    result is missing, e.g. its worker died too often; nothing is written as done then)."""
    from ..night.run import fit_night

    store = Store(job.frames[0].store)
    rows, dets, missing, by_index = [], [], [], {}
    for fj in job.frames:
        p = fj.result_path
        if not p.is_file():
            missing.append(fj.name)
            continue
        res = load_pickle(p)
        # the frame's number in the night may differ from when it was measured (frames
        # added to the night since): renumber
        row, det = dict(res["row"], frame=fj.index), res["detections"]
        if det is not None:
            det["frame"] = fj.index
        rows.append(row)
        dets.append(det)
        by_index[fj.index] = fj
    _drop_stale(store, job)
    if missing:
        _remove(store.night_part(job.name))
        summary = _summary_rows(job, None, "incomplete",
                                f"{len(missing)} frame(s) without a result: "
                                + ", ".join(missing[:5]))
        _write_summary(store, job, summary, trusted=False)
        return summary[0]
    order = sorted(range(len(rows)), key=lambda k: rows[k]["frame"])
    rows = [rows[k] for k in order]
    dets = [dets[k] for k in order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_night(rows, dets, job.notes, None, job.provenance, None)
    fr = result.frames
    cols = {c: np.asarray(fr[c]) for c in fr.colnames}
    n = len(fr)
    frame_ids = np.asarray(fr["frame"]).tolist()
    fjs = [by_index[int(i)] for i in frame_ids]
    cols["night_date"] = np.full(n, _night_date(fr), dtype=object)
    for k, c in enumerate(("site_lat", "site_lon", "site_height")):
        cols[c] = np.full(n, job.site[k], float)
    cols["raw_sha256"] = np.array([f.sha256 for f in fjs], dtype=object)
    cols["frame_key"] = np.array([f.key for f in fjs], dtype=object)
    cols["settings_hash"] = np.full(n, fjs[0].settings.hash, dtype=object)
    cols["software_version"] = np.full(n, __version__, dtype=object)
    order = np.argsort(np.asarray(fr["file"]).astype(str), kind="stable")
    cols = {c: v[order] for c, v in cols.items()}
    write_parquet(store.night_part(job.name), to_arrow(cols), metadata={
        "zp_night_key": job.key, "zp_verdict": result.verdict,
        "zp_verdict_reason": result.verdict_reason, "zp_notes": list(result.notes)})
    summary = _summary_rows(job, result, "ok", "")
    _write_summary(store, job, summary, trusted=True)
    return dict(summary[0], n_frames=n)


def _night_date(fr):
    """The night's date: the UTC date of its first frame 12 h earlier (evening date)."""
    from astropy.time import Time

    mjd = np.asarray(fr["mjd"], float)
    mjd = mjd[np.isfinite(mjd)]
    if not len(mjd):
        return ""
    return Time(float(mjd.min()) - 0.5, format="mjd").to_value("iso", "date")


SUMMARY_COLUMNS = ("band", "night_date", "status", "reason", "verdict", "verdict_reason",
                   "n_frames", "n_failed", "n_cloudy", "k", "k_err", "zp0", "zp0_err",
                   "zp_median", "sky_sb_median", "fwhm_median", "moon_free", "moon_illum",
                   "night_key", "settings_hash", "software_version")


def _summary_rows(job, result, status, reason):
    """One row per band (a night without a result: one row, band '')."""
    base = {c: np.nan for c in SUMMARY_COLUMNS}
    base.update({"band": "", "night_date": "", "status": status, "reason": reason,
                 "verdict": "", "verdict_reason": "", "n_frames": len(job.frames),
                 "n_failed": 0, "n_cloudy": 0, "moon_free": False, "night_key": job.key,
                 "settings_hash": job.frames[0].settings.hash if job.frames else "",
                 "software_version": __version__})
    if result is None:
        return [base]
    fr = result.frames
    base["night_date"] = _night_date(fr)
    base["verdict"], base["verdict_reason"] = result.verdict, result.verdict_reason
    moon = np.asarray(fr["moon_alt"], float)
    base["moon_free"] = bool(np.isfinite(moon).any() and np.nanmax(moon) < 0)
    illum = np.asarray(fr["moon_illum"], float)
    base["moon_illum"] = float(np.nanmedian(illum)) if np.isfinite(illum).any() else np.nan
    rows = []
    bands = sorted({str(b) for b in fr["band"] if str(b)}) or [""]
    for band in bands:
        r = dict(base, band=band)
        m = np.asarray(fr["band"]).astype(str) == band
        r["n_frames"] = int(m.sum())
        r["n_failed"] = int(np.sum(np.asarray(fr["status"])[m] == "failed"))
        r["n_cloudy"] = int(np.sum(np.asarray(fr["cloudy"], bool)[m]))
        f = result.fits.get(band)
        if f is not None:
            r.update({"k": f.k, "k_err": f.k_err, "zp0": f.zp0, "zp0_err": f.zp0_err})
        for col, key in (("zp_night", "zp_median"), ("sky_sb", "sky_sb_median"),
                         ("fwhm", "fwhm_median")):
            v = np.asarray(fr[col], float)[m]
            r[key] = float(np.median(v[np.isfinite(v)])) if np.isfinite(v).any() else np.nan
        rows.append(r)
    return rows


def _write_summary(store, job, rows, trusted):
    cols = {c: [r[c] for r in rows] for c in SUMMARY_COLUMNS}
    for c in ("n_frames", "n_failed", "n_cloudy"):
        cols[c] = np.asarray(cols[c], np.int64)
    cols["moon_free"] = np.asarray(cols["moon_free"], bool)
    write_parquet(store.summary_part(job.name), to_arrow(cols),
                  metadata={"zp_night_key": job.key if trusted else None})


def write_failed_night(store, name, raw_dir, reason):
    """The summary of a night that could not be planned (its partition removed: nothing
    stale is left to be trusted)."""
    store = Store(store)
    _remove(store.night_part(name))
    job = NightJob(name=name, raw_dir=str(raw_dir), key="", done=False)
    rows = _summary_rows(job, None, "failed", reason)
    _write_summary(store, job, rows, trusted=False)
    return rows[0]


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _drop_stale(store, job):
    """Remove frame results of this night under keys it no longer has (changed files or
    settings): they are never read again, and would only take space."""
    keep = {f"{f.key}.pkl" for f in job.frames}
    folder = store.frames_dir(job.name)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        if e.name.endswith(".pkl") and e.name not in keep:
            _remove(e.path)
