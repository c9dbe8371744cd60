# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Message encodings for EST (RFC 7030 §4, RFC 8951 §3).

Liberal in what we accept: base64 with or without line breaks, CR/LF, trailing whitespace
or NUL, any Content-Transfer-Encoding header (RFC 8951 says receivers ignore it), and even a
raw DER or PEM body from servers that skip the base64 step. Exact in what we send: base64
in 64-column lines ending with a newline.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import re
import warnings

from .errors import ESTError

# Media types (type/subtype, lower case) we take as a PKCS#7 certs-only answer. The RFC
# type comes first; the others are sent by servers in the wild.
PKCS7_MEDIA_TYPES = ('application/pkcs7-mime', 'application/x-pkcs7-mime', 'application/pkcs7-certificates',
                     'application/x-pkcs7-certificates')
CSRATTRS_MEDIA_TYPES = ('application/csrattrs',)
PKCS10_MEDIA_TYPE = 'application/pkcs10'

_BASE64_JUNK = re.compile(rb'[\s\x00]+')
_PEM_BLOCK = re.compile(rb'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.DOTALL)


def parse_media_type(value):
    """Split a Content-Type header into ``('type/subtype', {param: value})``.

    Type, subtype and parameter names are compared case-insensitively (RFC 2045), so they
    come back in lower case; quoted parameter values are unquoted.
    """
    if not value:
        return '', {}
    parts = value.split(';')
    media = parts[0].strip().lower()
    params = {}
    for part in parts[1:]:
        if '=' not in part:
            continue
        name, _sep, val = part.partition('=')
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params[name.strip().lower()] = val
    return media, params


def media_type_is(value, accepted):
    """True when the Content-Type ``value`` names one of the ``accepted`` type/subtypes."""
    media, _params = parse_media_type(value)
    return media in accepted


def _looks_like_der(data):
    """True when ``data`` is exactly one DER SEQUENCE (the first byte and the length agree)."""
    if len(data) < 2 or data[0:1] != b'\x30':
        return False
    first = data[1]
    if first < 0x80:
        return 2 + first == len(data)
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return False
    length = int.from_bytes(data[2:2 + count], 'big')
    return 2 + count + length == len(data)


def decode_body(body, what='response'):
    """Return the DER bytes carried by an EST message body.

    Accepts base64 in any line layout (RFC 8951), raw DER, and a PEM block. Raises
    ``ESTError('bad_response')`` naming ``what`` for an empty, truncated or garbage body.
    """
    if body is None or not body.strip(b' \t\r\n\x00'):
        raise ESTError('bad_response', 'the %s body is empty' % what)
    if _looks_like_der(body):
        return body
    stripped = body.rstrip(b' \t\r\n\x00')
    if _looks_like_der(stripped):
        return stripped
    match = _PEM_BLOCK.search(body)
    if match:
        body = match.group(2)
    cleaned = _BASE64_JUNK.sub(b'', body)
    # Be tolerant of missing padding, strict about the alphabet.
    cleaned += b'=' * (-len(cleaned) % 4)
    try:
        der = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ESTError('bad_response', 'the %s body is not valid base64 (%d bytes, starting %r)'
                       % (what, len(body), bytes(body[:16])))
    if not der:
        raise ESTError('bad_response', 'the %s body decodes to nothing' % what)
    return der


def encode_body(der):
    """Base64 for sending: 64-column lines, LF line ends, ending with a newline."""
    text = base64.b64encode(der)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return b'\n'.join(lines) + b'\n'


def load_certs_only(der, what='response'):
    """Certificates from a DER PKCS#7 certs-only message, in the order the server sent them."""
    # Imported here so that paths that never parse a certificate do not pay for it.
    from cryptography.hazmat.primitives.serialization import pkcs7
    try:
        with warnings.catch_warnings():
            # Servers need not sort the certificates' SET OF (BER, not DER); cryptography parses
            # that but warns, and a warning has no place in a module's output.
            warnings.simplefilter('ignore', UserWarning)
            certs = pkcs7.load_der_pkcs7_certificates(der)
    except ValueError as exc:
        raise ESTError('bad_response', 'the %s is not a PKCS#7 certs-only message: %s' % (what, _short(exc)))
    except Exception as exc:  # cryptography raises a few other types on odd input
        raise ESTError('bad_response', 'the %s could not be parsed as PKCS#7: %s' % (what, _short(exc)))
    if not certs:
        raise ESTError('bad_response', 'the %s holds no certificates' % what)
    return list(certs)


def _short(exc):
    text = str(exc) or exc.__class__.__name__
    return text if len(text) <= 200 else text[:200] + '...'


def certs_to_pem(certs):
    """A PEM bundle (text) of ``certs`` in the given order."""
    from cryptography.hazmat.primitives.serialization import Encoding
    return ''.join(cert.public_bytes(Encoding.PEM).decode('ascii') for cert in certs)


def load_pem_certs(data, what='certificate file'):
    """All certificates in a PEM text or bytes; raises ``ESTError('invalid_input')`` on garbage."""
    from cryptography import x509
    if isinstance(data, str):
        data = data.encode('utf-8')
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) in (b'CERTIFICATE', b'X509 CERTIFICATE', b'TRUSTED CERTIFICATE')]
    if not blocks:
        raise ESTError('invalid_input', 'the %s holds no PEM certificate' % what)
    certs = []
    for block in blocks:
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise ESTError('invalid_input', 'the %s holds an unreadable certificate: %s' % (what, _short(exc)))
    return certs


def public_key_der(public_key):
    """SubjectPublicKeyInfo DER of a ``cryptography`` public key, for comparing keys."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def find_certificate_for_key(certs, public_key):
    """The certificate in ``certs`` whose public key is ``public_key``, or None.

    The issued certificate is chosen by its key, never by its position in the PKCS#7.
    """
    wanted = public_key_der(public_key)
    for cert in certs:
        if public_key_der(cert.public_key()) == wanted:
            return cert
    return None
