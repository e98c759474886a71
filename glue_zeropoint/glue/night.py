"""The night in Glue (glue-core only): one row per frame, linked to the frames' stars.

``night_to_data(frames)`` makes the **night dataset** (label ``'Night'``, ``meta['zp_kind'] =
'night'``): one row per light frame with ``frame``, ``file``, ``band``, ``time`` (MJD),
``hours`` (from the first frame), ``airmass``, ``zp`` (the frame's own catalog fit),
``zp_err``, ``zp_night`` (the night's zero point: the ensemble tied to the catalog),
``zp_model`` (the band's extinction line at the frame's airmass), ``k_residual``,
``transparency``, ``rel_transparency``, ``sky_sb``, ``fwhm``, ``n_used``, ``cloudy``,
``used_in_fit``, ``excluded``, ``flags``, Sun and Moon altitudes. ``detections_to_data``
makes ``'Night stars'`` (every detection: ``frame``, ``star``, ``x``, ``y``, ``ra``, ``dec``,
``mag_night``...), joined to the night on ``frame`` (``join_on_key``), so that brushing
frames selects their stars and the reverse.

:func:`refit` fits the extinction lines again without the frames of a subset (or a boolean
mask: brushed frames, a time range) and updates the night dataset in place (components
``zp_model``, ``k_residual``, ``transparency``, ``cloudy``, ``used_in_fit``, ``excluded``;
``meta['zp_night_fits']`` the per-band fits, ``meta['zp_night_excluded']`` the files left
out), so every view of it follows. The exclusion is in ``meta`` (JSON), so it survives a saved
session; the data factory re-reads the folder and :func:`refit` re-applies it.

A data factory (priority 300) reads the folder the ``night`` command wrote (or its
``night.ecsv``); :func:`run_night` runs the whole night from a raw folder for a script (the
Glue menu's *Measure a night…* is :mod:`glue_zeropoint.qt.night_action`).
:func:`load_frame` puts one frame of the night into a data collection when it is not there
(its calibrated product under the night folder's ``calibrated/``, else its raw light) with its
stars from the night's detections (``'Night stars: <image>'``, linked to the image by pixels
and sky), which is what a click in the night viewer shows.

Both datasets carry identity world coordinates: glue's ``LoadLog`` (how a session saves data a
factory made) would otherwise add them on restore and shift every saved component.
"""

from pathlib import Path

import numpy as np

__all__ = ["night_to_data", "detections_to_data", "refit", "load_night_results", "run_night",
           "frame_image", "frame_file", "load_frame", "frame_stars_data", "register",
           "NIGHT_COLUMNS"]

NIGHT_COLUMNS = ("frame", "airmass", "zp", "zp_err", "zp_night", "zp_night_err",
                 "k_residual", "k_residual_err", "transparency", "rel_transparency", "sky_sb",
                 "sky_inst", "fwhm", "n_used", "n_stars", "sun_alt", "moon_alt", "moon_illum",
                 "exptime", "field")
TEXT_COLUMNS = ("file", "band", "status", "flags", "reason")
STAR_COLUMNS = ("frame", "star", "x", "y", "ra", "dec", "mag_inst", "mag_inst_err",
                "mag_night", "mag_night_err", "mag_cat", "airmass", "flags")


def _arr(table, name, dtype=float):
    if name not in table.colnames:
        return np.full(len(table), np.nan)
    return np.asarray(np.ma.filled(np.ma.asarray(table[name]), np.nan)
                      if dtype is float else table[name], dtype=dtype)


def _table_data(label):
    """An empty 1-d glue ``Data`` with identity world coordinates.

    The coordinates matter for a saved session: glue's ``LoadLog`` decides whether to add
    world coordinates on restore by counting the coordinate components of *all* the datasets
    one factory call returned against the first one's dimension; two 1-d datasets without
    coordinates (night + stars) count as "one with world coordinates", the restore adds them,
    every saved component index shifts and the restore fails. With coordinates on each
    dataset, the count is what it says.
    """
    from glue.core import Data
    from glue.core.coordinates import IdentityCoordinates

    data = Data(label=label)
    data.coords = IdentityCoordinates(n_dim=1)
    return data


def night_to_data(frames, label="Night", *, folder=None):
    """glue ``Data`` of the night's frames (module docstring)."""
    data = _table_data(label)
    for name in NIGHT_COLUMNS:
        data.add_component(_arr(frames, name), name)
    mjd = _arr(frames, "mjd")
    data.add_component(mjd, "time")
    t0 = np.nanmin(mjd) if np.isfinite(mjd).any() else 0.0
    data.add_component((mjd - t0) * 24.0, "hours")
    for name in TEXT_COLUMNS:
        data.add_component(np.asarray(frames[name]).astype(str), name)
    for name in ("cloudy", "used_in_fit"):
        data.add_component(_arr(frames, name, float), name)
    data.add_component(np.zeros(len(frames)), "excluded")
    data.add_component(np.full(len(frames), np.nan), "zp_model")
    data.meta.update({"zp_kind": "night", "zp_night_folder": None if folder is None
                      else str(folder), "zp_night_t0": float(t0), "zp_night_excluded": [],
                      "zp_night_fits": {}, "zp_night_k_sys": _k_sys_of(frames)})
    refit(data)
    return data


def detections_to_data(det, label="Night stars"):
    data = _table_data(label)
    for name in STAR_COLUMNS:
        data.add_component(_arr(det, name), name)
    data.add_component(np.asarray(det["band"]).astype(str), "band")
    data.meta["zp_kind"] = "night_stars"
    return data


def _k_sys_of(frames):
    """Each band's systematic bound on k (the common tail) as the night wrote it in
    ``night.ecsv``'s meta (``bands[b]['k_sys']``; NaN: not bounded); {} when not written."""
    meta = getattr(frames, "meta", None) or {}
    out = {}
    for band, d in (meta.get("bands") or {}).items():
        value = (d or {}).get("k_sys", 0.0) if isinstance(d, dict) else 0.0
        out[str(band)] = float("nan") if value is None else float(value)
    return out


def refit(night, exclude=None):
    """Fit the night's extinction lines again without ``exclude`` and update ``night``.

    ``exclude``: a glue subset (of the night or of a dataset joined to it), a boolean mask
    over the frames, a list of file names, or None (keep ``meta['zp_night_excluded']``).
    Returns the per-band fit dictionaries.
    """
    from ..exceptions import ZeropointError
    from ..night.extinction import fit_extinction

    files = np.asarray(night["file"]).astype(str)
    if exclude is None:
        mask = np.isin(files, night.meta.get("zp_night_excluded") or [])
    elif hasattr(exclude, "to_mask"):
        mask = np.asarray(exclude.to_mask(), bool)
    elif isinstance(exclude, (list, tuple)) and all(isinstance(v, str) for v in exclude):
        mask = np.isin(files, list(exclude))
    else:
        mask = np.asarray(exclude, bool)
    bands = np.asarray(night["band"]).astype(str)
    x = np.asarray(night["airmass"], float)
    y = np.asarray(night["zp_night"], float)
    e = np.asarray(night["zp_night_err"], float)
    model = np.full(len(x), np.nan)
    resid = np.full(len(x), np.nan)
    transp = np.full(len(x), np.nan)
    cloudy = np.zeros(len(x))
    used = np.zeros(len(x))
    fits = {}
    for band in np.unique(bands):
        m = np.flatnonzero(bands == band)
        try:
            f = fit_extinction(x[m], y[m], e[m], band=band, use=~mask[m])
        except ZeropointError as err:
            fits[band] = {"band": band, "error": str(err)}
            continue
        f.k_sys = float((night.meta.get("zp_night_k_sys") or {}).get(str(band), 0.0))
        fits[band] = f.to_dict()
        model[m] = f.model(x[m])
        resid[m] = f.residual
        transp[m] = f.transparency
        cloudy[m] = f.cloudy
        used[m] = f.used
    values = {"zp_model": model, "k_residual": resid, "transparency": transp,
              "cloudy": cloudy, "used_in_fit": used, "excluded": mask.astype(float)}
    night.update_components({night.id[k]: v for k, v in values.items()})
    night.meta["zp_night_excluded"] = files[mask].tolist()
    night.meta["zp_night_fits"] = {b: {k: (float(v) if isinstance(v, (np.floating, float))
                                           else v) for k, v in d.items()
                                       if not isinstance(v, (list, dict)) or k == "airmass_range"}
                                   for b, d in fits.items()}
    return fits


def load_night_results(path):
    """``[night, stars]`` glue datasets from the folder the ``night`` command wrote."""
    from astropy.table import Table
    from glue.core.data_factories import tables as _  # noqa: F401 (glue's readers loaded)

    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    frames = Table.read(folder / "night.ecsv")
    night = night_to_data(frames, folder=folder)
    out = [night]
    det_path = folder / "night_detections.ecsv"
    if det_path.exists():
        stars = detections_to_data(Table.read(det_path))
        out.append(stars)
        night.join_on_key(stars, "frame", "frame")
    return out


def run_night(raw_dir, catalog=None, out=None, **kwargs):
    """Run :func:`glue_zeropoint.night.run.measure_night` on a raw folder, write its files
    into ``out`` and return ``[night, stars]`` datasets."""
    from ..night.outputs import write_night
    from ..night.run import measure_night

    out = Path(out) if out is not None else Path(raw_dir).with_name(Path(raw_dir).name + "_night")
    result = measure_night(raw_dir, catalog, out=out, **kwargs)
    write_night(result, out)
    return load_night_results(out)


# -- one frame of the night in the session --------------------------------------------------


def _provenance(night):
    """The night's provenance (raw and calibrated folders) from its ``night.json``."""
    import json

    folder = night.meta.get("zp_night_folder")
    if not folder or not (Path(folder) / "night.json").is_file():
        return {}
    try:
        return json.loads((Path(folder) / "night.json").read_text()).get("provenance") or {}
    except (OSError, ValueError):
        return {}


def frame_image(dc, file_name, channel=None):
    """The light image of ``file_name`` already in ``dc`` (by label or product name), or None;
    with ``channel`` (the frame was measured in that colour channel) never its mosaic."""
    from .loader import header_from_meta

    stem = Path(file_name).stem
    names = {stem, f"{stem}_cal", Path(file_name).name}
    for data in dc:
        if data.meta.get("zp_kind") != "light":
            continue
        if channel and _is_mosaic(header_from_meta(data)):
            continue
        product = data.meta.get("zp_product") or ""
        if stem and (data.label in names or Path(product).stem in names
                     or Path(product).name in names):
            return data
    return None


def frame_file(night, file_name):
    """The file to show for a frame: its calibrated product (``<stem>_cal.fits`` under the
    night folder's ``calibrated/`` or the calibrated folder of its provenance), else the raw
    light (the raw folder of the provenance). Raises InputError when neither is found."""
    from ..exceptions import InputError

    stem = Path(file_name).stem
    folder = night.meta.get("zp_night_folder")
    prov = _provenance(night)
    candidates = []
    for base in (None if not folder else Path(folder) / "calibrated",
                 prov.get("calibrated_dir")):
        if base:
            candidates.append(Path(base) / f"{stem}_cal.fits")
    if prov.get("raw_dir"):
        candidates.append(Path(prov["raw_dir"]) / file_name)
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates) or "no folder is known for this night"
    raise InputError(f"{file_name}: neither its calibrated product nor its raw file was found "
                     f"(tried {tried}); load the frame yourself (File > Open)")


def _load_image(path, file_name, channel=None):
    """A glue image dataset of a calibrated product (through its data factory, so a saved
    session re-reads it) or of a raw light (ADU, as it is; a colour camera's mosaic as the
    ``channel`` the night measured, so that its stars fall on their stars)."""
    from glue.core.data_factories import load_data

    from ..calibration.night import colour_channel
    from .loader import calibrated_product_factory, ccd_to_data, is_product_file

    if is_product_file(path):
        if channel:  # a mosaic product measured in a channel: show that channel
            from ..calibration import read_product

            ccd = read_product(path)
            if _is_mosaic(ccd.meta):
                ccd = colour_channel(ccd, channel, Path(file_name).name)
                return ccd_to_data(ccd, Path(file_name).stem, product=path)
        datas = load_data(str(path), factory=calibrated_product_factory)
        datas = datas if isinstance(datas, list) else [datas]
        lights = [d for d in datas if d.meta.get("zp_kind") == "light"]
        if lights:
            return lights[0]
    from astropy.nddata import CCDData

    from ..night.run import _read_raw

    data, header = _read_raw(path)
    ccd = CCDData(data, unit="adu", meta=header, wcs=_celestial_wcs(header))
    if channel:
        ccd = colour_channel(ccd, channel, Path(file_name).name)
    return ccd_to_data(ccd, Path(file_name).stem, product=path)


def _is_mosaic(meta):
    from ..calibration.cfa import cfa_pattern

    return cfa_pattern(meta)[0] is not None


def _channel_of(night, row):
    """The colour channel frame ``row`` was measured in (its ``colour_<C>`` flag), or None."""
    if "flags" not in [c.label for c in night.components]:
        return None
    for f in str(np.asarray(night["flags"])[row]).split(","):
        if f.startswith("colour_"):
            return f[7:]
    return None


def _celestial_wcs(header):
    from ..night.run import _wcs_of

    return _wcs_of(header)


def frame_stars_data(stars, frame, image):
    """The night's detections of one frame as a small dataset for ``image``:
    ``'Night stars: <image label>'``, ``meta['zp_night_stars_for'] = image.uuid``."""
    rows = np.asarray(stars["frame"]) == frame
    data = _table_data(f"Night stars: {image.label}")
    for name in ("star", "x", "y", "ra", "dec", "mag_inst", "mag_night", "mag_night_err",
                 "mag_cat", "flags"):
        if name in [c.label for c in stars.components]:
            data.add_component(np.asarray(stars[name], float)[rows], name)
    data.meta.update({"zp_kind": "night_frame_stars", "zp_night_stars_for": image.uuid,
                      "zp_image_label": image.label})
    return data


def load_frame(dc, night, row):
    """Make sure frame ``row`` of ``night`` is in ``dc`` with its stars.

    Returns ``(image, stars)``: the frame's image dataset (already loaded, else read from
    :func:`frame_file` and added) and its stars from the night's detections (added once,
    linked to the image by pixels and, with a WCS, by sky; ``None`` when the night has no
    stars dataset). Raises InputError when the frame's file is nowhere to be found.
    """
    from .links import link_pixels, link_sky

    file_name = str(night["file"][row])
    channel = _channel_of(night, row)
    image = frame_image(dc, file_name, channel)
    if image is None:
        image = _load_image(frame_file(night, file_name), file_name, channel=channel)
        if image not in dc:
            dc.append(image)
    frame = int(np.asarray(night["frame"])[row])
    stars = next((d for d in dc if d.meta.get("zp_night_stars_for") == image.uuid), None)
    night_stars = next((d for d in dc if d.meta.get("zp_kind") == "night_stars"), None)
    if stars is None and night_stars is not None:
        stars = frame_stars_data(night_stars, frame, image)
        dc.append(stars)
        link_pixels(dc, stars, image)
        if image.coords is not None:
            link_sky(dc, stars, image)
    return image, stars


def _identify(path, **kwargs):
    p = Path(path)
    return (p.is_dir() and (p / "night.ecsv").is_file()) or p.name == "night.ecsv"


def night_factory(path, **kwargs):
    """glue data factory: the ``night`` command's folder (or night.ecsv) -> night + stars."""
    return load_night_results(path)


def register():
    from .loader import add_data_factory

    add_data_factory("Night results (glue-zeropoint)", _identify, 300, night_factory)
