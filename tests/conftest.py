"""Test-wide settings: offscreen Qt, no astropy downloads, no network beyond 127.0.0.1."""

import os
import socket

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")
# glue-qt: decorated actions re-raise instead of opening an error message box
os.environ.setdefault("GLUE_TESTING", "True")

import pytest  # noqa: E402
from astropy.utils import iers  # noqa: E402
from astropy.utils.data import conf as data_conf  # noqa: E402

data_conf.allow_internet = False
iers.conf.auto_download = False
iers.conf.auto_max_age = None

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkAccessError(BaseException):
    """A test tried to reach a host other than the loopback interface.

    A ``BaseException`` on purpose: requests, urllib and our catalog layer catch ``OSError``
    (and ``Exception``) and would answer from cache with a warning, so a test reaching a
    real host could pass. This one propagates and fails the test.
    """


#: every refused attempt, so a test is failed even when the code under test caught the error
#: (a worker thread reports any exception as a failed task)
NETWORK_ATTEMPTS = []


def _is_loopback(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return host is None or (isinstance(host, str)
                            and (host.startswith("127.") or host in ("localhost", "::1")))


def _check_address(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        if not _is_loopback(address[0]):
            NETWORK_ATTEMPTS.append(f"connect {address[0]!r}")
            raise NetworkAccessError(f"tests may only connect to 127.0.0.1, not {address[0]!r}")


def _loopback_only_connect(self, address):
    _check_address(self, address)
    return _real_connect(self, address)


def _loopback_only_connect_ex(self, address):
    _check_address(self, address)
    return _real_connect_ex(self, address)


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host):
        NETWORK_ATTEMPTS.append(f"look up {host!r}")
        raise NetworkAccessError(f"tests may only look up loopback names, not {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _iers_cache_of_the_session(tmp_path_factory):
    """astropy's parsed Earth-orientation table is cached in a folder of the test session
    (night.geometry.load_earth_orientation), not in the user's cache; the CLI's subprocesses
    inherit it."""
    old = os.environ.get("GLUE_ZEROPOINT_IERS_CACHE_DIR")
    os.environ["GLUE_ZEROPOINT_IERS_CACHE_DIR"] = str(tmp_path_factory.mktemp("iers-cache"))
    yield
    if old is None:
        os.environ.pop("GLUE_ZEROPOINT_IERS_CACHE_DIR", None)
    else:
        os.environ["GLUE_ZEROPOINT_IERS_CACHE_DIR"] = old


@pytest.fixture(autouse=True, scope="session")
def _no_internet():
    """Fail any test that connects to, or looks up, a host that is not the loopback interface."""
    socket.socket.connect = _loopback_only_connect
    socket.socket.connect_ex = _loopback_only_connect_ex
    socket.getaddrinfo = _loopback_only_getaddrinfo
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(autouse=True)
def _no_network_attempts():
    """Fail a test that tried to reach a real host, even if the error was caught."""
    NETWORK_ATTEMPTS.clear()
    yield
    attempts, NETWORK_ATTEMPTS[:] = list(NETWORK_ATTEMPTS), []
    if attempts:
        pytest.fail(f"the test tried to reach the network: {', '.join(attempts)}")


@pytest.fixture
def network_attempts():
    """The refused attempts of this test (a test of the guard itself clears them)."""
    yield NETWORK_ATTEMPTS
    NETWORK_ATTEMPTS.clear()


@pytest.fixture
def output_dir(tmp_path):
    """A fresh output folder whose name has a space and non-ASCII characters."""
    path = tmp_path / "out été"
    path.mkdir()
    return path


class ModalDialogOpened(AssertionError):
    """A test opened a modal dialog (it would hang a real user's session on an error)."""


@pytest.fixture
def no_modal_dialogs(monkeypatch):
    """Make any modal QMessageBox / QDialog.exec raise instead of blocking the test."""
    from qtpy import QtWidgets

    def refuse(self, *args, **kwargs):
        text = self.text() if hasattr(self, "text") else ""
        raise ModalDialogOpened(f"modal dialog opened: {self.windowTitle()!r} {text!r}")

    for cls in (QtWidgets.QMessageBox, QtWidgets.QDialog):
        for name in ("exec", "exec_"):
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, refuse)

    # the static conveniences run their own C++ event loop, past the patched exec
    def refuse_static(kind):
        def raiser(*args, **kwargs):
            texts = [a for a in args if isinstance(a, str)]
            raise ModalDialogOpened(f"modal {kind} opened: {texts!r}")
        return staticmethod(raiser)

    for name in ("warning", "question", "critical", "information", "about"):
        monkeypatch.setattr(QtWidgets.QMessageBox, name, refuse_static(f"QMessageBox.{name}"))
    for name in ("getOpenFileName", "getOpenFileNames", "getSaveFileName",
                 "getExistingDirectory"):
        monkeypatch.setattr(QtWidgets.QFileDialog, name, refuse_static(f"QFileDialog.{name}"))


@pytest.fixture
def glue_app(qapp, no_modal_dialogs, monkeypatch):
    """A real GlueApplication, offscreen, whose error reports raise instead of showing a modal.

    The plugin is registered through the real entry point (glue.main.load_plugins), and
    autolinking never opens its dialog.
    """
    from helpers import glue_application

    app = glue_application(monkeypatch, "always_ignore")
    yield app
    app.close()


# --- catalogs: a stub of the CDS services (VizieR, SIMBAD TAP) on 127.0.0.1 -----------------


@pytest.fixture
def cds_stub(tmp_path, monkeypatch):
    """A running :class:`tests.cds_stub.CDSStub`, with the catalog layer pointed at it.

    Sets ``GLUE_ZEROPOINT_VIZIER_URL`` and ``GLUE_ZEROPOINT_SIMBAD_URL`` to the stub,
    ``GLUE_ZEROPOINT_CACHE_DIR`` to a fresh folder under ``tmp_path``, clears
    ``GLUE_ZEROPOINT_OFFLINE`` and turns astroquery's own cache off. Yields the stub:
    ``.url``, ``.requests`` (what the clients sent), ``set_vizier(catalog, answer)``,
    ``set_simbad(table)``, ``fail(mode, ...)``, ``stop()``.
    """
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from cds_stub import CDSStub
    finally:
        sys.path.pop(0)
    from astroquery import cache_conf

    stub = CDSStub().start()
    monkeypatch.setenv("GLUE_ZEROPOINT_VIZIER_URL", stub.url)
    monkeypatch.setenv("GLUE_ZEROPOINT_SIMBAD_URL", stub.url)
    monkeypatch.setenv("GLUE_ZEROPOINT_CACHE_DIR", str(tmp_path / "catalog-cache"))
    monkeypatch.delenv("GLUE_ZEROPOINT_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    with cache_conf.set_temp("cache_active", False):
        yield stub
    stub.stop()
