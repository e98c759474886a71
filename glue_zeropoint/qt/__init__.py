"""Qt side of the plugin: image-viewer tools, the zero-point viewer widget."""


def register():
    """Register Qt pieces (viewers, tools, menu actions). Filled in by each feature."""
