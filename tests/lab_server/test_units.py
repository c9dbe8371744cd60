"""In-process tests of estlab modules: config validation, encoders, pending, and the 500 path."""

import base64
import datetime
import importlib
import sys
import threading

import pytest
import requests
from pyasn1.codec.der import decoder
from pyasn1_modules import rfc3279

from cmc_helpers import Response
from support.labserver import SERVER_PYTHONPATH


@pytest.fixture(scope="module")
def estlab(request):
    """The estlab package, imported from the role's files directory."""
    sys.path.insert(0, str(SERVER_PYTHONPATH))
    request.addfinalizer(lambda: sys.path.remove(str(SERVER_PYTHONPATH)))
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep __pycache__ out of the role's files/
    try:
        import estlab as package
        for module in ("ca", "cmc", "cms", "config", "csr", "csrattrs", "csrtemplate", "encoding", "keygen", "pending", "router",
                       "server", "serverkeygen", "state"):
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


def test_config_new_keys(estlab):
    cfg = estlab.config.Config()
    assert cfg.get("serverkeygen_order") == "key-first" and cfg.get("fullcmc_fail_status") == 200
    cfg.merge({"serverkeygen_key_format": "traditional", "fullcmc_fail_status": 503, "fullcmc_response": "certs-only"})
    for bad in ({"serverkeygen_order": "random"}, {"serverkeygen_cte": "no"}, {"fullcmc_fail_status": 302},
                {"fullcmc_fail_status": True}, {"fullcmc_pending": "later"}, {"serverkeygen_encrypted_content": "plain"}):
        with pytest.raises(estlab.config.ConfigError):
            cfg.merge(bad)


def test_multipart_body_framing(estlab):
    body = estlab.serverkeygen.multipart_body([("application/pkcs8", b"\x01" * 60), ("a/b; x=y", b"\x02")], "B0", "crlf", True, 64)
    assert body == (b"--B0\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                    + base64.b64encode(b"\x01" * 60)[:64] + b"\r\n" + base64.b64encode(b"\x01" * 60)[64:] + b"\r\n"
                    b"--B0\r\nContent-Type: a/b; x=y\r\nContent-Transfer-Encoding: base64\r\n\r\nAg==\r\n--B0--\r\n")
    lf = estlab.serverkeygen.multipart_body([("a/b", b"\x02")], "B1", "lf", False, 0)
    assert lf == b"--B1\nContent-Type: a/b\n\nAg==\n--B1--\n"


def test_pki_response_encoding(estlab):
    cert, key = estlab.ca.create_self_signed_ca("unit CA", "ec")
    when = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    for kwargs, expected in [
        ({"status": "failed", "fail_info": "popFailed", "body_list": [2]}, ("failed", "popFailed", None)),
        ({"status": "pending", "pend": (b"tok", when), "body_list": [1]}, ("pending", None, (b"tok", when))),
        ({"status": "success", "body_list": [1, 2]}, ("success", None, None)),
    ]:
        der = estlab.cmc.pki_response(transaction_id=-5, recipient_nonce=b"n", status_string="s", **kwargs)
        signed = estlab.cms.sign_signed_data(estlab.cmc.OID_PKI_RESPONSE, der, cert, key, [cert])
        response = Response(signed)
        assert response.signature_ok and (response.status, response.fail_info, response.pend) == expected
        assert response.body_list == kwargs["body_list"] and response.transaction_id == -5 and response.recipient_nonce == b"n"
    corrupt = estlab.cms.sign_signed_data(estlab.cmc.OID_PKI_RESPONSE, der, cert, key, [cert], corrupt=True)
    assert not Response(corrupt).signature_ok


def test_rsa_placeholder(estlab):
    for size in (2048, 3072, 4096):
        key = decoder.decode(estlab.csrtemplate.rsa_placeholder(size), asn1Spec=rfc3279.RSAPublicKey())[0]
        assert int(key["modulus"]).bit_length() == size
