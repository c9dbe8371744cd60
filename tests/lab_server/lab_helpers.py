"""Client-side helpers for the lab server tests: keys, CSRs, certificates, requests.

Written against cryptography/requests only -- the lab server is tested
independently of the collection's own EST client.
"""

import base64
import datetime
import importlib
import pathlib
import sys

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PKCS10 = "application/pkcs10"
TIMEOUT = 10
COLLECTIONS_DIR = pathlib.Path(__file__).resolve().parents[2] / ".build" / "collections"


def new_key(kind="ec"):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_csr(key, common_name="device1.example.test", dns=(), key_usage=None, eku=None, extra_extensions=()):
    builder = x509.CertificateSigningRequestBuilder().subject_name(name(common_name))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for extension, critical in extra_extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def b64(der, wrap=64, eol="\n"):
    text = base64.b64encode(der).decode("ascii")
    if not wrap:
        return text
    return eol.join(text[i:i + wrap] for i in range(0, len(text), wrap)) + eol


def certs_from_body(body):
    """Certificates of a base64 certs-only PKCS#7 body (white space tolerated)."""
    der = base64.b64decode(b"".join(body.split()), validate=True)
    return pkcs7.load_der_pkcs7_certificates(der)


def load_pem(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def load_key(path):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


def write_identity(directory, cert, key, stem="client"):
    """Write cert/key PEM files for requests' cert=(certfile, keyfile)."""
    cert_path = directory / ("%s.pem" % stem)
    key_path = directory / ("%s.key" % stem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def sign_with_ca(ca_cert, ca_key, subject_cn, public_key, not_before, not_after, dns=()):
    """A client certificate signed by a CA key read from the state directory (to craft expired ones)."""
    builder = (x509.CertificateBuilder()
               .subject_name(name(subject_cn))
               .issuer_name(ca_cert.subject)
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def post(server, op, body, label=None, auth=("alice", "secret"), cert=None, content_type=PKCS10, headers=None):
    all_headers = {"Content-Type": content_type} if content_type else {}
    all_headers.update(headers or {})
    return requests.post(server.est_url(op, label), data=body, auth=auth, cert=cert, headers=all_headers,
                         verify=server.ca_path, timeout=TIMEOUT)


def get(server, op, label=None, **kw):
    return requests.get(server.est_url(op, label), verify=server.ca_path, timeout=TIMEOUT, **kw)


def enroll(server, key=None, label=None, auth=("alice", "secret"), cert=None, op="simpleenroll", **csr_kw):
    """POST a fresh CSR for key; return (response, key)."""
    key = key or new_key()
    response = post(server, op, b64(make_csr(key, **csr_kw)), label=label, auth=auth, cert=cert)
    return response, key


def enroll_cert(server, key=None, **kw):
    """Enroll and return (certificate, key); asserts 200."""
    response, key = enroll(server, key, **kw)
    assert response.status_code == 200, response.text
    certs = certs_from_body(response.content)
    assert len(certs) == 1
    return certs[0], key


def client_module(name):
    """The collection's own client module plugins/module_utils/<name> (interoperability tests only), or skip."""
    import pytest  # only the interoperability tests need it here
    if str(COLLECTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS_DIR))
    try:
        return importlib.import_module("ansible_collections.pki.est.plugins.module_utils." + name)
    except ImportError as exc:
        pytest.skip("the collection is not importable from %s: %s" % (COLLECTIONS_DIR, exc))
    return None
