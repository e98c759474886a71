"""Load raw nights and calibrated products into glue (glue-core only, no Qt).

Public API
----------
``ccd_to_data(ccd, label) -> glue.core.Data``
    One image dataset: components ``'flux'`` (e-), ``'uncertainty'`` (1-sigma, e-) and
    ``'mask'`` (uint8, 1 = bad); ``coords`` is the image WCS (with SIP when the header has it);
    ``meta`` holds only plain-JSON values (glue drops anything else when saving a session):

    ``zp_wcs_header``  the full WCS as a header string (``wcs.to_header_string(relax=True)``,
                       SIP kept; glue's own session saver drops SIP: rebuild with
                       :func:`wcs_from_meta`)
    ``zp_header``      the whole FITS header as a string (:func:`header_from_meta`)
    ``zp_product``     path of the calibrated product the data came from (or ``None``)
    ``zp_kind``        ``'light'`` or ``'master'``
    ``exptime``        seconds (float or ``None``), ``filter`` (header value or ``None``),
    ``band``           normalised band name (``'V'``, ``'r'``...) or ``None``, ``bunit``.

``data_to_ccd(data) -> CCDData``
    The inverse, for the science layers (photometry, zero point) working on a glue image.

``load_night(path, *, progress=None) -> list[Data]``
    What the data factory returns for a raw-night folder, a folder of products or a product.

``products_dir_for(raw_dir) -> Path``
    Where the products of a raw folder are (or will be) written.

Where products go, and session restore
--------------------------------------
A raw folder is never written to, nor is anything written next to it. Its products go to
``$GLUE_ZEROPOINT_PRODUCTS_DIR/<folder name>-<hash of its absolute path>/`` when that variable is
set, else to ``<user cache dir>/glue-zeropoint/products/<folder name>-<hash>/`` (``$XDG_CACHE_HOME``
or ``~/.cache``). A manifest ``zp_products.json`` there records the raw files (name, size,
modification time) and the products; when it matches the folder the products are reused and
nothing is recalibrated. glue restores factory-loaded data by re-running the factory on the
original path, so restoring a session is a read of the products, not a calibration (even when
the raw folder has since been moved away, as long as its products are still there).
A folder that already holds calibrated products (``*_cal.fits`` with ``UNCERT`` and ``MASK``
extensions, e.g. the output of ``glue-zeropoint calibrate``) is loaded as it is, but products
of glue-zeropoint's calibration (header ``ZPSOFT``) only through their folder's complete and
current ``calibration.json`` (:mod:`glue_zeropoint.calibration.manifest`): a folder left by a
killed run, with products of an earlier run, whose raw frames changed since, or that a run is
writing into right now, is refused with the reason and the command that repairs it (a
non-modal message in the GUI); only the products the manifest lists are loaded. The products
folder of a raw folder is reused only when both manifests agree with the raw files.

The datasets come in a fixed order (lights sorted by file name, then masters sorted by name)
with fixed components, which glue's restore-by-reference relies on.

Long steps and the GUI
----------------------
The factory runs the calibration through :func:`run_task`. Without a GUI this calls it
directly; the Qt side installs a runner (:func:`set_task_runner`) that runs it in a worker
thread with a progress display and a Cancel button. A cancelled load returns no data. In the
GUI an error of ours (bad folder, calibration failure) shows as a non-modal message and the
factory returns no data (:func:`set_error_reporter`), so glue opens no traceback dialog. When
glue restores a session it needs the data (its ``LoadLog`` takes the first dataset): the
plugin's session patch (:func:`mark_session_loads`) adds ``zp_restoring_session=True`` to the
saved keyword arguments of our factories' records, glue passes them back to the factory, and
the factory then raises instead of reporting.

Links
-----
The images a factory returns are linked to each other by the plugin
(:func:`glue_zeropoint.glue.links.link_images`, run by the plugin's autolinker before glue's
own), so glue's "Astronomy WCS" link-suggestion dialog has nothing to ask about them.
"""

import hashlib
import json
import logging
import os
import re
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.wcs import WCS, FITSFixedWarning

from ..exceptions import Cancelled, InputError, ZeropointError
from ..headers import EXPTIME_KEYS, FILTER_KEYS, header_text, header_value
from ..io import FITS_SUFFIXES, atomic_path, fits_stem, user_cache_dir

__all__ = ["ccd_to_data", "data_to_ccd", "wcs_from_meta", "header_from_meta", "WCS_META_KEY", "load_night",
           "products_dir_for", "is_raw_night_dir", "is_product_file", "find_products",
           "raw_night_factory", "calibrated_product_factory", "run_task", "set_task_runner",
           "set_error_reporter",
           "progress_override", "raising_load_errors", "mark_session_loads", "RESTORE_KWARG",
           "FITS_EXTENSIONS", "MANIFEST_NAME", "register"]

log = logging.getLogger(__name__)

#: ``data.meta`` key of the full WCS header (SIP included) of an image dataset: glue's own
#: session format drops SIP terms, a string in meta survives.
WCS_META_KEY = "zp_wcs_header"
FITS_EXTENSIONS = FITS_SUFFIXES  # the name glue-side code has used
MANIFEST_NAME = "zp_products.json"
PRODUCT_SUFFIX = "_cal"
MASTER_PREFIX = "master_"
_MANIFEST_VERSION = 1


# ---------------------------------------------------------------------------------------------
# CCDData <-> glue Data

def _band_of(filter_name):
    """A normalised band name from a FILTER value ('V', 'Johnson V', "r'", 'SDSS r'...)."""
    if filter_name is None:
        return None
    text = str(filter_name).strip()
    if not text:
        return None
    last = re.split(r"[\s_\-/]+", text)[-1].rstrip("'")
    if last in ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z", "y"):
        return last
    if last.upper() in ("U", "B", "V", "R", "I"):
        return last.upper()
    if last.lower() in ("clear", "c", "l", "lum", "luminance", "none", "open"):
        return None
    return last


def ccd_to_data(ccd, label, *, product=None, kind="light"):
    """Make a glue image dataset from a calibrated `~astropy.nddata.CCDData`.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        Image in electrons; its ``uncertainty`` (standard deviation), ``mask`` (True = bad),
        ``wcs`` and ``meta`` header are carried over when present.
    label : str
        The dataset label.
    product : str or path-like, optional
        The calibrated product file the image came from (stored as ``meta['zp_product']``).
    kind : {'light', 'master'}
        Stored as ``meta['zp_kind']``.

    Returns
    -------
    data : `glue.core.Data`
        Components ``flux``, ``uncertainty``, ``mask`` (uint8); ``coords`` = the WCS (or none
        when the image has no celestial WCS); JSON-only ``meta`` (see the module docstring).
    """
    from glue.core import Data
    from glue.core.component import Component

    flux = np.asarray(ccd.data, dtype=np.float32)
    if flux.ndim != 2:
        raise InputError(f"{label}: expected a 2-D image, got shape {flux.shape}")
    if ccd.uncertainty is not None:
        sigma = np.asarray(ccd.uncertainty.represent_as(StdDevUncertainty).array,
                           dtype=np.float32)
    else:
        sigma = np.full(flux.shape, np.nan, dtype=np.float32)
    mask = (np.zeros(flux.shape, dtype=np.uint8) if ccd.mask is None
            else np.asarray(ccd.mask, dtype=bool).astype(np.uint8))
    header = fits.Header(ccd.meta) if not isinstance(ccd.meta, fits.Header) else ccd.meta
    wcs = ccd.wcs if (ccd.wcs is not None and ccd.wcs.has_celestial) else None

    data = Data(label=label)
    if wcs is not None:
        data.coords = wcs
    unit = str(ccd.unit) if ccd.unit is not None else "electron"
    data.add_component(Component(flux, units=unit), "flux")
    data.add_component(Component(sigma, units=unit), "uncertainty")
    data.add_component(Component(mask), "mask")

    filter_name = header_text(header, FILTER_KEYS)
    exptime, _ = header_value(header, EXPTIME_KEYS)
    data.meta.update({
        "zp_kind": kind,
        "zp_product": None if product is None else str(product),
        WCS_META_KEY: None if wcs is None else wcs.to_header_string(relax=True),
        "zp_header": header.tostring(),
        "exptime": None if exptime is None else float(exptime),
        "filter": None if filter_name is None else str(filter_name).strip(),
        "band": _band_of(filter_name),
        "bunit": unit,
    })
    return data


def header_from_meta(data):
    """The FITS header stored in ``data.meta['zp_header']`` (an empty header if none)."""
    text = data.meta.get("zp_header")
    return fits.Header.fromstring(text) if text else fits.Header()


def wcs_from_meta(data):
    """The full WCS (SIP included) of an image dataset, from ``meta['zp_wcs_header']``.

    Falls back to ``data.coords`` when it is an astropy WCS, else returns ``None``.
    """
    import warnings

    text = data.meta.get(WCS_META_KEY) if hasattr(data, "meta") else None
    if text:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            w = WCS(fits.Header.fromstring(text), relax=True)
        if getattr(data, "ndim", None) == 2:
            w.pixel_shape = (data.shape[1], data.shape[0])
        return w
    coords = getattr(data, "coords", None)
    return coords if isinstance(coords, WCS) else None


def data_to_ccd(data):
    """A `~astropy.nddata.CCDData` (e-, uncertainty, mask, full WCS, header) from an image dataset."""
    header = header_from_meta(data)
    flux = np.asarray(data["flux"], dtype=np.float32)
    sigma = np.asarray(data["uncertainty"], dtype=np.float32)
    mask = np.asarray(data["mask"]) != 0
    unit = data.meta.get("bunit") or "electron"
    uncertainty = None if np.all(np.isnan(sigma)) else StdDevUncertainty(sigma)
    return CCDData(flux, unit=unit, uncertainty=uncertainty, mask=mask, wcs=wcs_from_meta(data),
                   meta=header)


# ---------------------------------------------------------------------------------------------
# progress / task runner (the Qt side installs a runner with a worker thread and a dialog)

_runner = None
_local = threading.local()


def set_task_runner(runner):
    """Install ``runner(task, title) -> result`` used by :func:`run_task` (``None`` resets).

    ``task`` is a callable ``task(progress)``; the runner must call it with a progress callback
    (which may raise `~glue_zeropoint.exceptions.Cancelled`) and return its result or re-raise
    its exception. Returns the previous runner.
    """
    global _runner
    previous, _runner = _runner, runner
    return previous


@contextmanager
def progress_override(progress):
    """Within this block (on this thread) :func:`run_task` calls tasks directly with ``progress``.

    Used when the caller already runs in a worker thread and shows its own progress.
    """
    with _thread_setting("progress", progress):
        yield


@contextmanager
def _thread_setting(name, value):
    """Set ``_local.<name>`` on this thread for the block (restored after)."""
    previous = getattr(_local, name, None)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, previous)


def run_task(task, title):
    """Run ``task(progress)`` through the installed runner (or directly)."""
    progress = getattr(_local, "progress", None)
    if progress is not None or _runner is None:
        return task(progress)
    return _runner(task, title)


# ---------------------------------------------------------------------------------------------
# recognising paths

def _is_fits_name(name):
    return name.lower().endswith(FITS_EXTENSIONS)


def is_product_file(path):
    """True if ``path`` is a calibrated product: FITS with ``UNCERT`` and ``MASK`` extensions."""
    path = str(path)
    if not (os.path.isfile(path) and _is_fits_name(path)):
        return False
    try:
        with fits.open(path, lazy_load_hdus=True) as hdul:
            names = {hdu.name.upper() for hdu in hdul}
    except (OSError, ValueError):
        return False
    return {"UNCERT", "MASK"} <= names


def find_products(folder):
    """Calibrated products directly in ``folder``: ``(lights, masters)``, each sorted by name."""
    folder = Path(folder)
    lights, masters = [], []
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and _is_fits_name(path.name)):
            continue
        stem = fits_stem(path)
        if stem.startswith(MASTER_PREFIX) and is_product_file(path):
            masters.append(path)
        elif stem.endswith(PRODUCT_SUFFIX) and is_product_file(path):
            lights.append(path)
    return lights, masters


def _raw_files(folder):
    """All FITS files under ``folder`` (recursively), as sorted relative POSIX paths."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if _is_fits_name(name):
                found.append(Path(root, name).relative_to(folder).as_posix())
    return sorted(found)


def is_raw_night_dir(path):
    """True if ``path`` is a folder holding FITS frames (raw frames or calibrated products)."""
    path = str(path)
    if not os.path.isdir(path):
        return False
    base_depth = path.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(path):
        if any(_is_fits_name(name) for name in files):
            return True
        if root.rstrip(os.sep).count(os.sep) - base_depth >= 2:
            dirs[:] = []  # raw nights keep frames at most two folders down
    return False


# ---------------------------------------------------------------------------------------------
# products of a raw folder

def _products_root():
    return user_cache_dir("products", "GLUE_ZEROPOINT_PRODUCTS_DIR")


def products_dir_for(raw_dir):
    """Folder where the calibrated products of ``raw_dir`` are kept (see module docstring)."""
    raw_dir = Path(raw_dir).expanduser().resolve()
    digest = hashlib.sha1(str(raw_dir).encode("utf-8")).hexdigest()[:12]
    name = re.sub(r"[^\w.\-]+", "_", raw_dir.name) or "night"
    return _products_root() / f"{name}-{digest}"


def _fingerprint(raw_dir):
    raw_dir = Path(raw_dir)
    result = []
    for rel in _raw_files(raw_dir):
        st = (raw_dir / rel).stat()
        result.append([rel, st.st_size, st.st_mtime_ns])
    return result


def _read_manifest(out_dir):
    try:
        with open(Path(out_dir) / MANIFEST_NAME, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("version") == _MANIFEST_VERSION else None


def _manifest_products(manifest, out_dir, raw_dir):
    """The (lights, masters) paths of a manifest if it is current for ``raw_dir``, else None."""
    if manifest is None or manifest.get("fingerprint") != _fingerprint(raw_dir):
        return None
    if (Path(out_dir) / "calibration.json").exists():  # a real calibration: its manifest too
        from ..calibration.manifest import folder_problems

        problems, _ = folder_problems(out_dir)
        if problems:
            log.info("products of %s not reused: %s", raw_dir, "; ".join(problems))
            return None
    lights = [Path(out_dir) / name for name in manifest.get("lights", [])]
    masters = [Path(out_dir) / name for name in manifest.get("masters", [])]
    if not lights or not all(p.is_file() for p in lights + masters):
        return None
    return lights, masters


def write_product(ccd, path):
    """Write a CCDData as a product (primary e-, ``UNCERT``, ``MASK``), atomically."""
    from ..calibration import write_product as calibration_write_product

    return Path(calibration_write_product(ccd, path))


MEMMAP_BYTES = 256 * 2 ** 20  # products bigger than this are memory-mapped, not read


def _read_product(path):
    from ..calibration import read_product

    return read_product(path, memmap=Path(path).stat().st_size > MEMMAP_BYTES)


def _kept_products(raw_dir):
    """(lights, masters) still in the products folder of a raw folder that no longer exists."""
    out_dir = products_dir_for(raw_dir)
    manifest = _read_manifest(out_dir)
    if manifest is None:
        return None
    lights = [out_dir / name for name in manifest.get("lights", [])]
    masters = [out_dir / name for name in manifest.get("masters", [])]
    if not lights or not all(p.is_file() for p in lights + masters):
        return None
    return lights, masters


def _calibrate(raw_dir, out_dir, progress):
    from ..calibration import calibrate_night

    return calibrate_night(raw_dir, out_dir, progress=progress)


def _calibrate_into_cache(raw_dir, progress):
    """Calibrate ``raw_dir`` into its products folder (or reuse it); returns (lights, masters)."""
    raw_dir = Path(raw_dir).expanduser().resolve()
    out_dir = products_dir_for(raw_dir)
    current = _manifest_products(_read_manifest(out_dir), out_dir, raw_dir)
    if current is not None:
        log.info("reusing calibrated products of %s in %s", raw_dir, out_dir)
        return current
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(raw_dir)
    night = _calibrate(raw_dir, out_dir, progress)
    written = [Path(p) for p in night.products if Path(p).is_file() and _is_fits_name(str(p))]
    lights = sorted(p for p in written if fits_stem(p).endswith(PRODUCT_SUFFIX))
    if not lights:
        lights = find_products(out_dir)[0]
    masters = {fits_stem(p)[len(MASTER_PREFIX):]: p for p in written
               if fits_stem(p).startswith(MASTER_PREFIX)}
    for name, master in getattr(night, "masters", {}).items():
        safe = re.sub(r"[^\w.\-]+", "_", str(name))
        if safe not in masters:  # the calibration layer did not write it: do it here
            masters[safe] = write_product(master, out_dir / f"{MASTER_PREFIX}{safe}.fits")
    masters = [masters[name] for name in sorted(masters)]
    manifest = {
        "version": _MANIFEST_VERSION,
        "raw_dir": str(raw_dir),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,
        "lights": [os.path.relpath(p, out_dir) for p in lights],
        "masters": [p.name for p in masters],
    }
    with atomic_path(out_dir / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return lights, masters


def _label_of(path, kind):
    stem = fits_stem(path)
    if kind == "master":
        return "master " + stem[len(MASTER_PREFIX):]
    return stem[: -len(PRODUCT_SUFFIX)] if stem.endswith(PRODUCT_SUFFIX) else stem


def _to_datasets(lights, masters, progress=None):
    result = []
    items = [(p, "light") for p in lights] + [(p, "master") for p in masters]
    for i, (path, kind) in enumerate(items):
        if progress is not None:
            progress(i, len(items), f"reading {Path(path).name}")
        ccd = _read_product(path)
        result.append(ccd_to_data(ccd, _label_of(path, kind), product=Path(path).resolve(),
                                  kind=kind))
    return result


def load_night(path, *, progress=None):
    """Datasets for a raw-night folder, a folder of products, or one product file.

    Raises
    ------
    InputError
        When ``path`` is none of these.
    Cancelled
        When ``progress`` raises it.
    """
    path = Path(path).expanduser()
    if path.is_file():
        if not is_product_file(path):
            raise InputError(f"{path}: not a calibrated product (no UNCERT/MASK extensions)")
        _check_product_file(path)
        return _to_datasets([path], [])
    if not path.is_dir():
        kept = _kept_products(path)
        if kept is None:
            raise InputError(f"{path}: no such file or folder")
        log.warning("%s is gone; using its calibrated products in %s", path,
                    products_dir_for(path))
        return _to_datasets(*kept, progress)
    lights, masters = find_products(path)
    if lights:
        lights, masters = _trusted_products(path, lights, masters)
    if not lights:
        if not is_raw_night_dir(path):
            raise InputError(f"{path}: no FITS frames found in this folder")
        lights, masters = _calibrate_into_cache(path, progress)
    return _to_datasets(lights, masters, progress)


def _trusted_products(folder, lights, masters):
    """The products of a folder written by ``glue-zeropoint calibrate``, only through its
    complete manifest (``calibration.json``): an interrupted run, products of an earlier run,
    raw frames changed since, or a run still writing are refused with the reason and the fix
    (:class:`~glue_zeropoint.exceptions.StaleProductsError`). Folders of products from
    elsewhere (no glue-zeropoint marker, no calibration.json) load as they are."""
    from ..calibration.manifest import MANIFEST_NAME, check_folder, product_files

    folder = Path(folder)
    if not (folder / MANIFEST_NAME).exists() and not product_files(folder):
        return lights, masters
    report = check_folder(folder)
    listed = report["manifest"]["products"]
    lights = [p for p in lights if p.name in listed]
    masters = [p for p in masters if p.name in listed]
    return lights, masters


def _check_product_file(path):
    """One product of ours: trusted only through the manifest of its folder."""
    from ..calibration.manifest import check_product

    check_product(path)


# ---------------------------------------------------------------------------------------------
# glue data factories

def _identify_raw_dir(path, **kwargs):
    return is_raw_night_dir(path)


def _identify_product(path, **kwargs):
    return is_product_file(path)


def raw_night_factory(path, **kwargs):
    """glue data factory: a raw-night folder (or a folder of products) -> image datasets.

    A cancelled load returns no data. Errors of ours (``ZeropointError``) are raised, unless
    an error reporter is installed (:func:`set_error_reporter`, done by the Qt side): then
    they are reported to it and no data is returned, so that glue shows no traceback dialog.
    """
    return _reporting_errors(path, lambda: run_task(
        lambda progress: load_night(path, progress=progress), f"Loading {Path(path).name}"),
        kwargs)


def _reporting_errors(path, load, kwargs):
    try:
        return load()
    except Cancelled:
        if kwargs.get(RESTORE_KWARG):  # glue indexes the result: it must not be empty
            raise
        log.info("loading %s was cancelled", path)
        return []
    except ZeropointError as err:
        if (_error_reporter is None or getattr(_local, "progress", None) is not None
                or getattr(_local, "raise_errors", False) or kwargs.get(RESTORE_KWARG)):
            # no GUI; a caller with its own progress display; a caller that needs the data
            # (raising_load_errors); or glue restoring a session, whose LoadLog takes [0]
            raise
        _error_reporter(f"Could not load {path}:\n{err}")
        return []


@contextmanager
def raising_load_errors():
    """Within this block (on this thread) the factories raise their errors, also in the GUI,
    instead of reporting them and returning no data (for callers that index the result)."""
    with _thread_setting("raise_errors", True):
        yield


# ---------------------------------------------------------------------------------------------
# session restore: glue's LoadLog re-runs a factory with the keyword arguments it saved

#: keyword argument the factories receive when glue restores a session (see
#: :func:`mark_session_loads`)
RESTORE_KWARG = "zp_restoring_session"
_LOADLOG_TYPE = "glue.core.data_factories.helpers.LoadLog"


def _factory_names():
    return {f"{__name__}.{f.__name__}" for f in (raw_night_factory, calibrated_product_factory)}


def mark_session_loads(record):
    """glue ``session_patch``: tell the plugin's factories that a session restore calls them.

    glue saves a factory-loaded dataset as a ``LoadLog`` record (``path``, ``factory``,
    ``kwargs``) and restores it with ``load_data(path, factory=..., **kwargs)``, then takes
    the first dataset of the result. Adding ``zp_restoring_session=True`` to the saved kwargs
    of the records of our factories (glue calls session patches on the raw record before
    rebuilding anything: the documented ``glue.config.session_patch`` hook) lets a factory know
    it must return data or raise, never report the error and return nothing. Modifies
    ``record`` in place; returns the names of the records marked.
    """
    ours = _factory_names()
    marked = []
    for name, item in record.items():
        if not (isinstance(item, dict) and item.get("_type") == _LOADLOG_TYPE):
            continue
        factory = item.get("factory")
        if isinstance(factory, str):  # a reference to another record
            factory = record.get(factory)
        if not (isinstance(factory, dict) and factory.get("function") in ours):
            continue
        saved = item.get("kwargs") or [[]]
        pairs = [list(pair) for pair in (saved[0] if saved else [])
                 if pair and pair[0] != RESTORE_KWARG]
        item["kwargs"] = [pairs + [[RESTORE_KWARG, True]]]
        marked.append(name)
    return marked


_error_reporter = None


def set_error_reporter(reporter):
    """Install ``reporter(message)`` for errors of the raw-night factory (``None`` resets).

    Returns the previous reporter.
    """
    global _error_reporter
    previous, _error_reporter = _error_reporter, reporter
    return previous


def calibrated_product_factory(path, **kwargs):
    """glue data factory: one calibrated product file -> one image dataset.

    Errors are handled as in :func:`raw_night_factory` (a broken product is a non-modal
    message in the app, not glue's traceback dialog)."""
    return _reporting_errors(path, lambda: load_night(path), kwargs)


def register():
    """Register the two data factories (priority 200, above glue's FITS reader at 100) and the
    session patch that marks their session-restore calls (:func:`mark_session_loads`)."""
    from glue.config import session_patch

    if not any(member.function is mark_session_loads for member in session_patch.members):
        session_patch.add(mark_session_loads)

    add_data_factory("Raw CCD night folder (glue-zeropoint)", _identify_raw_dir, 200,
                     raw_night_factory)
    add_data_factory("Calibrated CCD product (glue-zeropoint)", _identify_product, 200,
                     calibrated_product_factory)


def add_data_factory(label, identifier, priority, factory):
    """Register ``factory`` with glue's ``data_factory`` registry under ``label`` unless a
    factory of that label is there already (registering twice would list it twice in
    File > Open)."""
    from glue.config import data_factory

    if label not in {member.label for member in data_factory.members}:
        data_factory(label, identifier=identifier, priority=priority)(factory)
