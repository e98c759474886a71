"""The suite's own guard: no test reaches a host other than the loopback interface."""
import socket

import pytest


def test_connecting_to_a_real_host_fails_the_test_not_just_the_request(network_attempts):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(BaseException) as info:
            sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    finally:
        sock.close()
    # not an OSError: requests/urllib and the catalog cache fallback would swallow that
    assert type(info.value).__name__ == "NetworkAccessError"
    assert not isinstance(info.value, Exception)
    # and recorded, so a test whose code caught it still fails at teardown
    assert network_attempts == ["connect '192.0.2.1'"]


def test_name_lookups_of_real_hosts_are_refused(network_attempts):
    try:  # caught, as a worker thread would
        socket.getaddrinfo("vizier.invalid", 443)
    except BaseException as err:  # noqa: BLE001
        assert type(err).__name__ == "NetworkAccessError"
    assert network_attempts == ["look up 'vizier.invalid'"]


def test_loopback_stays_open():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
        assert socket.getaddrinfo("localhost", 80)
    finally:
        client.close()
        server.close()
