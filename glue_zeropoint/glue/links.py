"""Links between image datasets and the plugin's tables (stars, catalogs), glue-core only.

- :func:`sky_component_ids` finds which of an image's world component ids is RA and which Dec
  (glue orders world ids like numpy axes: for a ``RA---TAN, DEC--TAN`` WCS
  ``world_component_ids[1]`` is RA, but a WCS with swapped axes reverses that);
- :func:`link_pixels` / :func:`link_sky` add ``LinkSame`` links, never twice;
- :func:`links_between` lists the links joining two datasets;
- :func:`link_images` links the plugin's images (lights and masters with a celestial WCS) to
  each other with glue's ``WCSLink``, every pair once: what glue's own "Astronomy WCS"
  autolinker would suggest, so its link-suggestion dialog has nothing to ask about them.

Links are plain glue link objects in ``dc.external_links``, which glue saves in sessions.

When the images get linked
--------------------------
glue runs its autolinkers (the ``glue.config.autolinker`` registry) after every
``add_datasets`` (File > Open, drag and drop, ``glue RAW_DIR``, the plugin's menu entries) and
shows a dialog for the links each suggests. :func:`register` puts the plugin's autolinker
*first* in that registry; it links the plugin's images itself (:func:`link_images`) and
suggests nothing, so when glue's "Astronomy WCS" autolinker runs next it finds every pair of
our images already linked. Code that appends datasets without ``add_datasets`` (the demo's
:func:`~glue_zeropoint.qt.app.build_app`) calls :func:`link_images` itself.
"""

from glue.core.link_helpers import LinkSame

__all__ = ["sky_component_ids", "link_pixels", "link_sky", "links_between", "add_links_once",
           "link_images", "is_plugin_image", "AUTOLINKER_LABEL", "register"]

#: label of the plugin's autolinker in ``glue.config.autolinker``
AUTOLINKER_LABEL = "glue-zeropoint images"

_RA_TYPES = ("pos.eq.ra",)
_DEC_TYPES = ("pos.eq.dec",)


def sky_component_ids(image):
    """``(ra_id, dec_id)`` among ``image.world_component_ids``, or ``None`` if not equatorial."""
    coords = getattr(image, "coords", None)
    world_ids = list(getattr(image, "world_component_ids", []) or [])
    if coords is None or len(world_ids) != 2:
        return None
    try:
        types = list(coords.world_axis_physical_types)
    except AttributeError:
        return None
    # world_component_ids follow numpy order: id i is WCS world axis (ndim - 1 - i)
    by_type = {types[len(world_ids) - 1 - i]: cid for i, cid in enumerate(world_ids)}
    ra = next((by_type[t] for t in _RA_TYPES if t in by_type), None)
    dec = next((by_type[t] for t in _DEC_TYPES if t in by_type), None)
    if ra is None or dec is None:
        return None
    return ra, dec


def _same(link, cid1, cid2):
    if not isinstance(link, LinkSame):
        return False
    pair = (link._cid1, link._cid2)
    return pair == (cid1, cid2) or pair == (cid2, cid1)


def add_links_once(dc, pairs):
    """Add ``LinkSame(a, b)`` for each ``(a, b)`` unless the collection already has it."""
    existing = list(dc.external_links)
    new = []
    for a, b in pairs:
        if any(_same(link, a, b) for link in existing + new):
            continue
        new.append(LinkSame(a, b))
    if new:
        dc.add_link(new)
    return new


def link_pixels(dc, table, image, x="x", y="y"):
    """Link a table's pixel columns to an image's pixel axes (x -> axis 1, y -> axis 0)."""
    return add_links_once(dc, [(table.id[x], image.pixel_component_ids[1]),
                               (table.id[y], image.pixel_component_ids[0])])


def link_sky(dc, table, other, ra="ra", dec="dec"):
    """Link a table's ``ra``/``dec`` to an image's RA/Dec world ids or another table's columns.

    Returns the links added (empty if ``other`` is an image without an equatorial WCS).
    """
    ids = sky_component_ids(other)
    if ids is None:
        names = {cid.label for cid in other.components}
        if ra in names and dec in names and getattr(other, "ndim", 1) == 1:
            ids = other.id[ra], other.id[dec]
        else:
            return []
    return add_links_once(dc, [(table.id[ra], ids[0]), (table.id[dec], ids[1])])


def links_between(dc, data1, data2):
    """The external links in ``dc`` joining a component of ``data1`` to one of ``data2``."""
    result = []
    for link in dc.external_links:
        ends = {getattr(link, "data1", None), getattr(link, "data2", None)}
        if data1 in ends and data2 in ends:
            result.append(link)
    return result


def is_plugin_image(data):
    """True for an image the plugin loaded (a light or master) with a celestial WCS."""
    from astropy.wcs.wcsapi import BaseHighLevelWCS

    meta = getattr(data, "meta", None) or {}
    return (meta.get("zp_kind") in ("light", "master") and getattr(data, "ndim", 0) == 2
            and isinstance(getattr(data, "coords", None), BaseHighLevelWCS)
            and bool(getattr(data.coords, "has_celestial", False)))


def link_images(dc):
    """Link every pair of the plugin's images in ``dc`` with a ``WCSLink`` (once).

    Pairs are taken in collection order (glue's autolinker looks for ``(earlier, later)``);
    images whose WCSs cannot be linked are skipped. Returns the links added.
    """
    from glue.plugins.wcs_autolinking.wcs_autolinking import IncompatibleWCS, WCSLink

    images = [data for data in dc if is_plugin_image(data)]
    if len(images) < 2:
        return []
    existing = {(link.data1, link.data2) for link in dc.external_links
                if isinstance(link, WCSLink)}
    new = []
    for i, first in enumerate(images):
        for second in images[i + 1:]:
            if (first, second) in existing or (second, first) in existing:
                continue
            try:
                new.append(WCSLink(first, second))
            except IncompatibleWCS:
                continue
    if new:
        dc.add_link(new)
    return new


def _autolink_images(data_collection):
    """glue autolinker: link the plugin's images now, suggest nothing (see the module doc)."""
    link_images(data_collection)
    return []


def register():
    """Put the plugin's autolinker first in glue's registry (once); the other links are added
    by the stars and catalog features."""
    from glue.config import autolinker

    members = autolinker.members  # glue's own list: registration order is run order
    if not any(function is _autolink_images for _label, function in members):
        members.insert(0, (AUTOLINKER_LABEL, _autolink_images))
