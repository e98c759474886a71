import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "glue"))

from zp_nights import fake_calibration, products_root, zp_products  # noqa: E402, F401
