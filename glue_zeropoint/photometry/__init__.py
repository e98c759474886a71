"""photometry subpackage."""
