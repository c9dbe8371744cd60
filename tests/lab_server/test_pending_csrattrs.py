"""Pending approval (202 + Retry-After) and /csrattrs."""

import base64
import time

from pyasn1.codec.der import decoder
from pyasn1_modules import rfc7030

from lab_helpers import b64, certs_from_body, get, make_csr, new_key, post

RFC8951_EXAMPLE = ("MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJ"
                   "BgcrBgEBAQEWBggqhkjOPQQDAw==")


def test_pending_after_polls(server):
    server.set_config(pending={"after_polls": 2}, retry_after=7)
    key = new_key()
    body = b64(make_csr(key))
    for dummy in range(2):
        response = post(server, "simpleenroll", body)
        assert response.status_code == 202
        assert response.headers["Retry-After"] == "7"
    assert len(server.pending()) == 1
    other = post(server, "simpleenroll", b64(make_csr(new_key())))  # a different key starts its own count
    assert other.status_code == 202
    response = post(server, "simpleenroll", b64(make_csr(key)))  # a new CSR for the same key counts too
    assert response.status_code == 200
    assert certs_from_body(response.content)[0].public_key() == key.public_key()
    assert post(server, "simpleenroll", body).status_code == 202  # issued: the key waits again
    assert [e["status"] for e in server.requests()] == [202, 202, 202, 200, 202]


def test_pending_after_seconds(server):
    server.set_config(pending={"after_seconds": 1})
    body = b64(make_csr(new_key()))
    assert post(server, "simpleenroll", body).status_code == 202
    assert post(server, "simpleenroll", body).status_code == 202
    time.sleep(1.1)
    assert post(server, "simpleenroll", body).status_code == 200


def test_pending_does_not_hide_errors(server):
    server.set_config(pending={"after_polls": 5})
    assert post(server, "simpleenroll", b64(make_csr(new_key())), auth=None).status_code == 401
    assert post(server, "simpleenroll", b"%%%").status_code == 400
    assert server.pending() == {}


def test_pending_zero_polls_issues_at_once(server):
    server.set_config(pending={"after_polls": 0})
    assert post(server, "simpleenroll", b64(make_csr(new_key()))).status_code == 200


def test_csrattrs_none_is_204(server):
    response = get(server, "csrattrs")
    assert response.status_code == 204 and response.content == b""


def test_csrattrs_404(server):
    server.set_config(csrattrs="404")
    assert get(server, "csrattrs").status_code == 404
    assert get(server, "csrattrs", label="iot").status_code == 404


def test_csrattrs_rfc8951_example(server):
    server.set_config(csrattrs=[
        "1.2.840.113549.1.9.7",
        {"oid": "1.2.840.10045.2.1", "values": [{"oid": "1.3.132.0.34"}]},
        {"oid": "1.2.840.113549.1.9.14", "extensions": ["1.3.6.1.1.1.1.22"]},
        {"oid": "1.2.840.10045.4.3.3"},
    ])
    response = get(server, "csrattrs")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/csrattrs"
    assert b"".join(response.content.split()) == RFC8951_EXAMPLE.encode()


def test_csrattrs_brief_example_decodes(server):
    server.set_config(csrattrs=[{"oid": "1.2.840.113549.1.9.7"},
                                {"oid": "1.2.840.10045.2.1", "values": [{"oid": "1.2.840.10045.3.1.7"}]},
                                {"oid": "1.2.840.113549.1.9.14", "extensions": ["1.3.6.1.4.1.311.20.2"]}])
    der = base64.b64decode(b"".join(get(server, "csrattrs", label="web").content.split()))
    attrs, rest = decoder.decode(der, asn1Spec=rfc7030.CsrAttrs())
    assert rest == b""
    assert str(attrs[0]["oid"]) == "1.2.840.113549.1.9.7"
    assert str(attrs[1]["attribute"]["attrType"]) == "1.2.840.10045.2.1"
    assert str(attrs[2]["attribute"]["attrType"]) == "1.2.840.113549.1.9.14"
    (value,) = attrs[2]["attribute"]["attrValues"]
    assert decoder.decode(bytes(value))[0].prettyPrint() == "1.3.6.1.4.1.311.20.2"


def test_csrattrs_empty_sequence(server):
    server.set_config(csrattrs=[])
    response = get(server, "csrattrs")
    assert response.status_code == 200 and response.content.strip() == b"MAA="  # SEQUENCE {}
