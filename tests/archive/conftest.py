"""Fixtures of the archive tests (defined in :mod:`archive_helpers`)."""

from archive_helpers import external, nights, serial_store  # noqa: F401 - pytest fixtures
