import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "glue"))

import pytest  # noqa: E402
from zp_nights import (  # noqa: E402, F401
    fake_calibration,
    products_root,
    write_products,  # noqa: E402
    zp_products,
)


@pytest.fixture
def image_viewer(glue_app, qtbot, tmp_path):
    """(viewer, light, truth): a simulated calibrated night loaded in the app and its first
    light shown in an image viewer of a fixed size, drawn once."""
    from glue_qt.viewers.image import ImageViewer

    folder, truths = write_products(tmp_path / "night")
    light = glue_app.load_data(str(folder))[0]
    glue_app.resize(1300, 850)
    viewer = glue_app.new_data_viewer(ImageViewer, data=light)
    viewer.viewer_size = (850, 650)
    viewer.position = (0, 0)
    glue_app.show()
    qtbot.waitExposed(glue_app)
    viewer.figure.canvas.draw()
    return viewer, light, truths[0]
