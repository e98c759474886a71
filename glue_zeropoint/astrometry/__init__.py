"""astrometry subpackage."""
