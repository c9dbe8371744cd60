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
    """Give each certificate of a /cacerts answer its role (RFC 7030 §4.1.3, RFC 4210 §4.4).

    Returns a list of role names in the order of ``certs``; the result does not depend on that
    order. The roles:

    ``root``
        The current root, the trust anchor the other certificates are validated with: of the
        self-signed certificates, the one with the latest notAfter (RFC 7030 §4.1.3, "the EST
        CA's most recent self-signed certificate ... has the latest NotAfter date", and "the
        most recent CA certificate as the TA"); ties go to the latest notBefore, then to the
        larger SHA-256 fingerprint (as hex text). During a root key update that is
        NewWithNew when the server sends it (RFC 4210 §4.4.1: once the CA has made the four
        certificates, its old private key "is no longer required"; the new key is the one in
        use, the old public key lives on in OldWithOld for those who still hold it). Only
        this certificate (and copies of it) is ``root``, so ``root_fingerprint`` names exactly
        one certificate, whatever the order of the answer.
    ``rollover_old_with_old``
        Another self-signed certificate of the same CA: the previous root (OldWithOld), which
        hosts that have not yet moved still hold. "Same CA" means the same subject name or
        key as the root, or linked to it (directly or through other such certificates) by a
        cross certificate in the answer: one key certified by the other, either way.
    ``other_root``
        A self-signed certificate of an unrelated CA.
    ``rollover_new_with_old``
        NewWithOld, the new key certified by the old one. With an old root in the answer:
        the root's key, signed by an old root. Without one (the RFC 7030 §4.1.3 set of
        OldWithOld, OldWithNew and NewWithOld, NewWithNew being optional, where the root is
        OldWithOld): another key, signed by the root, whose subject is the root's or whose key
        certified the root's key.
    ``rollover_old_with_new``
        OldWithNew, the old key certified by the new one. With an old root in the answer: an
        old root's key, signed by the root. Without one: the root's key, signed by another key.
    ``intermediate``
        Anything else (subordinate CA certificates, cross certificates of other CAs).

    When the answer holds neither an old root nor NewWithNew, the root is taken to be the old
    root, as in the RFC 7030 set above: an answer of NewWithNew, OldWithNew and NewWithOld
    (without OldWithOld) is read as if NewWithNew were OldWithOld, because nothing in it tells
    the two keys apart.
    """
    from .codecs import public_key_der
    keys = [public_key_der(c.public_key()) for c in certs]
    prints = [fingerprint(c) for c in certs]
    self_signed = [i for i, c in enumerate(certs) if is_self_signed(c)]
    roles = ['intermediate'] * len(certs)
    if not self_signed:
        return roles
    # The latest notAfter; equal dates must not leave the choice to the order of the answer.
    current = max(self_signed, key=lambda i: (not_after(certs[i]), not_before(certs[i]), prints[i]))
    root, root_key = certs[current], keys[current]
    signed = _Signatures(certs)
    # The CA's other self-signed certificates: same name or key as the root, or linked by cross certificates.
    family = {current}
    grew = True
    while grew:
        grew = False
        for i in self_signed:
            if i in family:
                continue
            if any(_same_ca(certs, keys, signed, i, j) for j in family):
                family.add(i)
                grew = True
    old_roots = [i for i in self_signed if i in family and keys[i] != root_key]
    old_keys = set(keys[i] for i in old_roots)
    for i in self_signed:
        if prints[i] == prints[current]:
            roles[i] = 'root'  # the same root sent twice is still the root
        else:
            roles[i] = 'rollover_old_with_old' if i in family else 'other_root'
    for i, cert in enumerate(certs):
        if i in self_signed:
            continue
        if keys[i] == root_key:
            if any(signed(i, j) for j in old_roots):
                roles[i] = 'rollover_new_with_old'
            elif not old_roots:
                roles[i] = 'rollover_old_with_new'
        elif keys[i] in old_keys:
            if signed(i, current):
                roles[i] = 'rollover_old_with_new'
        elif not old_roots and signed(i, current):
            certified_root = any(keys[k] == root_key and signed(k, i) for k in range(len(certs)) if k != i)
            if cert.subject == root.subject or certified_root:
                roles[i] = 'rollover_new_with_old'
    return roles


class _Signatures:
    """``signed(i, j)``: certificate ``i`` was signed with the key of certificate ``j`` (cached)."""

    def __init__(self, certs):
        self.certs = certs
        self.known = {}

    def __call__(self, i, j):
        if (i, j) not in self.known:
            self.known[(i, j)] = i != j and _signed_by(self.certs[i], self.certs[j])
        return self.known[(i, j)]


def _same_ca(certs, keys, signed, i, j):
    """Self-signed certificates ``i`` and ``j`` belong to one CA (see :func:`classify_ca_certs`)."""
    if certs[i].subject == certs[j].subject or keys[i] == keys[j]:
        return True
    for k in range(len(certs)):
        if keys[k] == keys[i] and signed(k, j):
            return True   # i's key certified by j
        if keys[k] == keys[j] and signed(k, i):
            return True   # j's key certified by i
    return False


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
