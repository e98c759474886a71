"""glue-core side of the plugin: data loader, links, viewer states, session savers (no Qt).

Each feature module here has a ``register()`` that adds its pieces to glue's registries;
:func:`register` calls them in order.

Datasets the plugin makes (the contract other features build on; details in each module)
---------------------------------------------------------------------------------------
``loader``
    ``ccd_to_data(ccd, label) -> Data``: an image with components ``flux`` (e-),
    ``uncertainty`` (1-sigma e-), ``mask`` (uint8, 1 = bad); ``coords`` = the WCS; JSON-only
    ``meta``: ``zp_kind`` ('light'/'master'), ``zp_product`` (product path), ``zp_wcs_header``
    (WCS header string with SIP; glue's session keeps no SIP), ``zp_header`` (whole header),
    ``exptime``, ``filter``, ``band``, ``bunit``. ``data_to_ccd(data)`` and
    ``wcs_from_meta(data)`` go back. Data factories (priority 200) for a raw-night folder, a
    folder of products and a product file; products of a raw folder go to a user cache folder
    (``GLUE_ZEROPOINT_PRODUCTS_DIR`` overrides) and are reused, so restoring a session does
    not recalibrate.
``stars``
    One table per image, label ``'Stars: <image label>'``, ``meta['zp_kind'] = 'stars'``,
    ``meta['zp_stars_for'] = image.uuid``; components ``star_id, x, y, ra, dec, flux,
    flux_err, sky, mag_inst, mag_inst_err, flags``; ``stars_for``, ``add_stars``,
    ``remove_stars``, ``detect_stars``, ``update_sky``; updated in place (ids, links, subsets
    survive); linked to the image by pixels and sky.
``catalog_data``
    ``catalog_to_data(table, label)``: a catalog table, ``meta['zp_kind'] = 'catalog'``,
    ``meta['zp_catalog_for'] = image.uuid`` once ``link_catalog(dc, catalog, image)`` linked
    its ``ra``/``dec`` to the image's RA/Dec world ids and to the stars table.
``links``
    ``sky_component_ids(image) -> (ra_id, dec_id)``, ``link_pixels``, ``link_sky``,
    ``links_between``; ``link_images(dc)``: ``WCSLink`` between every pair of the plugin's
    images, run by the plugin's autolinker before glue's own, so glue's link-suggestion
    dialog never asks about them.
``session``
    glue session patches: SIP terms back into restored WCSs (and the loader's patch that
    tells its factories a session restore calls them).
"""

import importlib

FEATURES = ("loader", "links", "stars", "catalog_data", "wcs_update", "viewer_state", "session",
            "night", "archive")


def register():
    for name in FEATURES:
        importlib.import_module(f".{name}", __name__).register()
