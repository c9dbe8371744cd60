"""Client authentication: HTTP Basic (RFC 7617) and TLS client certificates.

The TLS layer asks for a client certificate (CERT_OPTIONAL) with every CA of
the server as a trust anchor and without OpenSSL's time check, so that an
expired certificate reaches this module and gets a clean 403 instead of a
failed handshake.  A certificate from a CA the server does not know at all
still fails the TLS handshake.
"""

import base64
import binascii
import hmac

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from .ca import utcnow

REALM = "estlab"
CHALLENGE = 'Basic realm="%s"' % REALM


def check_basic(header, users):
    """Return "absent", "ok" or "invalid" for an Authorization header value."""
    if header is None:
        return "absent"
    scheme, dummy, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return "invalid"
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return "invalid"
    user, sep, password = decoded.partition(":")
    if not sep or user not in users:
        return "invalid"
    if hmac.compare_digest(users[user].encode("utf-8"), password.encode("utf-8")):
        return "ok"
    return "invalid"


class ClientCert:
    """Result of checking the TLS client certificate of a connection."""

    def __init__(self, cert=None, issuer_ca=None, problem=None):
        self.cert = cert
        self.issuer_ca = issuer_ca
        self.problem = problem

    @property
    def present(self):
        return self.cert is not None or self.problem is not None

    @property
    def valid(self):
        return self.cert is not None and self.problem is None


def check_client_cert(der, cas):
    """Check the peer certificate DER (or None) against the list of CertificateAuthority.

    A certificate issued by the intermediate of a CA counts as issued by that CA (issuer_ca).
    """
    if not der:
        return ClientCert()
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return ClientCert(problem="client certificate cannot be parsed")
    now = utcnow()
    if cert.not_valid_after_utc < now:
        return ClientCert(cert, problem="client certificate expired")
    if cert.not_valid_before_utc > now:
        return ClientCert(cert, problem="client certificate not yet valid")
    for ca in cas:
        for issuer in ca.issuer_certs():  # the CA itself, then its intermediate if it has one
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return ClientCert(cert, issuer_ca=ca)
    return ClientCert(cert, problem="client certificate not issued by a CA of this server")
