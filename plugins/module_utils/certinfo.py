# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts about certificates: names, validity, fingerprints, and CA roles (RFC 7030 §4.1.3)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import re

from .errors import ESTError

_HEX = re.compile(r'^[0-9a-f]{64}$')


def normalize_fingerprint(value):
    """A SHA-256 fingerprint as 64 lower-case hex digits; colons, spaces and a ``sha256:`` prefix are optional."""
    text = (value or '').strip().lower()
    if text.startswith('sha256:'):
        text = text[len('sha256:'):]
    elif text.startswith('sha256 '):
        text = text[len('sha256 '):]
    text = re.sub(r'[\s:]', '', text)
    if not _HEX.match(text):
        raise ESTError('invalid_input', 'expected_fingerprint must be a SHA-256 fingerprint (64 hex digits, colons optional), got %r' % value)
    return text


def fingerprint(cert):
    """SHA-256 of the certificate's DER, lower-case hex without colons."""
    from cryptography.hazmat.primitives.serialization import Encoding
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def colon_hex(hex_text):
    """``ab:cd:...`` upper case, the way most tools print fingerprints."""
    return ':'.join(hex_text[i:i + 2] for i in range(0, len(hex_text), 2)).upper()


def _utc(cert, name):
    value = getattr(cert, name + '_utc', None)
    if value is None:  # cryptography < 42
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def not_before(cert):
    return _utc(cert, 'not_valid_before')


def not_after(cert):
    return _utc(cert, 'not_valid_after')


def _iso(value):
    return value.strftime('%Y-%m-%dT%H:%M:%SZ')


def is_self_signed(cert):
    """True when ``cert`` names itself as issuer and its signature verifies with its own key."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except AttributeError:  # cryptography < 40 cannot check; trust the names
        return True
    except Exception:  # InvalidSignature, or a signature algorithm it cannot check
        return False
    return True


def classify_ca_certs(certs):
    """Give each certificate of a /cacerts answer its role (RFC 7030 §4.1.3).

    Returns a list of role names in the order of ``certs``: ``root`` for the current root
    (OldWithOld, the oldest self-signed certificate), ``rollover_new_with_new`` for a younger
    self-signed root, ``rollover_old_with_new`` for a certificate of the current root's key
    signed by another key, ``rollover_new_with_old`` for a certificate the current root signed
    for a new key of the same CA name (or for the key of a NewWithNew), and ``intermediate``
    for anything else. The server need not send NewWithNew (§4.1.3 makes it optional).
    """
    from .codecs import public_key_der
    keys = [public_key_der(c.public_key()) for c in certs]
    prints = [fingerprint(c) for c in certs]
    self_signed = [i for i, c in enumerate(certs) if is_self_signed(c)]
    roles = ['intermediate'] * len(certs)
    if not self_signed:
        return roles
    current = min(self_signed, key=lambda i: not_before(certs[i]))
    root = certs[current]
    new_keys = set()
    for i in self_signed:
        if prints[i] == prints[current]:
            roles[i] = 'root'  # the same root sent twice is still the root
        else:
            roles[i] = 'rollover_new_with_new'
            new_keys.add(keys[i])
    for i, cert in enumerate(certs):
        if i in self_signed:
            continue
        if keys[i] == keys[current]:
            roles[i] = 'rollover_old_with_new'
        elif keys[i] in new_keys or (cert.subject == root.subject and _signed_by(cert, root)):
            roles[i] = 'rollover_new_with_old'
    return roles


def _signed_by(cert, issuer):
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # pylint: disable=broad-except
        return False
    return True


def cert_facts(cert, now=None):
    """The facts modules return for one certificate."""
    from cryptography import x509
    now = now or datetime.datetime.now(datetime.timezone.utc)
    facts = {
        'subject': cert.subject.rfc4514_string(),
        'issuer': cert.issuer.rfc4514_string(),
        'serial': '%X' % cert.serial_number,
        'not_before': _iso(not_before(cert)),
        'not_after': _iso(not_after(cert)),
        'sha256_fingerprint': fingerprint(cert),
        'days_remaining': int((not_after(cert) - now).total_seconds() // 86400),
    }
    try:
        ext = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        facts['ca'] = bool(ext.value.ca)
    except x509.ExtensionNotFound:
        facts['ca'] = False
    return facts
