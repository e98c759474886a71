"""Attach a new WCS to a glue image dataset so that its world coordinates and links follow.

glue's ``Data.coords`` setter removes the world components and creates new ones, which breaks
every link made to the old ones (e.g. ``LinkSame(catalog.id['ra'], image.world_component_ids[1])``).
When the image already has celestial world components, :func:`attach_wcs` keeps their
ComponentIDs and only swaps the transformation behind them (and the pixel<->world links), so
existing links, subsets and viewers keep working and move with the new WCS. The WCS header
(with SIP) is also kept as a string in ``data.meta['zp_wcs_header']`` (the key the loader and the
session code use: glue drops a ``fits.Header`` and saves a WCS without its SIP terms), and the
WCS keywords of the loader's ``data.meta['zp_header']`` are replaced.
"""

import logging
import warnings

from glue.config import settings
from glue.core.data_collection import DataCollection
from glue.core.message import NumericalDataChangedMessage

from ..exceptions import InputError
from .loader import WCS_META_KEY, wcs_from_meta

__all__ = ["attach_wcs", "wcs_from_meta", "register", "META_KEY"]

log = logging.getLogger(__name__)

#: ``data.meta`` key holding the attached WCS as a FITS header string (SIP included).
META_KEY = WCS_META_KEY


def _find_collection(data):
    hub = getattr(data, "hub", None)
    if hub is None:
        return None
    for subscriber in list(getattr(hub, "_subscriptions", {})):
        if isinstance(subscriber, DataCollection) and data in subscriber:
            return subscriber
    return None


def _same_axes(old, new):
    try:
        return (getattr(old, "has_celestial", False) and old.naxis == 2
                and list(old.wcs.ctype[i][:4] for i in range(2))
                == list(new.wcs.ctype[i][:4] for i in range(2)))
    except AttributeError:
        return False


def attach_wcs(data, wcs, *, data_collection=None):
    """Replace the coordinates of a glue image with ``wcs``.

    Parameters
    ----------
    data : `glue.core.data.Data`
        A 2-D image dataset.
    wcs : `~astropy.wcs.WCS`
        Its new celestial WCS (e.g. ``Solution.wcs``); ``pixel_shape``, when set, must match.
    data_collection : `glue.core.DataCollection`, optional
        The collection holding ``data`` (found through the hub when not given), whose link
        manager is refreshed so linked datasets see the new sky positions.

    Returns
    -------
    data : the same Data

    Raises
    ------
    InputError
        Not a 2-D dataset, not a celestial WCS, or a WCS made for another image size.
    """
    if getattr(data, "ndim", None) != 2:
        raise InputError(f"{getattr(data, 'label', data)!r}: a WCS can only be attached to a "
                         "2-D image dataset")
    if not getattr(wcs, "has_celestial", False) or wcs.naxis != 2:
        raise InputError("attach_wcs needs a 2-D celestial astropy WCS (RA/Dec axes)")
    ny, nx = data.shape
    if wcs.pixel_shape is not None and tuple(wcs.pixel_shape) != (nx, ny):
        raise InputError(f"{data.label}: the WCS is for a {wcs.pixel_shape[0]}x"
                         f"{wcs.pixel_shape[1]} image but the dataset is {nx}x{ny}")
    old = data.coords
    if _same_axes(old, wcs) and len(data.world_component_ids) == 2:
        # keep the world ComponentIDs (and every link to them); swap the transform
        data._coords = wcs
        if settings.AUTO_COMPUTE_COORDS_LINKS:
            data._set_up_coordinate_component_links(data.ndim)
    else:
        data.coords = wcs  # glue creates the world components
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data.meta[META_KEY] = wcs.to_header_string(relax=True)
        if isinstance(data.meta.get("zp_header"), str):  # the image header kept by the loader
            from astropy.io import fits

            from ..astrometry.header import strip_wcs_keywords

            header = strip_wcs_keywords(fits.Header.fromstring(data.meta["zp_header"]))
            header.update(wcs.to_header(relax=True))
            data.meta["zp_header"] = header.tostring()
    dc = data_collection if data_collection is not None else _find_collection(data)
    if dc is not None:
        dc._link_manager.update_externally_derivable_components()
    if data.hub is not None:
        data.hub.broadcast(NumericalDataChangedMessage(data))
    log.info("%s: new WCS attached", data.label)
    return data


def register():
    """Nothing to register: :func:`attach_wcs` is called by the match-to-sky tool and solve."""
