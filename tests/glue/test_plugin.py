from glue_zeropoint import setup


def test_plugin_entry_point_is_installed():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="glue.plugins")}
    assert eps.get("glue_zeropoint") == "glue_zeropoint:setup"


def test_app_fixture_starts_offscreen(glue_app):
    assert glue_app.data_collection is not None
    setup()  # idempotent registration must not fail
