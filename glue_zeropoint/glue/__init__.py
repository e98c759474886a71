"""glue-core side of the plugin: data loader, links, viewer states, session savers (no Qt).

Each feature module here has a ``register()`` that adds its pieces to glue's registries;
:func:`register` calls them in order. Modules not written yet are skipped.
"""

import importlib

FEATURES = ("loader", "links", "stars", "catalog_data", "wcs_update", "viewer_state", "session")


def register():
    for name in FEATURES:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue
            raise
        module.register()
