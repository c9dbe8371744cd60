"""Fixtures for the lab EST server tests (real TLS on 127.0.0.1)."""

import pathlib
import sys

import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support.labserver import LabServer  # noqa: E402  pylint: disable=wrong-import-position

BASE_CONFIG = {
    "users": {"alice": "secret", "": "anonymous-password"},
    "labels": ["iot", "web"],
    "cert_lifetime_days": 30,
}


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """One server for most tests; `server` resets it between tests."""
    server = LabServer(tmp_path_factory.mktemp("shared") / "state", config=BASE_CONFIG)
    server.start()
    server.baseline = server.get_config()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server):
    """The shared server with configuration, faults, pending state and request log reset."""
    shared_server.set_config(**shared_server.baseline)
    shared_server.clear_faults()
    shared_server.clear_pending()
    shared_server.clear_requests()
    yield shared_server
    if not shared_server.running:
        shared_server.start()
    shared_server.set_config(**shared_server.baseline)
    shared_server.clear_faults()
