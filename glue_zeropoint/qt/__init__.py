"""Qt side of the plugin: image-viewer tools, the zero-point viewer, menu actions.

Each feature module here has a ``register()`` that adds its pieces to glue's registries;
:func:`register` calls them in order.
"""

import importlib

FEATURES = ("tools", "catalog_action", "match_sky", "zeropoint_viewer", "menus", "night_viewer")


def register():
    for name in FEATURES:
        importlib.import_module(f".{name}", __name__).register()
