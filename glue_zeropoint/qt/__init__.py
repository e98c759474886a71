"""Qt side of the plugin: image-viewer tools, the zero-point viewer, menu actions.

Each feature module here has a ``register()`` that adds its pieces to glue's registries;
:func:`register` calls them in order. Modules not written yet are skipped.
"""

import importlib

FEATURES = ("tools", "catalog_action", "match_sky", "zeropoint_viewer", "menus")


def register():
    for name in FEATURES:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue
            raise
        module.register()
