"""zeropoint subpackage."""
