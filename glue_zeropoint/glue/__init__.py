"""glue-core side of the plugin: data loader, links, viewer states, session savers (no Qt)."""


def register():
    """Register glue-core pieces (data factories, link helpers). Filled in by each feature."""
