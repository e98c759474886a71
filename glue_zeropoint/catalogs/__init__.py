"""catalogs subpackage."""
