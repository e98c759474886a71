"""The archive in Glue (glue-core only): every frame of every night, and one row per night.

``load_archive(store)`` reads a store written by ``glue-zeropoint archive`` and returns two
datasets:

- ``'Archive frames'`` (``meta['zp_kind'] = 'archive_frames'``): one row per frame with
  ``date`` (MJD of mid-exposure), ``night_id``, ``airmass``, ``zp``, ``zp_night``,
  ``k_residual``, ``sky_sb``, ``fwhm``, ``n_used``, Moon altitude, ``cloudy`` and the text
  columns ``night``, ``night_date``, ``file``, ``band``, ``status``, ``flags``;
- ``'Archive nights'`` (``meta['zp_kind'] = 'archive_nights'``): one row per night and band
  with ``night_id``, ``date`` (MJD of the night's evening), ``zp_median``, ``zp0``, ``k``,
  ``sky_sb_median``, ``moon_free``, ``n_frames``, ``status``.

The two are joined on ``night_id`` (``join_on_key``): brushing a night in a plot of
``zp_median`` vs ``date`` selects its frames, and the reverse. ``meta['zp_archive_nights']``
maps ``night_id`` to the night's raw folder name, so a tool can open that night (the
``night`` command's folder) from a selection: :func:`night_from_archive` makes the *Night*
dataset of one night from the archive (the one the ``night`` command's folder gives, with its
refit on brushing), and :func:`open_selected_nights` adds one for every night a subset of
either archive dataset selects (e.g. an odd night brushed in a plot of ZP vs date). A data
factory (priority 300) recognises a
store by its ``archive.json``.
"""

from pathlib import Path

import numpy as np

__all__ = ["load_archive", "night_from_archive", "open_selected_nights", "register",
           "FRAME_COLUMNS", "NIGHT_COLUMNS"]

FRAME_COLUMNS = ("frame", "airmass", "zp", "zp_err", "zp_night", "zp_night_err", "k_residual",
                 "transparency", "sky_sb", "sky_sb_err", "fwhm", "n_used", "n_stars",
                 "exptime", "moon_alt", "moon_illum", "sun_alt", "site_lat", "site_lon")
FRAME_TEXT = ("night", "night_date", "file", "band", "status", "flags", "reason",
              "settings_hash")
NIGHT_COLUMNS = ("zp_median", "zp0", "zp0_err", "k", "k_err", "sky_sb_median", "fwhm_median",
                 "n_frames", "n_failed", "n_cloudy", "moon_illum")
NIGHT_TEXT = ("night", "night_date", "band", "status", "reason", "verdict")


def _date_mjd(dates):
    from ..obstime import parse_date

    out = np.full(len(dates), np.nan)
    for k, d in enumerate(dates):
        if d:
            out[k] = parse_date(d).mjd
    return out


def load_archive(store):
    """``[frames, nights]`` glue datasets of an archive store (module docstring)."""
    from glue.core import Data

    from ..archive import read_archive, read_summaries
    from ..archive.store import Store
    from ..exceptions import InputError

    if not Store(store).is_store():
        raise InputError(f"{store}: not an archive store (no archive.json)")
    fr, ni = read_archive(store), read_summaries(store)
    if fr.empty:
        raise InputError(f"{store}: the archive holds no night yet")
    names = sorted(set(ni["night"]) | set(fr["night"]))
    ids = {n: k for k, n in enumerate(names)}
    frames = Data(label="Archive frames")
    frames.add_component(fr["mjd"].to_numpy(float), "date")
    frames.add_component(np.array([ids[n] for n in fr["night"]], float), "night_id")
    for c in FRAME_COLUMNS:
        frames.add_component(fr[c].to_numpy(float), c)
    frames.add_component(fr["cloudy"].to_numpy(float), "cloudy")
    for c in FRAME_TEXT:
        frames.add_component(fr[c].astype(str).to_numpy(), c)
    nights = Data(label="Archive nights")
    nights.add_component(_date_mjd(ni["night_date"].tolist()), "date")
    nights.add_component(np.array([ids[n] for n in ni["night"]], float), "night_id")
    for c in NIGHT_COLUMNS:
        nights.add_component(ni[c].to_numpy(float), c)
    nights.add_component(ni["moon_free"].to_numpy(float), "moon_free")
    for c in NIGHT_TEXT:
        nights.add_component(ni[c].astype(str).to_numpy(), c)
    folder = str(Path(store).resolve())
    for d, kind in ((frames, "archive_frames"), (nights, "archive_nights")):
        d.meta.update({"zp_kind": kind, "zp_archive": folder,
                       "zp_archive_nights": {str(k): n for n, k in ids.items()}})
    frames.join_on_key(nights, "night_id", "night_id")
    return [frames, nights]


def night_from_archive(store, night):
    """The *Night* dataset (see :mod:`.night`) of one night of an archive store."""
    import pyarrow.parquet as pq
    from astropy.table import Table

    from ..archive.store import Store
    from ..exceptions import InputError
    from .night import night_to_data

    part = Store(store).night_part(night)
    if not part.is_file():
        raise InputError(f"{store}: no night {night!r} in the archive")
    frames = Table.from_pandas(pq.read_table(part).to_pandas())
    data = night_to_data(frames, label=f"Night {night}")
    data.meta["zp_archive"] = str(Path(store).resolve())
    data.meta["zp_archive_night"] = night
    return data


def open_selected_nights(data_collection, subset):
    """Add to ``data_collection`` the *Night* dataset of every night ``subset`` selects (a
    subset of the archive's frames or nights dataset); returns the datasets added (a night
    already open is not added again)."""
    data = subset.data
    ids = np.unique(np.asarray(data["night_id"])[np.asarray(subset.to_mask(), bool)])
    names = data.meta["zp_archive_nights"]
    open_nights = {d.meta.get("zp_archive_night") for d in data_collection}
    added = []
    for i in ids:
        name = names[str(int(i))]
        if name in open_nights:
            continue
        night = night_from_archive(data.meta["zp_archive"], name)
        data_collection.append(night)
        added.append(night)
    return added


def _identify(path, **kwargs):
    p = Path(path)
    return p.is_dir() and (p / "archive.json").is_file()


def archive_factory(path, **kwargs):
    """glue data factory: an archive store folder -> frames + nights."""
    return load_archive(path)


def register():
    from .loader import add_data_factory

    add_data_factory("Archive (glue-zeropoint)", _identify, 300, archive_factory)
