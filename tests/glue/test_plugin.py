"""The plugin registers through glue's real entry-point machinery (glue only logs errors in
setup(), so the registries are checked directly)."""


def test_plugin_entry_point_is_installed():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="glue.plugins")}
    assert eps.get("glue_zeropoint") == "glue_zeropoint:setup"


def test_load_plugins_registers_every_piece(glue_app):
    from glue.config import data_factory, settings, viewer_tool
    from glue_qt.config import qt_client
    from glue_qt.viewers.image import ImageViewer

    from glue_zeropoint import setup

    factories = {f.function.__name__: f.priority for f in data_factory.members}
    assert factories.get("raw_night_factory", 0) > 100
    assert factories.get("calibrated_product_factory", 0) > 100
    tools = set(viewer_tool.members)
    assert {"zp:star", "zp:detect", "zp:catalog", "zp:match_sky"} <= tools
    assert {"zp:star", "zp:detect", "zp:catalog", "zp:match_sky"} <= set(ImageViewer.tools)
    assert any("Zero point" in v.LABEL for v in qt_client.members)
    assert settings.ZEROPOINT_CATALOG_OFFLINE is False
    setup()  # running it again (glue may) must not fail or duplicate the tools
    assert sum(t == "zp:star" for t in ImageViewer.tools) == 1


def test_night_factory_and_viewer_registered(glue_app):
    """Issue 13: the night results factory and the night viewer are registered by setup()."""
    from glue.config import data_factory
    from glue_qt.config import qt_client

    factories = {f.function.__name__: f.priority for f in data_factory.members}
    assert factories.get("night_factory") == 300
    assert any(v.LABEL.startswith("Night") for v in qt_client.members)
