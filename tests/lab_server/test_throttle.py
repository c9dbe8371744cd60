"""The lab server's throttle: 503 or 429 with Retry-After beyond max_in_flight or per_second, counted and logged."""

import importlib
import sys

import pytest
import requests

from lab_helpers import enroll, get
from support.labserver import SERVER_PYTHONPATH, LabServerError


def test_per_second_refuses_with_503_and_retry_after(server):
    server.set_config(throttle={"per_second": 0.01, "burst": 2, "retry_after": 7})
    assert [get(server, "cacerts").status_code for _attempt in range(2)] == [200, 200]
    refused = get(server, "cacerts")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "7"
    # Refused before credentials are looked at, as a proxy in front of the CA does.
    response, _key = enroll(server, auth=("alice", "wrong"))
    assert response.status_code == 503
    log = server.requests()
    assert [(r["op"], r["status"], r["fault"]) for r in log] == [
        ("cacerts", 200, None), ("cacerts", 200, None), ("cacerts", 503, "throttled"), ("simpleenroll", 503, "throttled")]
    stats = server.throttle_stats()
    assert (stats["admitted"], stats["refused"], stats["in_flight"]) == (2, 2, 0)
    # The lab endpoints are never throttled; the counts start anew on DELETE; null switches it off.
    assert server.clear_throttle_stats()["refused"] == 0
    server.set_config(throttle=None)
    assert get(server, "cacerts").status_code == 200


def test_429_and_no_retry_after(server):
    server.set_config(throttle={"per_second": 0.01, "burst": 1, "retry_after": None, "status": 429})
    assert get(server, "csrattrs").status_code in (200, 204)
    refused = get(server, "csrattrs")
    assert refused.status_code == 429 and "Retry-After" not in refused.headers


@pytest.mark.parametrize("throttle", [{"status": 500}, {"max_in_flight": 0}, {"per_second": -1}, {"retry_after": 1.5},
                                      {"burst": 0.5}, {"rate": 1}, [1]])
def test_bad_throttle_settings_are_refused(server, throttle):
    with pytest.raises(LabServerError, match="throttle"):
        server.set_config(throttle=throttle)


@pytest.fixture
def throttle_module():
    sys.path.insert(0, str(SERVER_PYTHONPATH))
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep __pycache__ out of the role's files/
    try:
        yield importlib.import_module("estlab.throttle"), importlib.import_module("estlab.config")
    finally:
        sys.dont_write_bytecode = saved
        sys.path.remove(str(SERVER_PYTHONPATH))


class _Ctx:
    fault = None


def test_max_in_flight_and_the_bucket_refill(throttle_module):
    throttle, config = throttle_module
    now = [100.0]
    cfg = config.Config({"throttle": {"max_in_flight": 2, "per_second": 2, "burst": 3, "retry_after": 4}})
    gate = throttle.Throttle(cfg, clock=lambda: now[0])
    with gate.admit(_Ctx()), gate.admit(_Ctx()):
        ctx = _Ctx()
        with pytest.raises(Exception) as info:
            with gate.admit(ctx):
                pass
        assert (info.value.status, info.value.headers, ctx.fault) == (503, {"Retry-After": "4"}, "throttled")
        assert "max_in_flight 2" in info.value.reason
    with gate.admit(_Ctx()):  # the third token of the burst
        pass
    with pytest.raises(Exception):  # the bucket is empty
        with gate.admit(_Ctx()):
            pass
    now[0] += 0.5  # one token back at 2 per second
    with gate.admit(_Ctx()):
        pass
    assert gate.snapshot() == {"admitted": 4, "refused": 2, "peak_in_flight": 2, "in_flight": 0}


def test_requests_library_sees_the_throttle(server):
    """A plain HTTP client reads the refusal as any overloaded server's (status, Retry-After, a short text)."""
    server.set_config(throttle={"per_second": 0.01, "burst": 1})
    requests.get(server.est_url("cacerts"), verify=server.ca_path, timeout=10)
    refused = requests.get(server.est_url("cacerts"), verify=server.ca_path, timeout=10)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1" and "lab throttle" in refused.text
