from zp_nights import fake_calibration, products_root, zp_products  # noqa: F401
