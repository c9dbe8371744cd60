"""/serverkeygen (RFC 7030 4.4): multipart/mixed with the server-made key and its certificate."""

import base64
import email.parser
import email.policy

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from pyasn1.codec.der import decoder, encoder
from pyasn1_modules import rfc5652, rfc5958

from cmc_helpers import Response, capabilities_attribute, csr_with_attributes, key_id_attribute
from lab_helpers import b64, certs_from_body, client_module, enroll_cert, load_pem, make_csr, new_key, post, write_identity

OID_AES128_CBC = "2.16.840.1.101.3.4.1.2"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_KEY_PACKAGE = "2.16.840.1.101.2.1.2.78.5"
ENCRYPTED_TYPE = "application/pkcs7-mime; smime-type=server-generated-key"
CERTS_TYPE = "application/pkcs7-mime; smime-type=certs-only"


def keygen(server, csr_der, **kw):
    return post(server, "serverkeygen", b64(csr_der), **kw)


def parts_of(response):
    """[(content type, headers dict, DER)] of a multipart/mixed answer, read with the stdlib MIME parser."""
    assert response.status_code == 200, response.text
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/mixed; boundary=")
    raw = b"MIME-Version: 1.0\r\nContent-Type: " + content_type.encode() + b"\r\n\r\n" + response.content
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    assert message.is_multipart() and not message.defects
    parts = []
    for part in message.iter_parts():
        text = part.get_payload(decode=False)
        smime_type = part.get_param("smime-type")
        content_type = part.get_content_type() + ("; smime-type=%s" % smime_type if smime_type else "")
        parts.append((content_type, dict(part.items()), base64.b64decode("".join(text.split()), validate=True)))
    return parts


def key_and_cert(response):
    """(private key, certificate) of a plain (not encrypted) answer; asserts they belong together."""
    found = {content_type: der for content_type, dummy, der in parts_of(response)}
    assert set(found) == {"application/pkcs8", CERTS_TYPE}
    key = serialization.load_der_private_key(found["application/pkcs8"], password=None)
    (cert,) = pkcs7.load_der_pkcs7_certificates(found[CERTS_TYPE])
    assert cert.public_key() == key.public_key()
    return key, cert


@pytest.fixture(scope="module")
def rsa_identity(shared_server, tmp_path_factory):
    """(cert, key, (certfile, keyfile)) of an RSA client certificate from the default CA."""
    cert, key = enroll_cert(shared_server, key=new_key("rsa"), common_name="kt.example.test")
    return cert, key, write_identity(tmp_path_factory.mktemp("rsa-id"), cert, key)


def ski(cert):
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_plain_pkcs8_answer(server):
    csr_key = new_key()
    response = keygen(server, make_csr(csr_key, common_name="kg.example.test", dns=("kg.example.test",)))
    body = response.content
    assert b"\n" in body and body.count(b"\n") == body.count(b"\r\n")  # CRLF line ends
    parts = parts_of(response)
    assert [p[0] for p in parts] == ["application/pkcs8", CERTS_TYPE]
    assert all(p[1]["Content-Transfer-Encoding"] == "base64" for p in parts)
    key, cert = key_and_cert(response)
    assert key.public_key() != csr_key.public_key()  # the CSR's key is ignored
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert parts[0][2] == key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    cert.verify_directly_issued_by(load_pem(server.ca_path))
    assert cert.subject.rfc4514_string() == "CN=kg.example.test"
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "kg.example.test"]
    entry = server.requests()[-1]
    assert (entry["op"], entry["status"], entry["auth"]) == ("serverkeygen", 200, "basic")


@pytest.mark.parametrize("kind", ["ec-p384", "rsa-2048", "ed25519"])
def test_key_kind_follows_the_csr(server, kind):
    csr_key = {"ec-p384": lambda: ec.generate_private_key(ec.SECP384R1()), "rsa-2048": lambda: new_key("rsa"),
               "ed25519": ed25519.Ed25519PrivateKey.generate}[kind]()
    algorithm = None if kind == "ed25519" else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(csr_key, algorithm)
    key, dummy = key_and_cert(keygen(server, csr.public_bytes(serialization.Encoding.DER), label="web"))
    expected = {"ec-p384": ec.EllipticCurvePrivateKey, "rsa-2048": rsa.RSAPrivateKey, "ed25519": ed25519.Ed25519PrivateKey}[kind]
    assert isinstance(key, expected) and key.public_key() != csr_key.public_key()
    if kind == "ec-p384":
        assert key.curve.name == "secp384r1"
    if kind == "rsa-2048":
        assert key.key_size == 2048


def test_order_eol_and_cte_knobs(server):
    server.set_config(serverkeygen_order="cert-first", serverkeygen_eol="lf", serverkeygen_cte=False)
    response = keygen(server, make_csr(new_key()))
    assert b"\r" not in response.content
    parts = parts_of(response)
    assert [p[0] for p in parts] == [CERTS_TYPE, "application/pkcs8"]
    assert not any("Content-Transfer-Encoding" in p[1] for p in parts)
    key_and_cert(response)


@pytest.mark.parametrize("kind, key_format, expected", [("rsa", "pkcs1", "traditional"), ("ec", "sec1", "traditional"),
                                                        ("rsa", "traditional", "traditional"), ("ec", "pkcs1", "pkcs8")])
def test_key_format_knob(server, kind, key_format, expected):
    server.set_config(serverkeygen_key_format=key_format)
    response = keygen(server, make_csr(new_key(kind)))
    key, dummy = key_and_cert(response)
    der = parts_of(response)[0][2]
    private_format = serialization.PrivateFormat.TraditionalOpenSSL if expected == "traditional" else serialization.PrivateFormat.PKCS8
    assert der == key.private_bytes(serialization.Encoding.DER, private_format, serialization.NoEncryption())


def encrypted_parts(response, identity):
    """(decrypted plaintext, certificate, EnvelopedData) of an encrypted answer."""
    found = {content_type: der for content_type, dummy, der in parts_of(response)}
    assert set(found) == {ENCRYPTED_TYPE, CERTS_TYPE}
    cert, key = identity[0], identity[1]
    plaintext = pkcs7.pkcs7_decrypt_der(found[ENCRYPTED_TYPE], cert, key, [])
    info, dummy = decoder.decode(found[ENCRYPTED_TYPE], asn1Spec=rfc5652.ContentInfo())
    assert str(info["contentType"]) == "1.2.840.113549.1.7.3"
    enveloped, dummy = decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.EnvelopedData())
    (issued,) = pkcs7.load_der_pkcs7_certificates(found[CERTS_TYPE])
    return plaintext, issued, enveloped


def key_from_package(der):
    package, rest = decoder.decode(der, asn1Spec=rfc5958.AsymmetricKeyPackage())
    assert not rest and len(package) == 1
    return serialization.load_der_private_key(encoder.encode(package[0]), password=None)


@pytest.mark.parametrize("form", ["pkcs8", "key-package", "signed-key-package"])
def test_key_encrypted_to_the_client_certificate(server, rsa_identity, form):
    server.set_config(serverkeygen_encrypted_content=form)
    cert, dummy, files = rsa_identity
    csr = csr_with_attributes(new_key(), [key_id_attribute(ski(cert)), capabilities_attribute(OID_AES256_CBC, OID_RSA_ENCRYPTION)])
    response = keygen(server, csr, auth=None, cert=files)
    plaintext, issued, enveloped = encrypted_parts(response, rsa_identity)
    if form == "pkcs8":
        key = serialization.load_der_private_key(plaintext, password=None)
    elif form == "key-package":
        key = key_from_package(plaintext)
    else:
        signed = Response(plaintext)
        assert signed.signature_ok and signed.signer_cert == load_pem(server.ca_path)
        assert signed.content_type == OID_KEY_PACKAGE
        key = key_from_package(signed.content)
    assert issued.public_key() == key.public_key()
    algorithm = str(enveloped["encryptedContentInfo"]["contentEncryptionAlgorithm"]["algorithm"])
    assert algorithm == OID_AES256_CBC
    recipient = enveloped["recipientInfos"][0]["ktri"]
    assert int(recipient["rid"]["issuerAndSerialNumber"]["serialNumber"]) == cert.serial_number


def test_aes128_when_the_client_only_offers_it(server, rsa_identity):
    cert, dummy, files = rsa_identity
    csr = csr_with_attributes(new_key(), [key_id_attribute(ski(cert)), capabilities_attribute(OID_AES128_CBC, OID_RSA_ENCRYPTION)])
    plaintext, issued, enveloped = encrypted_parts(keygen(server, csr, cert=files), rsa_identity)
    assert str(enveloped["encryptedContentInfo"]["contentEncryptionAlgorithm"]["algorithm"]) == OID_AES128_CBC
    assert serialization.load_der_private_key(plaintext, password=None).public_key() == issued.public_key()


def test_key_id_matching_no_presented_certificate(server, rsa_identity):
    cert, dummy, files = rsa_identity
    wrong = csr_with_attributes(new_key(), [key_id_attribute(b"\x01" * 20)])
    response = keygen(server, wrong, auth=None, cert=files)
    assert response.status_code == 400 and "asymmDecryptKeyID" in response.text
    right = csr_with_attributes(new_key(), [key_id_attribute(ski(cert))])
    assert keygen(server, right).status_code == 400  # Basic auth only: no certificate to encrypt to


def test_ec_recipient_is_refused(server, tmp_path):
    cert, key = enroll_cert(server, common_name="ec-kt.example.test")
    csr = csr_with_attributes(new_key(), [key_id_attribute(ski(cert))])
    response = keygen(server, csr, auth=None, cert=write_identity(tmp_path, cert, key))
    assert response.status_code == 400 and "RSA" in response.text


@pytest.mark.parametrize("csr_key", [lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
                                     lambda: ec.generate_private_key(ec.SECP256K1())], ids=["rsa-1024", "secp256k1"])
def test_unsupported_key_kinds(server, csr_key):
    response = keygen(server, make_csr(csr_key()))
    assert response.status_code == 400 and "not generated here" in response.text


def test_request_errors(server):
    csr = make_csr(new_key())
    assert keygen(server, csr, auth=None).status_code == 401
    assert keygen(server, csr, content_type="application/pkcs7-mime").status_code == 415
    bad = bytearray(csr)
    bad[-5] ^= 0x01
    assert keygen(server, bytes(bad)).status_code == 400  # the CSR signature is still checked
    assert post(server, "serverkeygen", b"%%%").status_code == 400


def test_pending(server):
    server.set_config(pending={"after_polls": 1}, retry_after=4)
    csr = make_csr(new_key())
    response = keygen(server, csr)
    assert response.status_code == 202 and response.headers["Retry-After"] == "4"
    key_and_cert(keygen(server, csr))


def test_faults(server):
    csr = make_csr(new_key())
    server.set_fault("serverkeygen", "wrong_key", count=1)
    found = {content_type: der for content_type, dummy, der in parts_of(keygen(server, csr))}
    key = serialization.load_der_private_key(found["application/pkcs8"], password=None)
    (cert,) = pkcs7.load_der_pkcs7_certificates(found[CERTS_TYPE])
    assert cert.public_key() != key.public_key()
    server.set_fault("serverkeygen", "other_ca", count=1)
    key, cert = key_and_cert(keygen(server, csr))
    assert cert.issuer == load_pem(server.ca_path).subject
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(load_pem(server.ca_path))
    server.set_fault("serverkeygen", "truncated", count=1)
    response = keygen(server, csr)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    assert not response.content.rstrip().endswith(b"--")
    server.set_fault("serverkeygen", "http500", count=1)
    assert keygen(server, csr).status_code == 500
    key_and_cert(keygen(server, csr))
    assert [e["fault"] for e in server.requests()] == ["wrong_key", "other_ca", "truncated", "http500", None]


@pytest.mark.parametrize("config", [
    {},
    {"serverkeygen_order": "cert-first", "serverkeygen_eol": "lf", "serverkeygen_cte": False, "serverkeygen_key_format": "sec1"},
    {"serverkeygen_encrypted_content": "signed-key-package"},
    {"serverkeygen_encrypted_content": "key-package", "response_wrap": 0},
], ids=["plain", "knobs", "signed-key-package", "key-package"])
def test_client_module_interoperates(server, rsa_identity, config):
    client = client_module("serverkeygen")
    server.set_config(**config)
    cert, key, files = rsa_identity
    encrypted = "serverkeygen_encrypted_content" in config
    attributes = [key_id_attribute(ski(cert)), capabilities_attribute(OID_AES256_CBC, OID_RSA_ENCRYPTION)] if encrypted else []
    response = keygen(server, csr_with_attributes(new_key(), attributes), cert=files)
    result = client.parse_serverkeygen_response(response.headers["Content-Type"], response.content,
                                                decrypt_key=(cert, key) if encrypted else None)
    assert result["encrypted"] is encrypted
    assert client.check_key_matches(result["private_key"], result["certificates"]) in result["certificates"]


def test_simpleenroll_is_unchanged(server):
    """Sanity: the helpers shared with simpleenroll still give one certificate for the CSR key."""
    key = new_key()
    response = post(server, "simpleenroll", b64(make_csr(key)))
    assert certs_from_body(response.content)[0].public_key() == key.public_key()
