"""/cacerts and /simpleenroll: encodings, authentication, issued certificate profile, labels."""

import base64
import datetime

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from lab_helpers import (b64, certs_from_body, enroll, enroll_cert, get, load_key, load_pem, make_csr, new_key,
                         post, sign_with_ca, write_identity)


def test_cacerts(server):
    response = get(server, "cacerts")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert response.headers["Content-Transfer-Encoding"] == "base64"
    lines = response.content.split(b"\n")  # LF line ends (response_eol)
    assert b"\r" not in response.content
    assert lines[-1] == b"" and all(len(line) == 64 for line in lines[:-2]) and 0 < len(lines[-2]) <= 64
    assert certs_from_body(response.content) == [load_pem(server.ca_path)]
    assert server.requests()[-1] == {**server.requests()[-1], "method": "GET", "op": "cacerts", "label": None,
                                     "status": 200, "auth": "none"}


def test_cacerts_line_format_is_configurable(server):
    server.set_config(response_wrap=0, response_eol="lf")
    body = get(server, "cacerts").content
    assert body.count(b"\n") == 1 and body.endswith(b"\n") and b"\r" not in body


@pytest.mark.parametrize("label", ["iot", "web"])
def test_labels_have_their_own_ca(server, label):
    label_ca = load_pem(server.label_ca_path(label))
    assert label_ca != load_pem(server.ca_path)
    assert certs_from_body(get(server, "cacerts", label=label).content) == [label_ca]
    cert = enroll_cert(server, label=label)[0]
    cert.verify_directly_issued_by(label_ca)
    entry = server.requests()[-1]
    assert (entry["op"], entry["label"], entry["status"], entry["auth"]) == ("simpleenroll", label, 200, "basic")


def test_unknown_label_and_operation(server):
    assert get(server, "cacerts", label="nope").status_code == 404
    assert enroll(server, label="nope")[0].status_code == 404
    assert get(server, "nosuchoperation").status_code == 404
    for op in ("serverkeygen", "fullcmc"):  # known operations, POST only
        response = get(server, op)
        assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert requests.get(server.url + "/.well-known/est/iot/x/cacerts", verify=server.ca_path, timeout=5).status_code == 404
    assert requests.get(server.url + "/nothing", verify=server.ca_path, timeout=5).status_code == 404


def test_labels_can_be_added_at_runtime(server):
    server.set_config(labels=["iot", "web", "late"])
    assert get(server, "cacerts", label="late").status_code == 200
    enroll_cert(server, label="late")[0].verify_directly_issued_by(load_pem(server.label_ca_path("late")))
    server.set_config(labels=["iot", "web"])
    assert get(server, "cacerts", label="late").status_code == 404


def test_wrong_methods(server):
    response = requests.post(server.est_url("cacerts"), data=b"x", verify=server.ca_path, timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    response = requests.get(server.est_url("simpleenroll"), verify=server.ca_path, timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert requests.delete(server.url + "/lab/config", verify=server.ca_path, timeout=5).status_code == 405


def test_enroll_with_basic_issues_requested_profile(server):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    key = new_key()
    cert = enroll_cert(server, key, common_name="web1.example.test", dns=("web1.example.test", "www.example.test"))[0]
    ca = load_pem(server.ca_path)
    cert.verify_directly_issued_by(ca)
    assert cert.public_key() == key.public_key()
    assert cert.subject.rfc4514_string() == "CN=web1.example.test"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["web1.example.test", "www.example.test"]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment and not ku.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert before <= cert.not_valid_before_utc
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=30)
    response = server.requests()[-1]
    assert (response["method"], response["op"], response["status"], response["auth"]) == ("POST", "simpleenroll", 200, "basic")


def test_enroll_response_headers(server):
    response = enroll(server)[0]
    assert response.headers["Content-Type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert response.headers["Content-Transfer-Encoding"] == "base64"


def test_enroll_copies_requested_key_usage_and_eku(server):
    ku = x509.KeyUsage(digital_signature=False, content_commitment=True, key_encipherment=False, data_encipherment=False,
                       key_agreement=True, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    cert = enroll_cert(server, key_usage=ku, eku=[ExtendedKeyUsageOID.CODE_SIGNING])[0]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value == ku
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CODE_SIGNING]


def test_enroll_rsa_key_default_key_usage(server):
    cert = enroll_cert(server, new_key("rsa"))[0]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment


@pytest.mark.parametrize("body", [
    pytest.param(lambda der: b64(der, wrap=0), id="one-line"),
    pytest.param(lambda der: b64(der, wrap=64, eol="\r\n"), id="crlf"),
    pytest.param(lambda der: b64(der, wrap=76, eol="\n") + "  \t\r\n\r\n", id="trailing-space"),
    pytest.param(lambda der: " " + b64(der, wrap=10, eol=" \n\t"), id="odd-white-space"),
])
def test_enroll_body_encodings(server, body):
    response = post(server, "simpleenroll", body(make_csr(new_key())), headers={"Content-Transfer-Encoding": "binary"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", ["application/pkcs10", "Application/PKCS10", "application/pkcs10; charset=us-ascii",
                                          "application/pkcs10 ;x=y"])
def test_enroll_content_type_variants(server, content_type):
    response = post(server, "simpleenroll", b64(make_csr(new_key())), content_type=content_type)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/pkcs7-mime", "application/pkcs10x"])
def test_enroll_wrong_content_type(server, content_type):
    response = post(server, "simpleenroll", b64(make_csr(new_key())), content_type=content_type)
    assert response.status_code == 415
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("auth", [None, ("alice", "wrong"), ("bob", "secret")])
def test_enroll_requires_auth(server, auth):
    response = enroll(server, auth=auth)[0]
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="estlab"'
    assert server.requests()[-1]["auth"] == "none"


def test_enroll_empty_user_name(server):
    assert enroll(server, auth=("", "anonymous-password"))[0].status_code == 200


def test_enroll_without_auth_when_not_required(server):
    server.set_config(require_auth=False)
    response = enroll(server, auth=None)[0]
    assert response.status_code == 200
    assert server.requests()[-1]["auth"] == "none"
    assert enroll(server, auth=("alice", "wrong"))[0].status_code == 401  # wrong credentials stay wrong


def test_users_can_change_at_runtime(server):
    server.set_config(users={"carol": "pw"})
    assert enroll(server, auth=("carol", "pw"))[0].status_code == 200
    assert enroll(server, auth=("alice", "secret"))[0].status_code == 401


def test_enroll_with_client_certificate(server, tmp_path):
    cert, key = enroll_cert(server, label="iot", common_name="iot-device")
    identity = write_identity(tmp_path, cert, key)
    response = enroll(server, auth=None, cert=identity, common_name="second-cert")[0]
    assert response.status_code == 200, response.text
    assert server.requests()[-1]["auth"] == "cert"


def test_expired_client_certificate_is_not_enough(server, tmp_path):
    ca_cert, ca_key = load_pem(server.ca_path), load_key(server.state_dir / "ca.key")
    key = new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = sign_with_ca(ca_cert, ca_key, "old", key.public_key(), now - datetime.timedelta(days=10), now - datetime.timedelta(days=1))
    response = enroll(server, auth=None, cert=write_identity(tmp_path, expired, key))[0]
    assert response.status_code == 401
    assert "expired" in response.text
    assert enroll(server, cert=write_identity(tmp_path, expired, key))[0].status_code == 200  # Basic still works


def test_csr_with_bad_signature(server):
    der = bytearray(make_csr(new_key()))
    der[-5] ^= 0x55  # inside the signature
    response = post(server, "simpleenroll", b64(bytes(der)))
    assert response.status_code == 400
    assert "signature" in response.text


@pytest.mark.parametrize("body,reason", [
    (b"", "empty"),
    (b"!!!not base64!!!", "base64"),
    (base64.b64encode(b"\x30\x03\x02\x01"), "PKCS#10"),
    (base64.b64encode(b"hello world"), "PKCS#10"),
])
def test_malformed_bodies(server, body, reason):
    response = post(server, "simpleenroll", body)
    assert response.status_code == 400
    assert reason in response.text
    assert response.headers["Content-Type"].startswith("text/plain")


def test_body_too_large(server):
    response = post(server, "simpleenroll", b"A" * 70000)
    assert response.status_code == 413
    server.set_config(max_body_bytes=100)
    assert post(server, "simpleenroll", b64(make_csr(new_key()))).status_code == 413

    def chunks():
        yield b"MIIB" * 15
        yield b"MIIB" * 15
    response = post(server, "simpleenroll", chunks())  # chunked: no Content-Length, over the limit while reading
    assert response.status_code == 413


def test_lifetime_configuration(server):
    server.set_config(cert_lifetime_days=2)
    cert = enroll_cert(server)[0]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=2)
    server.set_config(cert_lifetime_seconds=90)
    cert = enroll_cert(server)[0]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(seconds=90)
    assert server.get_config()["cert_lifetime_seconds"] == 90


def test_lab_config_rejects_bad_values(server):
    for bad in ({"cert_lifetime_days": -1}, {"pending": {"after_polls": "x"}}, {"labels": ["cacerts"]},
                {"csrattrs": [{"oid": "not-an-oid"}]}, {"unknown": 1}):
        response = requests.post(server.url + "/lab/config", json=bad, verify=server.ca_path, timeout=5)
        assert response.status_code == 400, bad
    response = requests.post(server.url + "/lab/config", data=b"{nope", verify=server.ca_path, timeout=5)
    assert response.status_code == 400


def test_request_log_clear(server):
    get(server, "cacerts")
    assert len(server.requests()) == 1
    server.clear_requests()
    assert server.requests() == []
    requests.get(server.url + "/healthz", verify=server.ca_path, timeout=5)
    assert server.requests() == []  # lab endpoints are not EST requests


def test_ec_p384_csr(server):
    key = ec.generate_private_key(ec.SECP384R1())
    response = post(server, "simpleenroll", b64(make_csr(key)))
    assert response.status_code == 200
    assert certs_from_body(response.content)[0].public_key().curve.name == "secp384r1"
    assert certs_from_body(response.content)[0].signature_hash_algorithm.name == hashes.SHA256.name


def test_copy_sans_false_issues_without_the_requested_names(server):
    """Imitates the example CAs that drop subjectAltName (for the client's san_policy tests)."""
    server.set_config(copy_sans=False)
    cert = enroll_cert(server, common_name="nosan.example.test", dns=("nosan.example.test",))[0]
    assert cert.subject.rfc4514_string() == "CN=nosan.example.test"
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    server.set_config(copy_sans=True)
    cert = enroll_cert(server, common_name="san.example.test", dns=("san.example.test",))[0]
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "san.example.test"]
