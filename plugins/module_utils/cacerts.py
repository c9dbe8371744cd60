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
    """What /cacerts gave us: the accepted certificates and how we came to trust them.

    ``anchors`` are the certificates the others were validated to (the pinned one, or the
    answer's own roots when it came over a verified connection); ``dropped`` holds the
    certificates that failed RFC 5280 path validation and ``reasons`` why, in the same order.
    """

    def __init__(self, certs, bootstrapped=False, pinned=None, dropped=None, anchors=None):
        self.certs = certs
        self.bootstrapped = bootstrapped
        self.pinned = pinned
        self.dropped = [cert for cert, _reason in dropped or []]
        self.reasons = [reason for _cert, reason in dropped or []]
        self.anchors = anchors if anchors is not None else list(certs)


def fetch_cacerts(transport):
    """GET /cacerts and return its certificates in the order served (nothing validated yet)."""
    response = transport.get('cacerts')
    if response.status == 204 or not response.body:
        raise ESTError('bad_response', 'the server answered /cacerts with no certificates (HTTP %d)' % response.status)
    if not codecs.media_type_is(response.content_type, codecs.PKCS7_MEDIA_TYPES):
        raise ESTError('unexpected_content_type', 'the /cacerts answer has Content-Type %r, expected application/pkcs7-mime'
                       % response.content_type)
    return codecs.load_certs_only(codecs.decode_body(response.body, '/cacerts'), '/cacerts answer')


def fetch_trusted_cacerts(transport, now=None):
    """GET /cacerts over a verified connection; a :class:`CACertsResult` of what validates."""
    return validate_answer(fetch_cacerts(transport), now)


def answer_anchors(certs, now=None):
    """The trust anchors of a /cacerts answer that came over a verified connection.

    RFC 7030 4.1.3 validates the other certificates with the CA's most recent self-signed
    certificate as the trust anchor; during a rollover both OldWithOld and NewWithNew are
    self-signed, and either is a fine anchor (each validates the other's rollover
    certificates through the cross certificates). Only self-signed CA certificates valid now qualify. An answer without any
    (a server that sends just its issuing CA) anchors on the certificates no other
    certificate of the answer issued.
    """
    from .pathvalid import usable_anchor
    roots = [c for c in certs if c.subject == c.issuer and usable_anchor(c, now)]
    if roots:
        return roots
    return [c for c in certs if not any(other is not c and _issued_by(c, other) for other in certs) and usable_anchor(c, now)]


def validate_answer(certs, now=None, anchors=None):
    """:class:`CACertsResult` of ``certs``: what validates to ``anchors`` (default: :func:`answer_anchors`)."""
    from .pathvalid import keep_valid_cas
    anchors = answer_anchors(certs, now) if anchors is None else anchors
    if not anchors:
        raise ESTError('verification', 'none of the %d CA certificates of the /cacerts answer can be a trust anchor (%s): '
                       'each is expired, not yet valid or not a CA certificate'
                       % (len(certs), '; '.join(c.subject.rfc4514_string() for c in certs)))
    kept, dropped = keep_valid_cas(certs, anchors, now)
    return CACertsResult(kept, dropped=dropped, anchors=anchors)


def anchor_to_pin(certs, pinned_fingerprint, now=None):
    """The certificates of ``certs`` that validate to the pinned one: ``(kept, dropped)``.

    The pinned certificate is the trust anchor; every other certificate must pass RFC 5280
    path validation to it (RFC 7030 4.1.3): a CA certificate, with keyCertSign, within path
    length, valid now. This follows chains and the 4.1.3 rollover certificates, and it keeps
    a certificate slipped in beside the genuine root from being trusted, even one that an
    end-entity certificate of the same CA "issued". ``dropped`` holds ``(certificate, reason)``.
    """
    from .pathvalid import keep_valid_cas
    pinned = normalize_fingerprint(pinned_fingerprint)
    prints = [fingerprint(c) for c in certs]
    if pinned not in prints:
        raise ESTError('bootstrap_mismatch', 'none of the CA certificates the server sent has the expected SHA-256 fingerprint '
                       '%s; the server sent %s' % (pinned, ', '.join(prints) or 'nothing'),
                       details={'expected_fingerprint': pinned, 'received_fingerprints': prints})
    anchor = certs[prints.index(pinned)]
    return keep_valid_cas(certs, [anchor], now)


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
            return validate_answer(certs)
        keep, dropped = anchor_to_pin(certs, expected_fingerprint)
        return CACertsResult(keep, pinned=normalize_fingerprint(expected_fingerprint), dropped=dropped,
                             anchors=[c for c in keep if fingerprint(c) == normalize_fingerprint(expected_fingerprint)])

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
    return CACertsResult(keep, bootstrapped=True, pinned=normalize_fingerprint(expected_fingerprint), dropped=dropped,
                         anchors=[c for c in keep if fingerprint(c) == normalize_fingerprint(expected_fingerprint)])
