"""Fault injection (/lab/faults): every fault on the operations it applies to."""

import base64
import binascii

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import pkcs7

from lab_helpers import b64, certs_from_body, enroll, enroll_cert, get, load_pem, make_csr, new_key, post, write_identity

PKCS7_TYPE = "application/pkcs7-mime; smime-type=certs-only"


def do(server, op, key=None):
    if op == "cacerts":
        return get(server, "cacerts")
    if op == "csrattrs":
        return get(server, "csrattrs")
    return post(server, op, b64(make_csr(key or new_key())))


def not_pkcs7(body):
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
        pkcs7.load_der_pkcs7_certificates(der)
    except (ValueError, binascii.Error):
        return True
    return False


@pytest.fixture
def csrattrs_configured(server):
    server.set_config(csrattrs=["1.2.840.113549.1.9.7", "1.2.840.10045.4.3.2"])


@pytest.mark.parametrize("op", ["simpleenroll", "cacerts"])
def test_http500(server, op):
    server.set_fault(op, "http500", count=1)
    response = do(server, op)
    assert response.status_code == 500 and response.headers["Content-Type"].startswith("text/plain")
    assert do(server, op).status_code == 200  # count 1: only once
    assert server.requests()[0]["fault"] == "http500" and server.requests()[1]["fault"] is None


@pytest.mark.parametrize("op", ["simpleenroll", "cacerts"])
def test_garbage(server, op):
    server.set_fault(op, "garbage")
    for dummy in range(2):  # persistent
        response = do(server, op)
        assert response.status_code == 200 and response.headers["Content-Type"] == PKCS7_TYPE
        with pytest.raises((binascii.Error, ValueError)):
            base64.b64decode(b"".join(response.content.split()), validate=True)


def test_garbage_csrattrs(server, csrattrs_configured):
    del csrattrs_configured
    server.set_fault("csrattrs", "garbage", count=1)
    response = do(server, "csrattrs")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/csrattrs"


@pytest.mark.parametrize("op", ["simpleenroll", "cacerts"])
def test_bad_pkcs7(server, op):
    server.set_fault(op, "bad_pkcs7", count=1)
    response = do(server, op)
    assert response.status_code == 200
    base64.b64decode(b"".join(response.content.split()), validate=True)  # valid base64 ...
    assert not_pkcs7(response.content)  # ... of something that is not PKCS#7


@pytest.mark.parametrize("op", ["simpleenroll", "cacerts", "csrattrs"])
def test_empty(server, op, csrattrs_configured):
    del csrattrs_configured
    server.set_fault(op, "empty", count=1)
    response = do(server, op)
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize("op", ["simpleenroll", "cacerts"])
def test_truncated(server, op):
    full = do(server, op).content
    server.set_fault(op, "truncated", count=1)
    response = do(server, op)
    assert response.status_code == 200
    assert 0 < len(response.content) < len(full) * 0.6  # (a new certificate may differ by a few bytes)
    assert not_pkcs7(response.content)


def test_truncated_csrattrs(server, csrattrs_configured):
    del csrattrs_configured
    full = do(server, "csrattrs").content
    server.set_fault("csrattrs", "truncated", count=1)
    assert do(server, "csrattrs").content == full[:len(full) // 2]


@pytest.mark.parametrize("op", ["simpleenroll", "cacerts", "csrattrs"])
def test_wrong_content_type(server, op):
    server.set_fault(op, "wrong_content_type", count=1)
    response = do(server, op)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")


def test_wrong_key(server):
    server.set_fault("simpleenroll", "wrong_key", count=1)
    key = new_key()
    response = do(server, "simpleenroll", key)
    (cert,) = certs_from_body(response.content)
    cert.verify_directly_issued_by(load_pem(server.ca_path))  # a real certificate of the right CA ...
    assert cert.public_key() != key.public_key()  # ... for another key


def test_other_ca(server):
    server.set_fault("simpleenroll", "other_ca", count=1)
    key = new_key()
    (cert,) = certs_from_body(do(server, "simpleenroll", key).content)
    ca = load_pem(server.ca_path)
    assert cert.public_key() == key.public_key() and cert.issuer == ca.subject
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(ca)
    assert ca in certs_from_body(do(server, "cacerts").content)


@pytest.mark.parametrize("fault", ["wrong_key", "other_ca"])
def test_cacerts_signing_faults(server, fault):
    server.set_fault("cacerts", fault, count=1)
    (served,) = certs_from_body(do(server, "cacerts").content)
    real = load_pem(server.ca_path)
    assert served.subject == real.subject and served.public_key() != real.public_key()


@pytest.mark.parametrize("op", ["simpleenroll", "cacerts", "csrattrs"])
def test_close(server, op):
    server.set_fault(op, "close", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        do(server, op)
    assert do(server, op).status_code in (200, 204)
    assert server.requests()[0]["status"] is None and server.requests()[0]["fault"] == "close"


def test_faults_skip_rejected_requests(server):
    server.set_fault("simpleenroll", "http500", count=1)
    assert enroll(server, auth=None)[0].status_code == 401  # not consumed by a 4xx
    assert enroll(server)[0].status_code == 500


def test_reenroll_fault(server, tmp_path):
    cert, key = enroll_cert(server, common_name="f.example.test")
    server.set_fault("simplereenroll", "bad_pkcs7", count=1)
    response = post(server, "simplereenroll", b64(make_csr(key, common_name="f.example.test")), auth=None,
                    cert=write_identity(tmp_path, cert, key))
    assert response.status_code == 200 and not_pkcs7(response.content)


def test_clear_faults_and_validation(server):
    server.set_fault("cacerts", "http500")
    server.clear_faults()
    assert do(server, "cacerts").status_code == 200
    for bad in ({"op": "nope", "fault": "http500"}, {"op": "cacerts", "fault": "nope"},
                {"op": "cacerts", "fault": "close", "count": 0}, {"op": "csrattrs", "fault": "wrong_key"}, [1]):
        response = requests.post(server.url + "/lab/faults", json=bad, verify=server.ca_path, timeout=5)
        assert response.status_code == 400, bad
