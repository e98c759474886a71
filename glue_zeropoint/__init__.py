"""glue-zeropoint: from a folder of raw CCD frames to a catalog-tied photometric zero point.

The science lives in the subpackages (``calibration``, ``photometry``, ``astrometry``,
``catalogs``, ``zeropoint``, ``simulate``), none of which import Qt or glue. ``glue`` holds the
glue-core side (loaders, links, viewer state, savers) and ``qt`` the widgets. :func:`setup` is the
glue plugin entry point: it only imports and registers.
"""

import logging

__version__ = "0.1.0"

__all__ = ["setup", "__version__"]


def setup():
    """Register the plugin's loaders, tools, viewers and links with glue.

    Called by glue through the ``glue.plugins`` entry point. glue only logs exceptions raised
    here, so the tests check the registries directly.
    """
    from .glue import register as _register_core

    _register_core()
    try:
        import glue_qt  # noqa: F401
        import qtpy.QtWidgets  # noqa: F401
    except ImportError as err:  # no glue-qt or no Qt binding: the glue-core part still works
        logging.getLogger(__name__).warning("glue-zeropoint: Qt tools not registered (%s)", err)
        return
    from .qt import register as _register_qt  # an error in our own Qt code must show

    _register_qt()
