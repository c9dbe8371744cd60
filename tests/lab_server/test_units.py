"""In-process tests of estlab modules: config validation, encoders, pending, and the 500 path."""

import base64
import importlib
import sys
import threading

import pytest
import requests

from support.labserver import SERVER_PYTHONPATH


@pytest.fixture(scope="module")
def estlab(request):
    """The estlab package, imported from the role's files directory."""
    sys.path.insert(0, str(SERVER_PYTHONPATH))
    request.addfinalizer(lambda: sys.path.remove(str(SERVER_PYTHONPATH)))
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep __pycache__ out of the role's files/
    try:
        import estlab as package
        for module in ("ca", "config", "csr", "csrattrs", "encoding", "pending", "router", "server", "state"):
            importlib.import_module("estlab." + module)
    finally:
        sys.dont_write_bytecode = saved
    return package


def test_config_defaults_and_merge(estlab):
    cfg = estlab.config.Config({"users": {"a": "b"}})
    assert cfg.get("require_auth") is True and cfg.get("max_body_bytes") == 65536
    assert cfg.lifetime_seconds() == 30 * 86400
    cfg.merge({"cert_lifetime_seconds": 5})
    assert cfg.lifetime_seconds() == 5
    with pytest.raises(estlab.config.ConfigError):
        cfg.merge({"pending": {"after_polls": 1, "after_seconds": 1}})
    with pytest.raises(estlab.config.ConfigError):
        cfg.merge({"labels": ["bad/label"]})
    with pytest.raises(estlab.config.ConfigError):
        cfg.merge({"require_auth": "yes"})
    assert cfg.get("require_auth") is True  # a rejected change changes nothing


def test_base64_decoding_tolerates_white_space(estlab):
    der = b"\x30\x03\x02\x01\x05"
    text = base64.b64encode(der)
    for body in (text, b" " + text[:2] + b"\r\n" + text[2:] + b"\t\n", text + b"\r\n\r\n"):
        assert estlab.csr.decode_base64_body(body) == der
    for body in (b"", b" \r\n", b"AB=C", b"A"):
        with pytest.raises(estlab.csr.CsrError):
            estlab.csr.decode_base64_body(body)


def test_base64_text_wrapping(estlab):
    body = estlab.encoding.base64_text(bytes(100), wrap=64, eol="crlf")
    lines = body.split(b"\r\n")
    assert [len(line) for line in lines] == [64, 64, 8, 0]  # 100 bytes -> 136 characters


def test_csrattrs_rfc8951_example(estlab):
    der = estlab.csrattrs.encode_csrattrs([
        "1.2.840.113549.1.9.7",
        {"oid": "1.2.840.10045.2.1", "values": ["1.3.132.0.34"]},
        {"oid": "1.2.840.113549.1.9.14", "extensions": ["1.3.6.1.1.1.1.22"]},
        "1.2.840.10045.4.3.3",
    ])
    assert base64.b64encode(der).decode() == ("MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJ"
                                              "BgcrBgEBAQEWBggqhkjOPQQDAw==")


@pytest.mark.parametrize("bad", ["x", [{"oid": "x"}], [{"oid": "1.2", "values": []}], [7], [{"oid": "1.2", "other": 1}],
                                 [{"oid": "1.2", "values": [{"der": "!"}]}], [{"oid": "1.2", "values": "1.3"}]])
def test_csrattrs_rejects(estlab, bad):
    with pytest.raises(estlab.csrattrs.CsrAttrsError):
        estlab.csrattrs.encode_csrattrs(bad)


def test_pending_tracker(estlab):
    tracker = estlab.pending.PendingTracker()
    assert tracker.approved("k", None)
    assert [tracker.approved("k", {"after_polls": 2}) for dummy in range(4)] == [False, False, True, False]
    assert not tracker.approved("t", {"after_seconds": 10}, now=100.0)
    assert not tracker.approved("t", {"after_seconds": 10}, now=109.0)
    assert tracker.approved("t", {"after_seconds": 10}, now=110.0)


def test_unexpected_exception_gives_500_and_server_goes_on(estlab, tmp_path, monkeypatch):
    state = estlab.state.LabState(str(tmp_path), "ec", {"users": {"u": "p"}})
    estlab.ca.ensure_server_cert(str(tmp_path), state.cas.default, "ec")
    httpd = estlab.server.LabHTTPServer(("127.0.0.1", 0), state, estlab.server.make_ssl_context(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        def broken(state, ctx, ca):
            raise RuntimeError("boom: a bug")
        monkeypatch.setitem(estlab.router.EST_OPERATIONS, "cacerts", ("GET", broken))
        url = "https://127.0.0.1:%d" % httpd.server_address[1]
        ca_path = str(tmp_path / "ca.pem")
        session = requests.Session()
        response = session.get(url + "/.well-known/est/cacerts", verify=ca_path, timeout=5)
        assert response.status_code == 500
        assert response.text == "internal server error\n"
        assert "boom" not in response.text
        assert session.get(url + "/healthz", verify=ca_path, timeout=5).status_code == 200  # same connection
        assert state.requests.entries()[-1]["status"] == 500
    finally:
        httpd.shutdown()
        httpd.server_close()
