"""/fullcmc (RFC 7030 4.3, RFC 5272): Full PKI Requests in, signed PKI Responses out."""

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pyasn1.codec.der import encoder
from pyasn1.type import char

from cmc_helpers import CMC_REQUEST_TYPE, CMC_RESPONSE_TYPE, OID_GET_CERT, OID_IDENTIFICATION, Request, read_response, signed_data
from lab_helpers import certs_from_body, client_module, enroll_cert, load_pem, make_csr, name, new_key, post, utcnow, write_identity
from support.labserver import LabServerError

PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"


def send(server, request, label=None, content_type=CMC_REQUEST_TYPE, **kw):
    body = request.body if isinstance(request, Request) else request
    return post(server, "fullcmc", body, label=label, content_type=content_type, **kw)


def issued_for(response, key):
    return [c for c in response.certificates if c.public_key() == key.public_key()]


def assert_ok(server, http, request, keys, label_ca=None):
    assert http.status_code == 200, http.text
    assert http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    response = read_response(http)
    ca = label_ca or load_pem(server.ca_path)
    assert response.signature_ok and response.signer_cert == ca
    assert response.status == "success" and response.fail_info is None
    assert response.echoes(request)
    assert response.sender_nonce and response.sender_nonce != request.sender_nonce
    assert ca in response.certificates
    for key in keys:
        (cert,) = issued_for(response, key)
        cert.verify_directly_issued_by(ca)
    return response


def assert_failed(http, request, fail_info, body_list=None):
    assert http.status_code == 200, http.text
    assert http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    response = read_response(http)
    assert response.signature_ok, "failure responses are signed too"
    assert (response.status, response.fail_info) == ("failed", fail_info), response.status_string
    if request is not None:
        assert response.echoes(request)
    if body_list is not None:
        assert response.body_list == body_list
    assert len(response.certificates) == 1  # only the CA certificate
    return response


@pytest.fixture(scope="module")
def ra_identity(shared_server):
    """An RA certificate issued by the server's default CA, and its key."""
    cert, key = enroll_cert(shared_server, common_name="ra.example.test")
    return cert, key


def self_signed(key, common_name="stranger"):
    now = utcnow()
    return (x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_pop_signed_request(server):
    key = new_key()
    request = Request([make_csr(key, common_name="cmc1.example.test", dns=("cmc1.example.test",))], key)
    response = assert_ok(server, send(server, request), request, [key])
    assert response.body_list == [1]
    (cert,) = issued_for(response, key)
    assert cert.subject == name("cmc1.example.test")
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "cmc1.example.test"]
    entry = server.requests()[-1]
    assert (entry["op"], entry["status"], entry["auth"], entry["fault"]) == ("fullcmc", 200, "basic", None)


def test_pop_signed_with_ski_extension_and_identification(server):
    """The SignerInfo names the key by the SubjectKeyIdentifier extension of the CSR (RFC 5272 3.2 c)."""
    key = ec.generate_private_key(ec.SECP384R1())
    csr = make_csr(key, extra_extensions=[(x509.SubjectKeyIdentifier(b"my-own-key-id"), False)])
    request = Request([csr], key, ski=b"my-own-key-id",
                      extra_controls=[(OID_IDENTIFICATION, encoder.encode(char.UTF8String("device 7")))])
    assert_ok(server, send(server, request), request, [key])


def test_ed25519_pop_request(server):
    key = ed25519.Ed25519PrivateKey.generate()
    csr = x509.CertificateSigningRequestBuilder().subject_name(name("ed.example.test")).sign(key, None)
    request = Request([csr.public_bytes(serialization.Encoding.DER)], key)
    assert_ok(server, send(server, request), request, [key])


def test_ra_signed_request_with_two_csrs_on_a_label(server, ra_identity):
    ra_cert, ra_key = ra_identity
    keys = [new_key(), new_key("rsa")]
    request = Request([make_csr(k, common_name="ra-client%d.example.test" % i) for i, k in enumerate(keys)], ra_key,
                      signer_cert=ra_cert)
    http = send(server, request, label="iot")
    response = assert_ok(server, http, request, keys, label_ca=load_pem(server.label_ca_path("iot")))
    assert response.body_list == [1, 2]
    assert len(response.certificates) == 3


def test_client_certificate_authentication(server, ra_identity, tmp_path):
    ra_cert, ra_key = ra_identity
    key = new_key()
    request = Request([make_csr(key)], key)
    http = send(server, request, auth=None, cert=write_identity(tmp_path, ra_cert, ra_key))
    assert_ok(server, http, request, [key])
    assert server.requests()[-1]["auth"] == "cert"


@pytest.mark.parametrize("tamper", ["signature", "content", "content_type", "no_attrs"])
def test_bad_message_check(server, tamper):
    key = new_key()
    request = Request([make_csr(key)], key, tamper=tamper)
    assert_failed(send(server, request), request, "badMessageCheck", [0])


def test_unsigned_and_doubly_signed(server):
    key = new_key()
    assert_failed(send(server, Request([make_csr(key)], key, signers=0)), None, "badMessageCheck")
    assert_failed(send(server, Request([make_csr(key)], key, signers=2)), None, "badRequest")


def test_csr_with_bad_signature_fails_pop(server, ra_identity):
    ra_cert, ra_key = ra_identity
    good, bad = make_csr(new_key()), bytearray(make_csr(new_key()))
    bad[-5] ^= 0x01  # inside the ECDSA signature
    request = Request([good, bytes(bad)], ra_key, signer_cert=ra_cert)
    assert_failed(send(server, request), request, "popFailed", [2])


def test_unknown_signer(server, ra_identity):
    key = new_key()
    request = Request([make_csr(key)], key, ski=b"nobody")
    assert_failed(send(server, request), request, "badIdentity")
    stranger_key = new_key()
    request = Request([make_csr(key)], stranger_key, signer_cert=self_signed(stranger_key))  # a CA the server does not know
    assert_failed(send(server, request), request, "badIdentity")
    ra_cert, ra_key = ra_identity
    request = Request([make_csr(key)], ra_key, signer_cert=ra_cert, include_signer_cert=False)
    assert_failed(send(server, request), request, "badIdentity")


def test_unsupported_digest_is_bad_alg(server):
    key = new_key("rsa")
    request = Request([make_csr(key)], key, digest="sha1")
    assert_failed(send(server, request), request, "badAlg")


def test_unknown_control_is_bad_request(server):
    key = new_key()
    request = Request([make_csr(key)], key, extra_controls=[(OID_GET_CERT, encoder.encode(char.UTF8String("x")))])
    assert_failed(send(server, request), request, "badRequest", [4])  # 1 request, transactionId 2, senderNonce 3


def test_malformed_pki_data_is_bad_request(server):
    key = new_key()
    der = signed_data("1.3.6.1.5.5.7.12.2", b"\x30\x03\x02\x01\x05", key)
    assert_failed(send(server, base64.encodebytes(der)), None, "badRequest", [0])
    der = signed_data("1.2.840.113549.1.7.1", b"hello", key)  # not PKIData
    assert_failed(send(server, base64.encodebytes(der)), None, "badRequest")


def test_plain_http_errors(server):
    key = new_key()
    request = Request([make_csr(key)], key)
    assert send(server, b"%%% not base64").status_code == 400
    assert send(server, base64.encodebytes(b"\x04\x03abc")).status_code == 400  # DER, but not CMS
    assert send(server, base64.encodebytes(make_csr(key))).status_code == 400  # a bare CSR is not CMS either
    assert send(server, request, content_type="application/pkcs10").status_code == 415
    assert send(server, request, content_type="application/pkcs7-mime").status_code == 200  # parameters are not required
    assert send(server, request, auth=None).status_code == 401
    assert [e["status"] for e in server.requests()] == [400, 400, 400, 415, 200, 401]


def test_certs_only_response(server):
    server.set_config(fullcmc_response="certs-only")
    key = new_key()
    http = send(server, Request([make_csr(key)], key))
    assert http.status_code == 200 and http.headers["Content-Type"] == PKCS7_CERTS_ONLY
    certs = certs_from_body(http.content)
    assert load_pem(server.ca_path) in certs and [c for c in certs if c.public_key() == key.public_key()]


def test_failure_status_knob(server):
    server.set_config(fullcmc_fail_status=400)
    key = new_key()
    http = send(server, Request([make_csr(key)], key, tamper="signature"))
    assert http.status_code == 400 and http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    assert read_response(http).fail_info == "badMessageCheck"


@pytest.mark.parametrize("mode", ["http202", "cmc200"])
def test_pending(server, mode):
    server.set_config(pending={"after_polls": 1}, retry_after=9, fullcmc_pending=mode)
    key = new_key()
    request = Request([make_csr(key)], key)
    http = send(server, request)
    assert http.status_code == (202 if mode == "http202" else 200)
    assert http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    if mode == "http202":
        assert http.headers["Retry-After"] == "9"
    pending = read_response(http)
    assert pending.signature_ok and pending.status == "pending" and pending.echoes(request)
    token, when = pending.pend
    assert token and datetime.timedelta(seconds=5) < when - utcnow() < datetime.timedelta(seconds=12)
    again = Request([make_csr(key)], key)  # a fresh request for the same key is the poll
    assert_ok(server, send(server, again), again, [key])


def test_faults(server):
    key = new_key()
    server.set_fault("fullcmc", "wrong_key", count=1)
    response = read_response(send(server, Request([make_csr(key)], key)))
    assert response.signature_ok and response.status == "success" and not issued_for(response, key)
    server.set_fault("fullcmc", "other_ca", count=1)
    response = read_response(send(server, Request([make_csr(key)], key)))
    assert response.signature_ok and response.signer_cert != load_pem(server.ca_path)  # signed by a look-alike CA
    assert response.signer_cert.subject == load_pem(server.ca_path).subject
    server.set_fault("fullcmc", "bad_signature", count=1)
    response = read_response(send(server, Request([make_csr(key)], key)))
    assert response.status == "success" and not response.signature_ok
    server.set_fault("fullcmc", "wrong_nonce", count=1)
    request = Request([make_csr(key)], key)
    response = read_response(send(server, request))
    assert response.signature_ok and response.transaction_id == request.transaction_id
    assert response.recipient_nonce != request.sender_nonce
    server.set_fault("fullcmc", "http500", count=1)
    assert send(server, Request([make_csr(key)], key)).status_code == 500
    server.set_fault("fullcmc", "garbage", count=1)
    http = send(server, Request([make_csr(key)], key))
    assert http.status_code == 200 and http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    # A request that fails the CMC checks is not hit by a fault.
    server.set_fault("fullcmc", "http500", count=1)
    assert_failed(send(server, Request([make_csr(key)], key, tamper="signature")), None, "badMessageCheck")
    assert [e["fault"] for e in server.requests()] == [
        "wrong_key", "other_ca", "bad_signature", "wrong_nonce", "http500", "garbage", None]


def test_cmc_faults_are_fullcmc_only(server):
    with pytest.raises(LabServerError):
        server.set_fault("simpleenroll", "wrong_nonce")


@pytest.fixture
def client_cmc():
    """The collection's client module (to show the two sides interoperate)."""
    return client_module("cmc")


@pytest.mark.parametrize("signer", ["pop", "ra"])
def test_client_module_interoperates(server, client_cmc, ra_identity, signer):
    key = new_key()
    ra_cert, ra_key = ra_identity
    if signer == "ra":
        info = client_cmc.build_full_pki_request_info([make_csr(key)], ra_key, signer_cert=ra_cert)
    else:
        info = client_cmc.build_full_pki_request_info([make_csr(key)], key)
    http = post(server, "fullcmc", base64.encodebytes(info["der"]), content_type=client_cmc.CMC_REQUEST_CONTENT_TYPE)
    assert http.status_code == 200
    result = client_cmc.parse_pki_response(base64.b64decode(b"".join(http.content.split())), info["transaction_id"],
                                           info["sender_nonce"], [load_pem(server.ca_path)])
    assert result["status"] == "success" and result["signature_valid"] and result["signer_trusted"]
    assert result["transaction_id_ok"] and result["recipient_nonce_ok"]
    assert [c for c in result["certificates"] if c.public_key() == key.public_key()]
