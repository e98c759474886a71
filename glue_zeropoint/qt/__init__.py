"""Qt side of the plugin: image-viewer tools, the zero-point viewer, menu actions, the
archive's open-night tool, and work-arounds for glue-qt (``compat``: a valid ``dataChanged`` range in its table model).

Each feature module here has a ``register()`` that adds its pieces to glue's registries;
:func:`register` calls them in order.
"""

import importlib

FEATURES = ("compat", "tools", "catalog_action", "match_sky", "zeropoint_viewer", "menus",
            "night_viewer", "night_action", "archive_tool")


def register():
    for name in FEATURES:
        importlib.import_module(f".{name}", __name__).register()
