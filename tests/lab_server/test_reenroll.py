"""/simplereenroll: a valid TLS client certificate of the label's CA and the same identity (RFC 7030 4.2.2)."""

import datetime

import pytest
import requests
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lab_helpers import (b64, certs_from_body, enroll, enroll_cert, load_key, load_pem, make_csr, new_key, post,
                         sign_with_ca, utcnow, write_identity)

SUBJECT = "renew-me.example.test"
NAMES = ("renew-me.example.test", "alt.example.test")


@pytest.fixture
def identity(server, tmp_path):
    """An enrolled certificate (default CA) written for TLS client auth: (cert, key, (certfile, keyfile))."""
    cert, key = enroll_cert(server, common_name=SUBJECT, dns=NAMES)
    return cert, key, write_identity(tmp_path, cert, key)


def reenroll(server, key, identity_files, label=None, auth=None, **csr_kw):
    csr_kw.setdefault("common_name", SUBJECT)
    csr_kw.setdefault("dns", NAMES)
    return post(server, "simplereenroll", b64(make_csr(key, **csr_kw)), label=label, auth=auth, cert=identity_files)


def spki(key):
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_renew_same_key(server, identity):
    old, key, files = identity
    response = reenroll(server, key, files)
    assert response.status_code == 200, response.text
    (new,) = certs_from_body(response.content)
    assert new.subject == old.subject and new.serial_number != old.serial_number
    assert spki(key) == new.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    entry = server.requests()[-1]
    assert (entry["op"], entry["status"], entry["auth"]) == ("simplereenroll", 200, "cert")


def test_rekey(server, identity):
    files = identity[2]
    replacement = new_key()
    response = reenroll(server, replacement, files)
    assert response.status_code == 200, response.text
    assert certs_from_body(response.content)[0].public_key() == replacement.public_key()


def test_san_order_does_not_matter(server, identity):
    key, files = identity[1:]
    assert reenroll(server, key, files, dns=tuple(reversed(NAMES))).status_code == 200


def test_without_client_certificate(server):
    response = post(server, "simplereenroll", b64(make_csr(new_key(), common_name=SUBJECT)))  # Basic only
    assert response.status_code == 403
    assert "client certificate" in response.text


@pytest.mark.parametrize("change", [
    {"common_name": "someone-else.example.test"},
    {"dns": ("renew-me.example.test",)},
    {"dns": NAMES + ("extra.example.test",)},
    {"dns": ()},
])
def test_identity_must_match(server, identity, change):
    key, files = identity[1:]
    response = reenroll(server, key, files, **change)
    assert response.status_code == 400
    assert "differs" in response.text


def test_expired_certificate(server, tmp_path):
    key = new_key()
    now = utcnow()
    expired = sign_with_ca(load_pem(server.ca_path), load_key(server.state_dir / "ca.key"), SUBJECT, key.public_key(),
                           now - datetime.timedelta(days=30), now - datetime.timedelta(minutes=1), dns=NAMES)
    response = reenroll(server, key, write_identity(tmp_path, expired, key))
    assert response.status_code == 403
    assert "expired" in response.text


def test_certificate_of_another_label(server, tmp_path):
    cert, key = enroll_cert(server, label="iot", common_name=SUBJECT, dns=NAMES)
    files = write_identity(tmp_path, cert, key)
    response = reenroll(server, key, files)  # default CA, but the cert is from "iot"
    assert response.status_code == 403
    assert "label" in response.text
    assert reenroll(server, key, files, label="iot").status_code == 200


def test_certificate_of_a_foreign_ca_is_refused_in_tls(server, tmp_path):
    """The TLS layer only accepts client certificates chaining to one of the server's CAs."""
    foreign_key = new_key()
    foreign = sign_with_ca(load_pem(server.ca_path), foreign_key, SUBJECT, foreign_key.public_key(),
                           utcnow() - datetime.timedelta(days=1), utcnow() + datetime.timedelta(days=1), dns=NAMES)
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is a ConnectionError
        reenroll(server, foreign_key, write_identity(tmp_path, foreign, foreign_key))
    assert enroll(server)[0].status_code == 200  # and the server is fine


def test_reenroll_wrong_basic_credentials(server, identity):
    key, files = identity[1:]
    assert reenroll(server, key, files, auth=("alice", "nope")).status_code == 401
