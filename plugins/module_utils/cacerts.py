# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Distribution of CA certificates (RFC 7030 §4.1), trust bootstrap (§4.1.1) and refresh (§4.1.2).

:func:`stored_bundle_state` decides from a bundle kept by an earlier run, without the network,
whether it may be kept (no certificate due within the refresh window); :func:`refresh_trust`
picks what verifies the server when it is asked again.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import shutil
import tempfile

from . import codecs
from .certinfo import fingerprint, normalize_fingerprint
from .errors import ESTError

# The transport class, imported on first use (see _transport): deciding that a stored bundle is
# still fresh loads neither requests nor urllib3. Tests put a fake here.
ESTTransport = None


def _transport(**kwargs):
    cls = ESTTransport
    if cls is None:
        from .transport import ESTTransport as cls
    return cls(**kwargs)


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
        certs = fetch_cacerts(_transport(**connection))
        if expected_fingerprint is None:
            return validate_answer(certs)
        keep, dropped = anchor_to_pin(certs, expected_fingerprint)
        return CACertsResult(keep, pinned=normalize_fingerprint(expected_fingerprint), dropped=dropped,
                             anchors=[c for c in keep if fingerprint(c) == normalize_fingerprint(expected_fingerprint)])

    first = fetch_cacerts(_transport(bootstrap=True, **connection))
    keep, dropped = anchor_to_pin(first, expected_fingerprint)
    workdir = tempfile.mkdtemp(prefix='pki_est_bootstrap_')
    try:
        bundle = os.path.join(workdir, 'ca.pem')
        with open(bundle, 'w') as handle:
            handle.write(codecs.certs_to_pem(keep))
        verified = dict(connection, ca_path=bundle)
        try:
            second = fetch_cacerts(_transport(**verified))
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


# -- refresh (RFC 7030 §4.1.2) -------------------------------------------------------------------------

class StoredBundle:
    """A CA bundle kept by an earlier run, judged against a refresh window.

    ``fresh`` is true when the bundle may be kept without asking the server; ``certs`` are its
    certificates in file order (empty when it holds none), ``due`` the moment it enters the
    refresh window (None without certificates) and ``reason`` says why it is not fresh.
    """

    def __init__(self, certs, due, fresh, reason=None):
        self.certs = certs
        self.due = due
        self.fresh = fresh
        self.reason = reason


def parse_refresh_before(value):
    """The window of ``refresh_before`` (the syntax of est_enroll's ``renew_before``); None when unset or empty."""
    if value is None or str(value).strip() == '':
        return None
    from .hoststate import parse_renew_before
    try:
        return parse_renew_before(value)
    except ESTError as exc:
        raise ESTError('invalid_input', exc.message.replace('renew_before', 'refresh_before', 1))


def bundle_due(certs, window):
    """When the first of ``certs`` enters ``window`` (the rule of :func:`hoststate.renewal_time`, per certificate)."""
    from .hoststate import renewal_time
    return min(renewal_time(cert, window) for cert in certs) if certs else None


def stored_bundle_state(data, window, now=None, pinned=None):
    """Whether the PEM bundle ``data`` (bytes; None: no file) may be kept without a /cacerts request.

    RFC 7030 §4.1.2 asks a client to refresh its CA certificates before they expire, not on every
    use. The bundle is fresh when it holds at least one readable certificate and none of them is
    due: with a ``('seconds', n)`` window each one stays valid beyond ``now + n``; with a
    ``('share', f)`` window each one is short of its last ``f`` of its lifetime (as
    est_enroll's ``renew_before``). With ``pinned`` (a SHA-256 fingerprint) the bundle must also
    hold that certificate. Garbage, an empty file or a missing one is never fresh.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if data is None:
        return StoredBundle([], None, False, 'no bundle yet')
    try:
        certs = codecs.load_pem_certs(data, 'CA bundle')
    except ESTError as exc:
        return StoredBundle([], None, False, exc.message)
    due = bundle_due(certs, window)
    if pinned is not None:
        pin = normalize_fingerprint(pinned)
        if pin not in [fingerprint(c) for c in certs]:
            return StoredBundle(certs, due, False, 'the bundle does not hold the certificate of expected_fingerprint %s' % pin)
    if due <= now:
        return StoredBundle(certs, due, False, 'due since %s' % due.strftime('%Y-%m-%dT%H:%M:%SZ'))
    return StoredBundle(certs, due, True)


class RefreshTrust:
    """What verifies the server for a /cacerts request: ``ca_path`` and ``expected_fingerprint``.

    ``source`` is ``dest`` (the bundle of an earlier run), ``ca_path``, ``expected_fingerprint``
    (a bootstrap) or None (the host's default trust store; never with ``trust_existing``);
    ``note`` says why a bundle that exists was not used.
    """

    def __init__(self, ca_path, expected_fingerprint, source, note=None):
        self.ca_path = ca_path
        self.expected_fingerprint = expected_fingerprint
        self.source = source
        self.note = note


def refresh_trust(dest, stored, ca_path=None, expected_fingerprint=None, trust_existing=False):
    """The :class:`RefreshTrust` for fetching /cacerts into ``dest`` (whose content is ``stored``, None: no file).

    Without ``trust_existing``: ``ca_path`` and ``expected_fingerprint`` as given. With it, a
    ``dest`` that holds certificates verifies the server and the two are not used (the pin was
    for the first contact; the answer then validates to its own roots, so a completed rollover
    is followed). Otherwise ``ca_path`` and ``expected_fingerprint`` are used as without it, and
    when neither is given the request is refused (``invalid_input``) rather than trusting the
    host's default trust store.
    """
    if not trust_existing:
        source = 'ca_path' if ca_path else ('expected_fingerprint' if expected_fingerprint else None)
        return RefreshTrust(ca_path, expected_fingerprint, source)
    unusable = None
    if stored is not None:
        try:
            codecs.load_pem_certs(stored, 'CA bundle')
            return RefreshTrust(dest, None, 'dest')
        except ESTError as exc:
            unusable = exc.message
    note = None if unusable is None else 'the EST CA bundle at %s is not usable (%s)' % (dest, unusable)
    if ca_path:
        return RefreshTrust(ca_path, expected_fingerprint, 'ca_path', note)
    if expected_fingerprint:
        return RefreshTrust(None, expected_fingerprint, 'expected_fingerprint', note)
    start = ('No EST CA bundle at %s yet' % dest if unusable is None
             else 'The EST CA bundle at %s is not usable (%s)' % (dest, unusable))
    raise ESTError('invalid_input', '%s: set expected_fingerprint (the SHA-256 fingerprint of the EST CA certificate, from a '
                   'trusted channel) or ca_path (trust anchors for the EST server\'s TLS certificate); trust_existing never '
                   'falls back to the system trust store' % start)


def get_cacerts_with(connection, trust):
    """:func:`get_cacerts` with the trust of a :class:`RefreshTrust`; a TLS failure against ``dest`` says so."""
    try:
        return get_cacerts(dict(connection, ca_path=trust.ca_path), trust.expected_fingerprint)
    except ESTError as exc:
        if exc.kind == 'tls' and trust.source == 'dest':
            exc.message += ('; the server was verified against the EST CA bundle %s of an earlier run (trust_existing): if '
                            'the server moved to another CA, remove the bundle and bootstrap again' % trust.ca_path)
            exc.args = (exc.message,)
        raise
