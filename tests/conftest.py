"""Test-wide settings: offscreen Qt, no astropy downloads, no network beyond 127.0.0.1."""

import os
import socket

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from astropy.utils import iers  # noqa: E402
from astropy.utils.data import conf as data_conf  # noqa: E402

data_conf.allow_internet = False
iers.conf.auto_download = False
iers.conf.auto_max_age = None

_real_connect = socket.socket.connect


def _loopback_only_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
        if not (host.startswith("127.") or host in ("localhost", "::1")):
            raise OSError(f"tests may only connect to 127.0.0.1, not {host!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_internet():
    """Refuse any socket connection that is not to the loopback interface."""
    socket.socket.connect = _loopback_only_connect
    yield
    socket.socket.connect = _real_connect


@pytest.fixture
def output_dir(tmp_path):
    """A fresh output folder whose name has a space and non-ASCII characters."""
    path = tmp_path / "out été"
    path.mkdir()
    return path
