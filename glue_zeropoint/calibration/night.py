"""Calibrate a whole night: find and group the frames, make the masters, calibrate the lights.

:func:`calibrate_night` is the one call the command line, the Glue loader and the demo use. It
returns a :class:`Night` whose ``report`` is what ``calibration.json`` holds: the groups found,
the frames used for each master, what was matched to what, the gain and read noise used and
their source, every guess, and every frame or step skipped and why.
"""

import hashlib
import json
import logging
import os
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..exceptions import CalibrationWarning, InputError
from ..headers import GAIN_KEYS, READ_NOISE_KEYS, ascii_text
from ..io import OutputLock, clean_tmp_files, ensure_output_dir, file_sha256, write_json
from .camera import CameraNoise, photon_transfer, read_noise_from_biases
from .frames import scan_frames
from .lights import calibrate_light, prepare_masters
from .manifest import (
    INPUTS_KEY,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MARKER_KEY,
    RUN_KEY,
    product_files,
    read_manifest,
    software,
)
from .masters import make_master_bias, make_master_dark, make_master_flat
from .products import read_product, write_product

__all__ = ["Night", "calibrate_night"]

log = logging.getLogger(__name__)

_PTC_MAX_SIDE = 1024  # photon transfer uses at most the central 1024 x 1024 pixels
_PTC_MAX_FRAMES = 8
# calibrated lights beyond this many bytes in total are memory-mapped from their products
IN_MEMORY_BYTES = 512 * 2 ** 20
# write products in a worker thread while the next light is computed
BACKGROUND_WRITES = True


@dataclass
class Night:
    """A calibrated night.

    Attributes
    ----------
    lights : list of `~astropy.nddata.CCDData`
        Calibrated lights (electrons, uncertainty, mask, WCS, meta), in memory. When products
        are written and the lights together exceed ``IN_MEMORY_BYTES`` (512 MB), their
        pixels are memory-mapped read-only from the product files instead (big-endian
        float32 arrays), so the memory used stays bounded however many lights there are.
    masters : dict
        Name (``'bias'``, ``'dark'``, ``'flat_V'``; ``'dark_20s'`` with several dark exposure
        times; a ``_<nx>x<ny>[_bin..]`` suffix for extra frame groups) -> CCDData.
    products : list of Path
        Files written (masters, calibrated lights, ``calibration.json``).
    report : dict
        The content of ``calibration.json``.
    """

    lights: list = field(default_factory=list)
    masters: dict = field(default_factory=dict)
    products: list = field(default_factory=list)
    report: dict = field(default_factory=dict)
    _run: dict = field(default_factory=dict, repr=False)

    def to_dict(self):
        """The calibration report (JSON-ready once passed through ``io.to_jsonable``)."""
        return self.report


class _Progress:
    """Counts steps across the stages and forwards them to the user's callback."""

    def __init__(self, callback, total):
        self.callback = callback
        self.total = max(int(total), 1)
        self.done = 0

    def sub(self, n):
        """A callback for a stage of ``n`` steps: ``(k, n, message)`` -> overall progress."""
        base = self.done

        def forward(k, _n, message=""):
            if self.callback is not None:
                self.callback(min(base + int(k), self.total), self.total, message)

        self.done += n
        return forward

    def step(self, message):
        self.done += 1
        if self.callback is not None:
            self.callback(min(self.done, self.total), self.total, message)


class _SerialWriter:
    """Same interface as :class:`_BackgroundWriter`, writing at once in the calling thread."""

    def submit(self, ccd, path, on_done=None):
        path = write_product(ccd, path)
        if on_done is not None:
            on_done(path)

    def wait(self):
        pass

    def close(self, *, failed=False):
        pass


class _BackgroundWriter:
    """Writes products in a worker thread while the next one is computed (I/O overlaps work).

    At most one write is in flight (bounded memory). ``on_done(path)`` callbacks run in the
    calling thread, in submission order, from :meth:`wait`. Every write is atomic
    (:func:`~.products.write_product`): whatever stops the calibration, each product on disk
    is complete or absent.
    """

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glue-zeropoint-write")
        self._pending = None

    def submit(self, ccd, path, on_done=None):
        """Write ``ccd`` to ``path`` after the previous write has finished."""
        self.wait()
        self._pending = (self._pool.submit(write_product, ccd, path), on_done)

    def wait(self):
        """Finish the write in flight (re-raising its error) and run its callback."""
        if self._pending is not None:
            future, on_done = self._pending
            self._pending = None
            path = future.result()
            if on_done is not None:
                on_done(path)

    def close(self, *, failed=False):
        """Finish and stop; after a failure elsewhere, a write error is only logged."""
        try:
            if failed and self._pending is not None:
                try:
                    self._pending[0].result()
                except Exception as err:  # noqa: BLE001 - the first error is the one to report
                    log.warning("writing a product failed too: %s", err)
                self._pending = None
            else:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)


class _Hasher:
    """SHA-256 of the raw files, computed in a worker thread while the masters are made."""

    def __init__(self, paths):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glue-zeropoint-hash")
        self._futures = {Path(p): self._pool.submit(self._one, Path(p)) for p in paths}

    @staticmethod
    def _one(path):
        st = path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(path)}

    def get(self, path):
        return self._futures[Path(path)].result()

    def close(self):
        for future in self._futures.values():
            future.cancel()
        self._pool.shutdown(wait=True)


def _settings(combine, gain, read_noise, cfa="G"):
    return {"combine": combine, "gain": gain, "read_noise": read_noise, "cfa": cfa,
            "software": software()}


def _light_key(run, frame, calibration_frames, suffix=""):
    """What a calibrated light depends on, as one hash (its ``ZPKEY``)."""
    hasher = run["hasher"]
    parts = [run["settings"], suffix, hasher.get(frame.path)["sha256"],
             sorted(hasher.get(f.path)["sha256"] for f in calibration_frames)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]


_COUNT_KEYS = {"saturated": "ZPNSAT", "hot": "ZPNHOT", "low_response": "ZPNLOW",
               "nonfinite": "ZPNNAN", "masked": "ZPNMASK"}


def _reusable(path, key, memmap):
    """The product at ``path`` with counts, if its ``ZPKEY`` is ``key`` (else None)."""
    try:
        header = fits.getheader(path)
        if header.get(INPUTS_KEY) != key or MARKER_KEY not in header or \
                any(k not in header for k in _COUNT_KEYS.values()):
            return None
        ccd = read_product(path, memmap=memmap)
    except Exception as err:  # noqa: BLE001 - unreadable: calibrate it again
        log.info("%s: not reused (%s)", path, err)
        return None
    return ccd, {name: int(header[k]) for name, k in _COUNT_KEYS.items()}


def _check_gains(group, gain, label, notes):
    """Refuse frames of one group whose headers disagree on the gain (unless it is given)."""
    values = {}
    for f in group:
        if f.gain is not None:
            values.setdefault(round(f.gain, 6), []).append(f)
    if len(values) < 2:
        return
    lo, hi = min(values), max(values)
    if hi <= lo * (1 + 1e-3):
        return
    parts = []
    for value, frames in sorted(values.items()):
        names = ", ".join(f.name for f in frames[:3])
        more = f" and {len(frames) - 3} more" if len(frames) > 3 else ""
        parts.append(f"{value:g} e-/ADU ({frames[0].gain_source}: {names}{more})")
    text = "; ".join(parts)
    if gain is not None:
        notes.append(f"the headers disagree on the gain ({text}); the given gain {gain:g} "
                     "e-/ADU is used for every frame")
        warnings.warn(notes[-1], CalibrationWarning, stacklevel=3)
        return
    raise InputError(f"frames of {label} disagree on the gain in their headers: {text}; frames "
                     "taken with different gains cannot be calibrated together: pass --gain G "
                     "(gain=G) if one value is right for all, or calibrate the frames of each "
                     "gain separately")


def _group_label(key):
    (ny, nx), (bx, by) = key
    return f"{nx}x{ny}" + (f"_bin{bx}x{by}" if (bx, by) != (1, 1) else "")


def _fmt_t(t):
    return f"{t * 1000:g}ms" if 0 < t < 1 else f"{t:g}s"


def _camera_noise(group, gain, read_noise, notes):
    """Gain and read noise for a group: given, else header, else measured (photon transfer)."""
    lights = [f for f in group if f.kind == "light"]
    ordered = lights + [f for f in group if f.kind != "light"]
    biases = [f for f in group if f.kind == "bias"]
    flats_by_filter = {}
    for f in group:
        if f.kind == "flat":
            flats_by_filter.setdefault(f.filter, []).append(f)
    g_src = rn_src = None
    g_err = rn_err = None
    if gain is not None:
        g, g_src = float(gain), "given"
    else:
        hdr = next((f for f in ordered if f.gain is not None), None)
        g, g_src = (hdr.gain, hdr.gain_source) if hdr is not None else (None, None)
    if read_noise is not None:
        rn, rn_src = float(read_noise), "given"
    else:
        hdr = next((f for f in ordered if f.read_noise is not None), None)
        rn, rn_src = (hdr.read_noise, hdr.read_noise_source) if hdr is not None else (None, None)
    if g is None:
        flats = max(flats_by_filter.values(), key=len, default=[])
        if len(flats) < 2 or len(biases) < 2:
            return None
        nf = min(len(flats), _PTC_MAX_FRAMES) // 2 * 2
        nb = min(len(biases), _PTC_MAX_FRAMES) // 2 * 2
        try:
            ptc = photon_transfer([_central(f, True) for f in flats[:nf]],
                                  [_central(f, True) for f in biases[:nb]])
        except ValueError as err:
            notes.append(f"gain could not be measured: {err}")
            return None
        g, g_err = ptc["gain"], ptc["gain_err"]
        g_src = f"measured: photon transfer from {nf} flats + {nb} biases"
        if rn is None:
            rn, rn_err = ptc["read_noise"], ptc["read_noise_err"]
            rn_src = g_src
    if rn is None:
        nb = min(len(biases), _PTC_MAX_FRAMES) // 2 * 2
        if nb >= 2:
            rn, rn_err, nb = read_noise_from_biases([_central(f, False) for f in biases[:nb]],
                                                    g)
            rn_src = f"measured: {nb} biases (gain x std(B1 - B2) / sqrt 2)"
        else:  # no biases: the shortest darks, whose dark-current noise adds a little
            by_t = {}
            for f in group:
                if f.kind == "dark":
                    by_t.setdefault(f.exptime, []).append(f)
            pairs = [(t, fs) for t, fs in sorted(by_t.items()) if len(fs) >= 2]
            if not pairs:
                return CameraNoise(g, g_src, None, None, g_err, None)
            t, darks = pairs[0]
            nd = min(len(darks), _PTC_MAX_FRAMES) // 2 * 2
            rn, rn_err, nd = read_noise_from_biases([_central(f, True) for f in darks[:nd]], g)
            rn_src = (f"measured: {nd} darks of {_fmt_t(t)} (no biases; includes their "
                      "dark-current noise)")
    return CameraNoise(float(g), g_src, float(rn), rn_src, g_err, rn_err)


def _central(frame, nan_saturated):
    """The central (at most 1024 x 1024) pixels of a frame, ADU, saturated values NaN."""
    reader = frame.reader()
    ny, nx = reader.shape
    h, w = min(ny, _PTC_MAX_SIDE), min(nx, _PTC_MAX_SIDE)
    y0, x0 = (ny - h) // 2, (nx - w) // 2
    data, saturated = reader.rows(y0, y0 + h)
    data, saturated = data[:, x0:x0 + w], saturated[:, x0:x0 + w]
    if nan_saturated:
        data[saturated] = np.nan
    reader.close()
    return np.ascontiguousarray(data)


def _pick_dark(darks, t, has_bias):
    """The dark for an exposure ``t``: matching exposure, else the longest one scaled."""
    if not darks:
        return None, "no darks: dark current not subtracted"
    for td, name in darks:
        if abs(td - t) <= max(1e-3, 1e-3 * t):
            return name, f"matched exposure {_fmt_t(td)}"
    if not has_bias:
        return None, (f"no dark of {_fmt_t(t)} and no bias frames to scale another: dark "
                      "not subtracted")
    td, name = max(darks)
    return name, f"scaled from {_fmt_t(td)} to {_fmt_t(t)}"


def calibrate_night(raw_dir, out_dir=None, *, combine="median", gain=None, read_noise=None,
                    progress=None, memmap=None, cfa="G"):
    """Calibrate every light frame of a raw night.

    Parameters
    ----------
    raw_dir : path
        Folder of raw frames (sub-folders searched; see :func:`.scan_frames`).
    out_dir : path, optional
        Where to write ``master_*.fits``, ``<light stem>_cal.fits`` and ``calibration.json``
        (created; must be writable). Nothing is written without it.
    combine : {'median', 'mean'}
        How the sigma-clipped masters are combined.
    gain : float, optional
        e-/ADU; overrides the headers and the measurement.
    read_noise : float, optional
        e-; overrides the headers and the measurement.
    progress : callable, optional
        ``progress(done, total, message)``; it may raise
        :class:`~glue_zeropoint.exceptions.Cancelled`, which stops the calibration: files
        already written stay complete, none is left half-written.
    memmap : bool, optional
        With ``out_dir``: True keeps every calibrated light memory-mapped from its product
        (memory bounded by a few frames, e.g. for a night measured frame by frame), False
        keeps them in memory; default (None): memory-mapped when the lights together exceed
        ``IN_MEMORY_BYTES``.
    cfa : {'G', 'R', 'B', 'none'}
        A light of a colour camera (a Bayer pattern in its header) is calibrated as the mosaic
        it is, then its calibrated image is this colour channel, at half the size
        (:func:`.cfa.extract_channel`); ``'none'`` keeps the mosaic. Monochrome frames are
        not affected.

    Returns
    -------
    Night

    Raises
    ------
    InputError
        Empty or missing folder, a frame without exposure time, an unwritable ``out_dir``,
        or lights whose gain or read noise is nowhere to be found (pass ``gain=``).

    Examples
    --------
    >>> night = calibrate_night("raw/2024-07-01", "calibrated")  # doctest: +SKIP
    >>> night.lights[0].uncertainty.array  # doctest: +SKIP
    """
    if combine not in ("median", "mean"):
        raise InputError(f"combine must be 'median' or 'mean', not {combine!r}")
    cfa = _cfa_choice(cfa)
    for name, value in (("gain", gain), ("read_noise", read_noise)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive number, not {value!r}")
    raw_dir = Path(raw_dir)
    if out_dir is not None and raw_dir.exists() and Path(out_dir).resolve() == raw_dir.resolve():
        raise InputError(f"{out_dir}: the output folder must not be the raw folder (raw files "
                         f"are never written over); use e.g. {raw_dir / 'calibrated'}")
    out = ensure_output_dir(out_dir) if out_dir is not None else None
    if out is None:
        return _calibrate_night(raw_dir, None, combine, gain, read_noise, progress, cfa=cfa)
    with OutputLock(out, "calibrate") as lock:
        night = _calibrate_night(raw_dir, out, combine, gain, read_noise, progress, lock=lock,
                                 memmap=memmap, cfa=cfa)
    return night


def _cfa_choice(cfa):
    from .cfa import CFA_CHANNELS

    choice = "none" if cfa is None else str(cfa)
    choice = choice if choice.lower() == "none" else choice.upper()
    if choice.lower() == "none":
        return "none"
    if choice not in CFA_CHANNELS:
        raise InputError(f"colour channel {cfa!r}: give G, R, B or none")
    return choice


def _calibrate_night(raw_dir, out, combine, gain, read_noise, progress, lock=None,
                     memmap=None, cfa="G"):
    run = {"id": uuid.uuid4().hex[:16], "settings": _settings(combine, gain, read_noise, cfa),
           "hasher": None, "reused": [], "keys": {}, "inputs": {}}
    old = None
    notes = []
    if out is not None:
        if lock is not None and lock.stale:
            notes.append(f"a lock left by {lock.stale}, which is no longer running, was "
                         "taken over")
        removed = clean_tmp_files(out)
        if removed:
            notes.append(f"removed {len(removed)} temporary file(s) left by an interrupted run")
        old = read_manifest(out)
        if old is not None:
            old_raw = old["manifest"].get("raw_dir")
            if old_raw and Path(old_raw) != raw_dir.resolve() and product_files(out):
                raise InputError(
                    f"{out}: holds the calibrated products of another raw folder ({old_raw}); "
                    "choose another --out (products of two nights in one folder would be "
                    "mixed up), or delete them first")
    frames = scan_frames(raw_dir, exclude=[out] if out is not None else (), progress=progress)
    night = Night()
    night._run = run
    if out is not None:
        order = [f for f in frames if f.kind != "light"] + [f for f in frames if f.kind == "light"]
        run["hasher"] = _Hasher([f.path for f in order])
    report = {
        "raw_dir": str(raw_dir), "out_dir": None if out is None else str(out),
        "combine": combine, "groups": [], "masters": {}, "lights": [], "gain": None,
        "read_noise": None, "guesses": frames.guesses, "skipped": list(frames.skipped),
        "notes": notes, "products": [], "refused": list(frames.refused),
        "products_skipped": list(frames.products),
    }
    night.report = report
    groups = {}
    for frame in frames:
        groups.setdefault(frame.group_key, []).append(frame)
    main_key = max(groups, key=lambda k: (sum(f.kind == "light" for f in groups[k]),
                                          len(groups[k])))
    if len(groups) > 1:
        note = ("frames of different shapes or binning were found; they are grouped apart and "
                "never combined: " + ", ".join(f"{_group_label(k)} ({len(v)} frames)"
                                               for k, v in groups.items()))
        report["notes"].append(note)
        warnings.warn(note, CalibrationWarning, stacklevel=2)
    steps = _Progress(progress, len(frames))
    _product_names(frames, raw_dir)
    writer = None
    if out is not None:
        writer = _BackgroundWriter() if BACKGROUND_WRITES else _SerialWriter()
    try:
        for key, group in groups.items():
            suffix = "" if key == main_key else f"_{_group_label(key)}"
            _calibrate_group(group, key, suffix, night, out, steps, writer, combine=combine,
                             gain=gain, read_noise=read_noise, memmap=memmap)
    except BaseException:
        if writer is not None:
            writer.close(failed=True)
        if run["hasher"] is not None:
            run["hasher"].close()
        raise
    if writer is not None:
        writer.close()
    if not night.lights:
        report["notes"].append("no light frames were calibrated")
    if out is not None:
        try:
            _write_manifest(night, frames, raw_dir, out, old)
        finally:
            run["hasher"].close()
    return night


def _write_manifest(night, frames, raw_dir, out, old):
    """Remove products of earlier runs that this run did not make, then write
    ``calibration.json`` last: the manifest of a complete folder."""
    run, report = night._run, night.report
    root = Path(raw_dir)
    made = {p.name for p in night.products}
    stale = {p.name for p in product_files(out)}
    if old is not None:
        stale |= {name for name in old["manifest"].get("products", {})
                  if (out / name).is_file()}
    removed = sorted(stale - made - {MANIFEST_NAME})
    for name in removed:
        try:
            os.unlink(out / name)
        except OSError as err:
            log.warning("%s: could not remove a product of an earlier run (%s)", name, err)
    if removed:
        more = f" and {len(removed) - 5} more" if len(removed) > 5 else ""
        report["notes"].append(f"removed {len(removed)} product(s) of an earlier run that this "
                               f"run does not make: {', '.join(removed[:5])}{more}")
    inputs = {}
    rel = {}
    for frame in frames:
        r = frame.path.relative_to(root).as_posix()
        rel[frame.path] = r
        inputs[r] = {"name": frame.path.name, "kind": frame.kind,
                     **run["hasher"].get(frame.path)}
    products = {}
    for path in night.products:
        info = run["keys"].get(path.name, {})
        products[path.name] = {
            "kind": info.get("kind", "master"), "size": path.stat().st_size,
            "inputs": [rel.get(p, str(p)) for p in info.get("inputs", [])],
            "masters": info.get("masters", []), "key": info.get("key"),
            "run": info.get("run", run["id"])}
    report["manifest"] = {
        "format": MANIFEST_FORMAT, "complete": True, "software": software(),
        "run": run["id"], "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "raw_dir": str(root.resolve()), "out_dir": str(Path(out).resolve()),
        "settings": run["settings"], "inputs": inputs, "products": products,
        "ignored": _ignored(root, frames.skipped), "products_found": sorted(frames.products),
        "reused": run["reused"], "removed": removed,
    }
    path = out / MANIFEST_NAME
    report["products"] = [p.name for p in night.products] + [path.name]
    write_json(path, report)
    night.products.append(path)


def _ignored(root, skipped):
    """Files of the raw folder left out (not FITS, unreadable, refused): their size and time,
    so that fixing one (e.g. its EXPTIME) makes the folder out of date."""
    ignored = {}
    for item in skipped:
        rel = item["file"].replace(os.sep, "/")
        try:
            st = (root / rel).stat()
        except OSError:
            continue
        ignored[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                        "reason": item["reason"]}
    return ignored


def _record_master(night, out, writer, name, ccd, info, inputs=()):
    night.masters[name] = ccd
    entry = dict(info)
    night.report["masters"][name] = entry
    if out is not None:
        run = night._run
        ccd.meta[MARKER_KEY] = (software(), "a product: never a raw frame")
        ccd.meta[RUN_KEY] = (run["id"], "run that wrote it")
        run["keys"][f"master_{name}.fits"] = {"kind": "master",
                                              "inputs": [f.path for f in inputs]}
        def written(path):
            night.products.append(path)
            entry["file"] = path.name

        writer.submit(ccd, out / f"master_{name}.fits", written)


@dataclass
class _Group:
    """One calibration group (same shape and binning) while it is calibrated."""

    kinds: dict  # frame kind -> frames
    entry: dict  # the group's entry in the report
    suffix: str
    night: object
    out: Path | None
    steps: object
    writer: object
    combine: str
    noise: CameraNoise | None = None
    bias: object = None
    darks: list = field(default_factory=list)  # (exptime, master name)
    flats: dict = field(default_factory=dict)  # filter -> master name
    memmap: bool | None = None  # lights memory-mapped from their products (None: by size)

    def skip_step(self, message):
        self.entry["skipped_steps"].append(message)
        log.warning("%s: %s", self.entry["name"], message)

    @property
    def bias_name(self):
        return ("bias" + self.suffix) if self.bias is not None else None


def _calibrate_group(group, key, suffix, night, out, steps, writer, *, combine, gain,
                     read_noise, memmap=None):
    kinds = {k: [f for f in group if f.kind == k] for k in ("bias", "dark", "flat", "light")}
    entry = {"name": _group_label(key), "shape": list(key[0]), "binning": list(key[1]),
             "counts": {k: len(v) for k, v in kinds.items()},
             "filters": sorted({str(f.filter) for f in kinds["flat"] + kinds["light"]}),
             "exptimes": {k: sorted({f.exptime for f in v}) for k, v in kinds.items() if v},
             "skipped_steps": [], "notes": []}
    night.report["groups"].append(entry)
    g = _Group(kinds=kinds, entry=entry, suffix=suffix, night=night, out=out, steps=steps,
               writer=writer, combine=combine, memmap=memmap)
    if not _group_noise(g, group, gain, read_noise):
        return
    _master_bias(g)
    _master_darks(g)
    _master_flats(g)
    _calibrate_lights(g)


def _group_noise(g, group, gain, read_noise):
    """Gain and read noise of the group (header or measured); False when the group cannot be
    calibrated (no lights: skipped; with lights: an InputError)."""
    entry, report = g.entry, g.night.report
    notes = []
    _check_gains(group, gain, f"group {entry['name']}", entry["notes"])
    noise = _camera_noise(group, gain, read_noise, notes)
    for n in notes:
        g.skip_step(n)
    if noise is None or noise.read_noise is None:
        what = "gain" if noise is None else "read noise"
        if g.kinds["light"]:
            first = g.kinds["light"][0]
            option = "--gain/gain=" if what == "gain" else "--read-noise/read_noise="
            raise InputError(
                f"{first.path}: no {what} in the headers "
                f"({'/'.join(GAIN_KEYS if what == 'gain' else READ_NOISE_KEYS)}) "
                f"and not enough flats and biases (2 + 2) to measure it; pass {option}")
        g.skip_step(f"no {what} known and no lights: group not calibrated")
        g.steps.sub(len(group))
        return False
    entry["gain"] = {"value": noise.gain, "source": noise.gain_source, "error": noise.gain_err}
    entry["read_noise"] = {"value": noise.read_noise, "source": noise.read_noise_source,
                           "error": noise.read_noise_err}
    if report["gain"] is None or not g.suffix:
        report["gain"] = entry["gain"]
        report["read_noise"] = entry["read_noise"]
    log.info("%s: gain %.4g e-/ADU (%s), read noise %.3g e- (%s)", entry["name"], noise.gain,
             noise.gain_source, noise.read_noise, noise.read_noise_source)
    g.noise = noise
    return True


def _master_bias(g):
    frames = g.kinds["bias"]
    if not frames:
        g.skip_step("no bias frames: bias not subtracted (the overscan, where present, is)")
        return
    g.bias = make_master_bias(frames, g.noise, method=g.combine,
                              progress=g.steps.sub(len(frames)))
    _record_master(g.night, g.out, g.writer, "bias" + g.suffix, g.bias, {
        "frames": [f.name for f in frames], "n": len(frames),
        "method": g.combine, "exptime": sorted({f.exptime for f in frames})}, frames)
    if any(f.exptime > 0 for f in frames):
        g.entry["notes"].append(
            "short darks used as biases: their dark current (rate x "
            f"{max(f.exptime for f in frames):g} s) stays in the master bias")


def _master_darks(g):
    """One master dark per exposure time."""
    by_t = {}
    for f in g.kinds["dark"]:
        by_t.setdefault(round(f.exptime, 6), []).append(f)
    for t, members in sorted(by_t.items()):
        name = ("dark" if len(by_t) == 1 else f"dark_{_fmt_t(t)}") + g.suffix
        dark = make_master_dark(members, g.bias, g.noise, method=g.combine,
                                progress=g.steps.sub(len(members)))
        _record_master(g.night, g.out, g.writer, name, dark, {
            "frames": [f.name for f in members], "n": len(members), "method": g.combine,
            "exptime": t, "unit": "electron / s", "hot_pixels": int(dark.mask.sum()),
            "bias_subtracted": g.bias is not None}, members)
        g.darks.append((t, name))
    if not g.kinds["dark"]:
        g.skip_step("no dark frames: dark current not subtracted, hot pixels not flagged")


def _master_flats(g):
    """One master flat per filter (with the dark closest in exposure time)."""
    night = g.night
    by_filter = {}
    for f in g.kinds["flat"]:
        by_filter.setdefault(f.filter, []).append(f)
    for filt, members in by_filter.items():
        t_f = float(np.median([f.exptime for f in members]))
        dark_name, how = _pick_dark(g.darks, t_f, g.bias is not None)
        dark = night.masters.get(dark_name) if dark_name else None
        flat, info = make_master_flat(members, g.bias, dark, g.noise, method=g.combine,
                                      progress=g.steps.sub(len(members)))
        night.report["skipped"] += info["skipped"]
        if flat is None:
            g.skip_step(f"no usable flat of filter {filt!r}")
            continue
        name = f"flat_{filt if filt is not None else 'none'}{g.suffix}"
        _record_master(night, g.out, g.writer, name, flat, {
            "frames": info["used"], "n": len(info["used"]), "method": g.combine, "filter": filt,
            "levels_e": info["levels"], "dark": dark_name, "dark_match": how,
            "bias": g.bias_name, "low_response_pixels": int(flat.mask.sum()),
            "nonpositive_pixels": info["n_nonpositive"]}, members)
        g.flats[filt] = name


def _calibrate_lights(g):
    """Calibrate (or reuse) every light, in filter and exposure order (so prepared masters
    are shared), and report them in file order."""
    night, out = g.night, g.out
    n_pixels = sum(int(np.prod(f.shape)) for f in g.kinds["light"])
    memmap = out is not None and (n_pixels * 9 > IN_MEMORY_BYTES if g.memmap is None
                                  else bool(g.memmap))
    cal_frames = g.kinds["bias"] + g.kinds["dark"] + g.kinds["flat"]
    done = []  # (file order, ccd, report entry): calibrated grouped by filter and exposure
    order = {id(f): i for i, f in enumerate(g.kinds["light"])}
    prepared = [None]  # the masters prepared for the last light (shared by the next ones)
    for frame in sorted(g.kinds["light"], key=lambda f: (str(f.filter), f.exptime)):
        item = [order[id(frame)], *_calibrate_one(g, frame, cal_frames, memmap, prepared)]
        done.append(item)
        if out is not None and not item[2].get("reused"):
            def written(path, item=item):
                night.products.append(path)
                item[2]["product"] = path.name
                if memmap:  # keep memory bounded over many big lights
                    item[1] = read_product(path, memmap=True)

            g.writer.submit(item[1], out / frame.product_name, written)
        g.steps.step(f"calibrated {frame.name}")
    if g.writer is not None:
        g.writer.wait()
    for _, ccd, light_entry in sorted(done, key=lambda item: item[0]):
        night.lights.append(ccd)
        night.report["lights"].append(light_entry)


def _calibrate_one(g, frame, cal_frames, memmap, prepared):
    """(calibrated light, its report entry): a product reused when its inputs did not
    change, else calibrated with the group's masters."""
    night, out, noise, bias = g.night, g.out, g.noise, g.bias
    dark_name, how = _pick_dark(g.darks, frame.exptime, bias is not None)
    flat_name = g.flats.get(frame.filter)
    masters = {"bias": bias, "dark": night.masters.get(dark_name) if dark_name else None,
               "flat": night.masters.get(flat_name) if flat_name else None}
    key = (id(bias), id(masters["dark"]), id(masters["flat"]), float(frame.exptime),
           noise.gain, noise.read_noise)
    reused = None
    if out is not None:
        run = night._run
        zpkey = _light_key(run, frame, cal_frames, g.suffix)
        reused = _reusable(out / frame.product_name, zpkey, memmap)
        used = [m for m in (g.bias_name, dark_name, flat_name) if m]
        run["keys"][frame.product_name] = {"kind": "light", "key": zpkey,
                                           "inputs": [frame.path],
                                           "masters": [f"master_{m}.fits" for m in used]}
    if reused is not None:
        ccd, counts = reused
        run["reused"].append(frame.product_name)
        run["keys"][frame.product_name]["run"] = ccd.meta.get(RUN_KEY)
    else:
        if prepared[0] is None or prepared[0]["key"] != key:
            prepared[0] = None  # free the previous one first
            prepared[0] = prepare_masters(noise, frame.exptime, **masters)
        ccd, counts = calibrate_light(frame, noise, prepared=prepared[0], **masters)
        _annotate(ccd, frame, noise, g.bias_name or False, dark_name, how, flat_name, counts,
                  out)
        ccd = colour_channel(ccd, night._run["settings"].get("cfa", "G"), frame.name,
                             g.entry["notes"], reference=masters["flat"])
        if out is not None:
            ccd.meta[MARKER_KEY] = (software(), "a product: never a raw frame")
            ccd.meta[RUN_KEY] = (night._run["id"], "run that wrote it")
            ccd.meta[INPUTS_KEY] = (zpkey, "inputs hash")
    light_entry = {
        "file": str(frame.path.name), "path": str(frame.path), "filter": frame.filter,
        "exptime": frame.exptime, "bias": g.bias_name, "dark": dark_name, "dark_match": how,
        "flat": flat_name,
        "flat_match": (f"flat of filter {frame.filter!r}" if flat_name else
                       f"no flat of filter {frame.filter!r}: not flat-fielded"),
        "masked": counts}
    if ccd.meta.get("CFACHAN"):
        light_entry["colour"] = {"pattern": ccd.meta.get("CFAPAT"),
                                 "channel": ccd.meta.get("CFACHAN")}
    if flat_name is None:
        g.skip_step(f"{frame.name}: no flat of filter {frame.filter!r}; not flat-fielded")
    if reused is not None:
        night.products.append(out / frame.product_name)
        light_entry["product"] = frame.product_name
        light_entry["reused"] = True
    return ccd, light_entry


def colour_channel(ccd, cfa, name, notes=None, reference=None):
    """``ccd`` as the ``cfa`` colour channel (:func:`.cfa.extract_channel`) when its header
    says it is a colour mosaic, else as it is; what was done is noted once per group
    (``notes``) and logged. ``reference``: the master flat its pattern is checked on."""
    from .cfa import cfa_pattern, extract_channel

    pattern, key = cfa_pattern(ccd.meta)
    if pattern is None:
        return ccd
    if cfa == "none":
        note = (f"colour mosaic ({pattern} from {key}) kept as one image (--cfa none): its "
                "stars mix three filters, and their magnitudes are in no photometric band")
    else:
        ccd = extract_channel(ccd, cfa, pattern=pattern, name=name, reference=reference)
        how = "the sum of the two green pixels" if cfa == "G" else f"its {cfa} pixel"
        note = (f"colour mosaic ({pattern} from {key}): each light is its {cfa} channel, each "
                f"2x2 cell one pixel ({how}), half the frame's size; --cfa none keeps the "
                "mosaic")
        if cfa != "G":
            note += (f"; {cfa} is one pixel of each cell: for stars narrower than ~2 cells the "
                     "share of their light it catches depends on where they fall (0.3 mag "
                     "scatter between two real undersampled DSLR frames): measure G for such "
                     "stars")
        if ccd.meta.get("CFANOTE"):
            note += "; " + str(ccd.meta["CFANOTE"])
    if notes is not None and note not in notes:
        notes.append(note)  # the caller reports it
    log.info("%s: %s", name, note)
    return ccd


def _product_names(frames, root):
    """``<light stem>_cal.fits``; lights of the same name in different sub-folders get the
    folder in front (``night2_M13_001_cal.fits``) so that no product overwrites another."""
    lights = [f for f in frames if f.kind == "light"]
    counts = {}
    for f in lights:
        counts[_stem(f.path).lower()] = counts.get(_stem(f.path).lower(), 0) + 1
    for f in lights:
        stem = _stem(f.path)
        if counts[stem.lower()] > 1:
            parts = f.path.parent.relative_to(root).parts
            stem = "_".join([*parts, stem]) if parts else stem
        f.product_name = f"{stem}_cal.fits"


def _stem(path):
    name = path.name
    for suffix in (".fits.gz", ".fit.gz", ".fits.fz", ".fits", ".fit", ".fts", ".fz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _annotate(ccd, frame, noise, bias_name, dark_name, how, flat_name, counts, out):
    h = ccd.meta

    def fname(name):
        return ascii_text(f"master_{name}.fits") if name else "none"

    h["GAIN"] = (1.0, "e-/e-: data are in electrons")
    h["RAWGAIN"] = (noise.gain, "e-/ADU used to convert the raw frame")
    h["GAINSRC"] = ascii_text(noise.gain_source)[:68]
    h["RDNOISE"] = (noise.read_noise, "read noise (e-)")
    h["RDNSRC"] = ascii_text(noise.read_noise_source)[:68]
    h.remove("EGAIN", ignore_missing=True)
    h["MBIAS"] = (fname(bias_name), "master bias subtracted")
    h["MDARK"] = (fname(dark_name), "master dark-current rate subtracted")
    h["MFLAT"] = (fname(flat_name), "master flat divided")
    h["BUNIT"] = "electron"
    for name, key in _COUNT_KEYS.items():
        h[key] = (int(counts[name]), f"pixels masked: {name}")
    h.add_history(f"calibrated by glue-zeropoint from {ascii_text(frame.name)}")
    h.add_history(ascii_text(f"gain {noise.gain:.4g} e-/ADU ({noise.gain_source})"))
    h.add_history(ascii_text(f"read noise {noise.read_noise:.3g} e- "
                             f"({noise.read_noise_source})"))
    h.add_history(f"bias: {fname(bias_name)}")
    h.add_history(f"dark: {fname(dark_name)} ({how})")
    h.add_history(f"flat: {fname(flat_name)}")
    h.add_history("uncertainty: [max(S-B-dt,0) + R^2 + sB^2 + t^2 sd^2]/f^2 + C^2 sf^2/f^2")
    h.add_history(f"mask: {counts['saturated']} saturated, {counts['hot']} hot, "
                  f"{counts['low_response']} low-response, {counts['nonfinite']} non-finite")
    for guess in frame.guesses:
        h.add_history(ascii_text(f"guess: {guess}"))
