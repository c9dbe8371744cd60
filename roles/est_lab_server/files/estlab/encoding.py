"""Response body framing: base64 text and certs-only PKCS#7 (CMC Simple PKI Response).

Single-part base64 bodies end their lines in LF by default (configuration key
``response_eol``, "crlf" for the other form): that is how OpenSSL writes base64
and what libest reads.  multipart/mixed answers (serverkeygen.py) keep CRLF.
"""

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

PKCS7_CONTENT_TYPE = "application/pkcs7-mime; smime-type=certs-only"
CSRATTRS_CONTENT_TYPE = "application/csrattrs"

EOLS = {"crlf": b"\r\n", "lf": b"\n"}


def base64_text(der, wrap=64, eol="lf"):
    """base64 of der in lines of wrap characters (0: one line), each line ended by eol."""
    text = base64.b64encode(der)
    if not text:
        return b""
    if wrap <= 0:
        return text + EOLS[eol]
    lines = [text[i:i + wrap] for i in range(0, len(text), wrap)]
    return EOLS[eol].join(lines) + EOLS[eol]


def certs_only_der(certs):
    return pkcs7.serialize_certificates(list(certs), serialization.Encoding.DER)


def certs_only_body(certs, wrap=64, eol="lf"):
    return base64_text(certs_only_der(certs), wrap, eol)
