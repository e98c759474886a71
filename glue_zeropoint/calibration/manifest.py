"""Products that know they are products, and the manifest that says a folder is complete.

Every file ``calibrate_night`` writes carries a marker in its primary header:

``ZPSOFT``  ``'glue-zeropoint <version>'``: this is a product, never a raw frame;
``ZPRUN``   the id of the run that wrote it;
``ZPKEY``   (calibrated lights) a hash of everything the product depends on: the raw light's
            bytes, the bytes of every bias/dark/flat of its frame group, the settings and the
            software version. A later run whose key is the same reuses the product.

The raw scan skips any product it meets (:func:`is_product`), wherever it is. The run writes
``calibration.json`` last; its ``manifest`` entry names every product with its raw inputs,
their SHA-256 hashes and the settings. A folder of products is trusted only through it
(:func:`folder_problems`): products without a manifest (an interrupted run), missing or
changed products, products of an earlier run, raw frames changed, removed or added since, or a
run still writing, make the folder untrusted, with the reason and what to do
(:func:`check_folder`).
"""

import logging
import os
from pathlib import Path

from astropy.io import fits

from ..exceptions import StaleProductsError
from ..io import FITS_SUFFIXES, file_sha256, lock_holder

__all__ = ["MARKER_KEY", "RUN_KEY", "INPUTS_KEY", "MANIFEST_NAME", "MANIFEST_FORMAT",
           "software", "is_product", "is_product_header", "read_manifest", "product_files",
           "folder_problems", "check_folder", "check_product"]

log = logging.getLogger(__name__)

MARKER_KEY = "ZPSOFT"
RUN_KEY = "ZPRUN"
INPUTS_KEY = "ZPKEY"
MANIFEST_NAME = "calibration.json"
MANIFEST_FORMAT = 1
_HISTORY_MARK = "calibrated by glue-zeropoint"


def software():
    """``'glue-zeropoint <version>'``."""
    from .. import __version__

    return f"glue-zeropoint {__version__}"


def is_product_header(header):
    """True if a FITS header is one of a product written by glue-zeropoint's calibration."""
    if header is None:
        return False
    if MARKER_KEY in header:
        return True
    value = str(header.get("IMAGETYP", ""))
    if value.startswith("master ") and "glue-zeropoint" in str(
            header.comments["IMAGETYP"] if "IMAGETYP" in header else ""):
        return True
    return any(str(h).startswith(_HISTORY_MARK) for h in header.get("HISTORY", []))


def is_product(hdul):
    """True if an open FITS file is a calibrated product (ours, or any with ``UNCERT`` and
    ``MASK`` image extensions): never a raw frame."""
    names = {hdu.name.upper() for hdu in hdul}
    if {"UNCERT", "MASK"} <= names:
        return True
    return any(is_product_header(hdu.header) for hdu in list(hdul)[:2])


def read_manifest(folder):
    """The ``calibration.json`` of ``folder`` if it is a complete manifest of this format, else
    None."""
    import json

    path = Path(folder) / MANIFEST_NAME
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    manifest = report.get("manifest") if isinstance(report, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or \
            not manifest.get("complete"):
        return None
    return report


def _is_fits_name(name):
    return name.lower().endswith(FITS_SUFFIXES)


def product_files(folder):
    """Files directly in ``folder`` that are products of glue-zeropoint's calibration."""
    found = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        if not (entry.is_file() and _is_fits_name(entry.name)) or entry.name.startswith("."):
            continue
        try:
            header = fits.getheader(entry.path)
        except Exception:  # noqa: BLE001 - unreadable: not a product of ours
            continue
        if is_product_header(header):
            found.append(Path(entry.path))
    return found


def _new_raw_files(raw_dir, known, out_dir):
    """FITS files below ``raw_dir`` that the manifest does not know (and are not products)."""
    raw_dir = Path(raw_dir)
    out_dir = Path(out_dir).resolve()
    new = []
    for root, dirs, files in os.walk(raw_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        if here.resolve() == out_dir:
            dirs[:] = []
            continue
        for name in sorted(files):
            if name.startswith(".") or not _is_fits_name(name):
                continue
            rel = (here / name).relative_to(raw_dir).as_posix()
            if rel in known:
                continue
            try:
                with fits.open(here / name, lazy_load_hdus=False) as hdul:
                    if is_product(hdul):
                        continue
            except Exception:  # noqa: BLE001 - unreadable: the next run would skip it too
                continue
            new.append(rel)
    return new


def folder_problems(folder, *, check_raw=True, verify_hashes=True):
    """Why the products in ``folder`` cannot be trusted (empty list: they can).

    Parameters
    ----------
    folder : path
        A folder written by ``glue-zeropoint calibrate`` (or the Glue loader).
    check_raw : bool
        Also check the raw frames named in the manifest (when the raw folder still exists):
        removed, changed (size, or content when the modification time changed) or new ones.
    verify_hashes : bool
        Hash a raw frame whose modification time changed (else a changed time is a change).

    Returns
    -------
    problems : list of str
    report : dict or None
        The ``calibration.json`` content when it is a complete manifest.
    """
    folder = Path(folder)
    problems = []
    holder = lock_holder(folder)
    if holder:
        problems.append(f"a calibration is writing into it right now ({holder})")
    report = read_manifest(folder)
    ours = product_files(folder)
    if report is None:
        if (folder / MANIFEST_NAME).exists():
            problems.append(f"its {MANIFEST_NAME} is not a complete manifest of this version "
                            "(damaged, or written by an older glue-zeropoint)")
        elif ours:
            problems.append(f"it holds {len(ours)} product(s) but no {MANIFEST_NAME}: the run "
                            "that wrote them did not finish (interrupted or killed), or they were "
                            f"copied here without their {MANIFEST_NAME}")
        return problems, None
    manifest = report["manifest"]
    listed = manifest.get("products", {})
    for name, entry in listed.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"product {name} is missing")
            continue
        if entry.get("size") is not None and size != entry["size"]:
            problems.append(f"product {name} was changed after the run")
    extras = [p.name for p in ours if p.name not in listed]
    if extras:
        more = f" and {len(extras) - 3} more" if len(extras) > 3 else ""
        problems.append(f"{', '.join(extras[:3])}{more} not written by the run that wrote "
                        f"{MANIFEST_NAME} (left from an earlier run)")
    raw_dir = Path(manifest.get("raw_dir", ""))
    if check_raw and manifest.get("raw_dir") and raw_dir.is_dir():
        changed, removed = [], []
        for rel, entry in manifest.get("inputs", {}).items():
            path = raw_dir / rel
            try:
                st = path.stat()
            except OSError:
                removed.append(rel)
                continue
            if st.st_size != entry.get("size"):
                changed.append(rel)
            elif st.st_mtime_ns != entry.get("mtime_ns"):
                if not verify_hashes or file_sha256(path) != entry.get("sha256"):
                    changed.append(rel)
        ignored = manifest.get("ignored", {})
        for rel, entry in ignored.items():  # left out then (e.g. refused): changed since?
            try:
                st = (raw_dir / rel).stat()
            except OSError:
                continue
            if (st.st_size, st.st_mtime_ns) != (entry.get("size"), entry.get("mtime_ns")):
                changed.append(rel)
        known = set(manifest.get("inputs", {})) | set(ignored) | \
            set(manifest.get("products_found", []))
        added = _new_raw_files(raw_dir, known, folder)
        for what, items in (("changed", changed), ("removed or renamed", removed),
                            ("added", added)):
            if items:
                more = f" and {len(items) - 3} more" if len(items) > 3 else ""
                problems.append(f"raw frame(s) {what} since the calibration: "
                                f"{', '.join(items[:3])}{more}")
    return problems, report


def check_folder(folder, *, check_raw=True, raw_dir=None):
    """The manifest of a trusted folder of products; else
    :class:`~glue_zeropoint.exceptions.StaleProductsError` saying why and what to do."""
    problems, report = folder_problems(folder, check_raw=check_raw)
    if not problems:
        return report
    if raw_dir is None and report is not None:
        raw_dir = report["manifest"].get("raw_dir")
    if raw_dir is None:
        raw_dir = "RAW_DIR"
    busy = problems[0].startswith("a calibration is writing")
    advice = ("wait for that run to finish" if busy else
              f"run 'glue-zeropoint calibrate \"{raw_dir}\" --out \"{folder}\"' again (products "
              "that are still current are reused, the rest redone)")
    raise StaleProductsError(f"{folder}: these calibrated products cannot be trusted: "
                             f"{'; '.join(problems)}; {advice}")


def check_product(path, header=None):
    """Refuse one product of ours that its folder's manifest does not vouch for.

    A file without the glue-zeropoint marker (a product from elsewhere, or a plain image) is
    not checked.

    Raises
    ------
    StaleProductsError
    """
    path = Path(path)
    folder = path.parent
    if header is None:
        try:
            header = fits.getheader(path)
        except Exception:  # noqa: BLE001 - the reader reports unreadable files
            return
    if not is_product_header(header):
        return
    report = check_folder(folder)
    if path.name not in report["manifest"]["products"]:
        raise StaleProductsError(f"{path}: not one of the products of the last calibration "
                                 f"written to {folder} (see its {MANIFEST_NAME}); calibrate "
                                 "again, or copy the whole folder with it")
