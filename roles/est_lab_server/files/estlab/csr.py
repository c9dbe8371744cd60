"""Decoding and checking of application/pkcs10 request bodies.

RFC 8951 3: the body is base64 of the DER CSR whatever Content-Transfer-Encoding
says, and white space (CR, LF, space, tab) is tolerated anywhere in it.
"""

import base64
import binascii
import hashlib

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

WHITE_SPACE = b" \t\r\n\x0b\x0c"


class CsrError(ValueError):
    """The body is not an acceptable certification request; str() is the reason."""


def decode_base64_body(body):
    """Return the DER bytes of a base64 body, tolerating white space."""
    compact = body.translate(None, WHITE_SPACE)
    if not compact:
        raise CsrError("empty request body")
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CsrError("request body is not valid base64") from exc
    if not der:
        raise CsrError("request body decodes to nothing")
    return der


class CertificationRequest:
    """The parts of a checked CSR that issuance needs."""

    def __init__(self, csr):
        self.csr = csr
        self.subject = csr.subject
        self.public_key = csr.public_key()
        self.spki_der = self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        extensions = csr.extensions
        self.san = _find(extensions, x509.SubjectAlternativeName)
        self.key_usage = _find(extensions, x509.KeyUsage)
        self.eku = _find(extensions, x509.ExtendedKeyUsage)

    @property
    def key_id(self):
        """SHA-256 of the SubjectPublicKeyInfo DER, the key of the pending table."""
        return hashlib.sha256(self.spki_der).hexdigest()

    def san_names(self):
        return set(self.san.value) if self.san is not None else set()


def _find(extensions, ext_class):
    try:
        return extensions.get_extension_for_class(ext_class)
    except x509.ExtensionNotFound:
        return None


def parse_csr(der):
    """Parse DER, verify the self-signature, return a CertificationRequest."""
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise CsrError("body is not a DER PKCS#10 certification request") from exc
    try:
        signature_ok = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise CsrError("CSR signature cannot be checked: %s" % exc) from exc
    if not signature_ok:
        raise CsrError("CSR signature does not verify (no proof of possession)")
    try:
        return CertificationRequest(csr)
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise CsrError("CSR content is not usable: %s" % exc) from exc


def parse_body(body):
    return parse_csr(decode_base64_body(body))
