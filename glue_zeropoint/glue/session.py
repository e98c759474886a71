"""What glue-zeropoint adds to glue's session save/restore (glue-core only, no Qt).

glue saves and restores most of the plugin's state by itself:

- image datasets loaded through the plugin's data factories are restored *by reference* (glue
  re-runs the factory on the product path; the loader reuses the calibrated products, it does
  not recalibrate), or *with their data* when the session is saved with
  ``include_data=True`` (then no file is needed);
- the stars and catalog datasets are plain glue tables, saved with their values (no catalog
  query on restore); links, subset groups and their ROI/range states are glue objects;
- the zero-point viewer's choices are echo callback properties of
  :class:`~glue_zeropoint.glue.viewer_state.ZeroPointViewerState`, saved by glue's
  ``State.__gluestate__``; the state adds its result as ``ZeroPoint.to_json()`` text (and
  on restore refits from the restored data and compares; see ``saved_result``).

What glue loses, and how it comes back
--------------------------------------
**SIP distortion.** glue saves ``Data.coords`` (an astropy WCS) with
``wcs.to_header_string()``, whose default ``relax=False`` drops the SIP terms, so a restored
image would have a plain TAN WCS (stars off by up to the distortion, sky links wrong). The
loader keeps the full header in ``data.meta['zp_wcs_header']`` (a string, so glue saves it with
the dataset). On load, :func:`restore_sip_from_meta` -- registered as a glue
``session_patch`` (the public hook glue calls on the raw session record before anything is
rebuilt) -- puts that full header into the record of the dataset's WCS, so glue's own WCS loader
builds the SIP WCS. This keeps the ``.glu`` file in glue's ordinary format (a glue without the
plugin still opens it, with a TAN-only WCS) instead of registering a new, plugin-only
versioned ``@saver(WCS)`` that would change how every WCS in every session is written.
The patch only applies when the saved linear WCS agrees with the meta header (CRVAL, CRPIX and
the CD matrix), so a WCS updated in the session without updating the meta is left alone (and
logged).

**Whether a factory call is a restore.** glue re-runs a factory with the keyword arguments
it saved; the loader's own session patch
(:func:`glue_zeropoint.glue.loader.mark_session_loads`) adds ``zp_restoring_session=True`` to
those of the plugin's factories, so a failed restore raises (glue reports it) instead of
returning no data, which glue cannot index.

**Other meta.** Entries of ``Data.meta`` that glue cannot serialise (a ``fits.Header``) are
dropped by glue; the plugin's datasets keep only JSON values there (the loader stores the
header as text in ``meta['zp_header']``).
"""

import logging
import warnings

import numpy as np

from .loader import WCS_META_KEY

__all__ = ["restore_sip_from_meta", "meta_value", "register", "WCS_META_KEY"]

log = logging.getLogger(__name__)

_STR = "st__"


def meta_value(record, key):
    """The value of ``meta[key]`` in a saved Data record (a glue session dict), or ``None``.

    glue saves ``meta`` as an ``OrderedDict`` record ``{'contents': {'st__key': value}}``;
    strings are stored inline with an ``'st__'`` prefix.
    """
    meta = record.get("meta")
    if not isinstance(meta, dict):
        return None
    contents = meta.get("contents")
    if not isinstance(contents, dict):
        return None
    value = contents.get(_STR + key)
    if isinstance(value, str) and value.startswith(_STR):
        return value[len(_STR):]
    return None


def _wcs_from_header_text(text):
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(fits.Header.fromstring(text))


def _same_linear_wcs(saved_text, full_text):
    """True if two WCS headers share CRVAL, CRPIX and the pixel scale matrix."""
    try:
        saved = _wcs_from_header_text(saved_text)
        full = _wcs_from_header_text(full_text)
    except (ValueError, KeyError, MemoryError) as err:
        log.warning("session: unreadable WCS header (%s); SIP not restored", err)
        return False
    return (np.allclose(saved.wcs.crval, full.wcs.crval, rtol=0, atol=1e-9)
            and np.allclose(saved.wcs.crpix, full.wcs.crpix, rtol=0, atol=1e-6)
            and np.allclose(saved.pixel_scale_matrix, full.pixel_scale_matrix, rtol=1e-9,
                            atol=1e-14))


def restore_sip_from_meta(record):
    """glue ``session_patch``: give image datasets back their full (SIP) WCS.

    For every saved Data whose ``meta['zp_wcs_header']`` holds a header, replace the header of
    its saved coords (a WCS record) by that full header, when the two agree on the linear
    part. Modifies ``record`` (the whole session dict) in place; returns the labels patched.
    """
    patched = []
    for name, item in record.items():
        if not isinstance(item, dict) or "coords" not in item:
            continue
        full = meta_value(item, WCS_META_KEY)
        if not full:
            continue
        coords = record.get(item["coords"]) if isinstance(item["coords"], str) else None
        if not isinstance(coords, dict) or not str(coords.get("_type", "")).startswith(
                "astropy.wcs"):
            continue
        saved = coords.get("header", "")
        if saved == full:
            continue
        if not _same_linear_wcs(saved, full):
            log.warning("session: the WCS of %s differs from meta['%s'] (updated in the "
                        "session?); its SIP terms are not restored", name, WCS_META_KEY)
            continue
        coords["header"] = full
        patched.append(name)
    if patched:
        log.info("session: SIP distortion restored for %s", ", ".join(patched))
    return patched


def _patch(record):
    restore_sip_from_meta(record)


def register():
    """Register the SIP restore as a glue session patch (once)."""
    from glue.config import session_patch

    if not any(member.function is _patch for member in session_patch.members):
        session_patch.add(_patch)
