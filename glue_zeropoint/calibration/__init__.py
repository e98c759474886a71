"""calibration subpackage."""
