# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Distribution of CA certificates (RFC 7030 §4.1) and trust bootstrap (§4.1.1)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import tempfile

from . import codecs
from .certinfo import fingerprint, normalize_fingerprint
from .errors import ESTError
from .transport import ESTTransport


class CACertsResult:
    """What /cacerts gave us: the accepted certificates and how we came to trust them."""

    def __init__(self, certs, bootstrapped=False, pinned=None, dropped=None):
        self.certs = certs
        self.bootstrapped = bootstrapped
        self.pinned = pinned
        self.dropped = dropped or []


def fetch_cacerts(transport):
    """GET /cacerts and return its certificates in the order served."""
    response = transport.get('cacerts')
    if response.status == 204 or not response.body:
        raise ESTError('bad_response', 'the server answered /cacerts with no certificates (HTTP %d)' % response.status)
    if not codecs.media_type_is(response.content_type, codecs.PKCS7_MEDIA_TYPES):
        raise ESTError('unexpected_content_type', 'the /cacerts answer has Content-Type %r, expected application/pkcs7-mime'
                       % response.content_type)
    return codecs.load_certs_only(codecs.decode_body(response.body, '/cacerts'), '/cacerts answer')


def anchor_to_pin(certs, pinned_fingerprint):
    """Split ``certs`` into those that chain to the pinned certificate and those that do not.

    The pinned certificate is accepted first; then any certificate signed by an accepted one,
    until nothing changes. This follows chains and the RFC 7030 §4.1.3 rollover certificates
    (NewWithOld is signed by the old root, NewWithNew by the key NewWithOld certifies), and
    it keeps a certificate slipped in beside the genuine root from being trusted.
    """
    pinned = normalize_fingerprint(pinned_fingerprint)
    prints = [fingerprint(c) for c in certs]
    if pinned not in prints:
        raise ESTError('bootstrap_mismatch', 'none of the CA certificates the server sent has the expected SHA-256 fingerprint '
                       '%s; the server sent %s' % (pinned, ', '.join(prints) or 'nothing'),
                       details={'expected_fingerprint': pinned, 'received_fingerprints': prints})
    accepted = [prints.index(pinned)]
    grew = True
    while grew:
        grew = False
        for i, cert in enumerate(certs):
            if i in accepted:
                continue
            if any(_issued_by(cert, certs[j]) for j in accepted):
                accepted.append(i)
                grew = True
    keep = [c for i, c in enumerate(certs) if i in accepted]
    dropped = [c for i, c in enumerate(certs) if i not in accepted]
    return keep, dropped


def _issued_by(cert, issuer):
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # wrong name, bad signature, unsupported algorithm: not issued by it
        return False
    return True


def get_cacerts(connection, expected_fingerprint=None):
    """Fetch the CA certificates with the trust ``connection`` describes.

    ``connection`` holds :class:`ESTTransport` keyword arguments. Without ``ca_path`` and with
    ``expected_fingerprint`` this is a bootstrap (RFC 7030 §4.1.1): the first request does not
    verify the server; the answer is accepted only if it holds the pinned certificate, and
    then the server's TLS certificate must verify against the accepted CA certificates
    (with host name checking) on a second request, which must return the same certificates.
    """
    if expected_fingerprint is None or connection.get('ca_path'):
        certs = fetch_cacerts(ESTTransport(**connection))
        if expected_fingerprint is None:
            return CACertsResult(certs)
        keep, dropped = anchor_to_pin(certs, expected_fingerprint)
        return CACertsResult(keep, pinned=normalize_fingerprint(expected_fingerprint), dropped=dropped)

    first = fetch_cacerts(ESTTransport(bootstrap=True, **connection))
    keep, dropped = anchor_to_pin(first, expected_fingerprint)
    workdir = tempfile.mkdtemp(prefix='pki_est_bootstrap_')
    try:
        bundle = os.path.join(workdir, 'ca.pem')
        with open(bundle, 'w') as handle:
            handle.write(codecs.certs_to_pem(keep))
        verified = dict(connection, ca_path=bundle)
        try:
            second = fetch_cacerts(ESTTransport(**verified))
        except ESTError as exc:
            if exc.kind == 'tls':
                raise ESTError('bootstrap_mismatch', 'the CA certificate matched the expected fingerprint, but the server\'s '
                               'TLS certificate does not verify against it (RFC 7030 §4.1.1): %s' % exc.message)
            raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if sorted(fingerprint(c) for c in second) != sorted(fingerprint(c) for c in first):
        raise ESTError('bootstrap_mismatch', 'the server returned different CA certificates over the verified connection')
    return CACertsResult(keep, bootstrapped=True, pinned=normalize_fingerprint(expected_fingerprint), dropped=dropped)
