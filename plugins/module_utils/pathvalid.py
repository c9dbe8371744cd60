# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 5280 certification path validation for every certificate the client keeps or trusts.

The path building and checking is ``cryptography``'s (:mod:`cryptography.x509.verification`):
name chaining, signatures, validity at the given time, basicConstraints ``cA`` and path
length on every CA certificate, unhandled critical extensions. The policy is RFC 5280's,
not the Web PKI's: CA certificates must assert ``cA`` and, when they carry keyUsage,
``keyCertSign``; end-entity certificates may carry any extensions an EST CA puts in them.

Two questions are asked:

- :func:`verify_issued`: does an issued (end-entity) certificate chain to the anchors?
- :func:`verify_ca`: may a CA certificate (a /cacerts extra, an ``intermediates_path`` entry)
  be kept? It must itself be a CA, chain to the anchors, and the path above it must allow it
  to issue (path length). ``cryptography`` verifies end-entity certificates only, so a CA
  certificate is verified as the leaf of its path and the checks on itself are made here
  (:func:`_ca_problem`); the unit tests hold them against ``cryptography``'s verdict on a
  certificate issued below it.

Anchors are explicit: the pinned certificate, the certificates in ``ca_path``, or the current
root of a /cacerts answer that arrived over a verified TLS connection.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from .errors import ESTError


def _verification():
    try:
        from cryptography.x509 import verification
        verification.ExtensionPolicy  # noqa: B018  pylint: disable=pointless-statement
    except (ImportError, AttributeError):
        import cryptography
        raise ESTError('invalid_input', 'certificate path validation needs cryptography >= 45 on the managed host '
                       '(found %s)' % cryptography.__version__)
    return verification


def _is_ca(_policy, _cert, constraints):
    if constraints is None or not constraints.ca:
        raise ValueError('basicConstraints cA is not set')


def _may_sign_certificates(_policy, _cert, usage):
    if usage is not None and not usage.key_cert_sign:
        raise ValueError('keyUsage lacks keyCertSign')


def _verifier(anchors, now):
    from cryptography import x509
    verification = _verification()
    agnostic = verification.Criticality.AGNOSTIC
    ca_policy = (verification.ExtensionPolicy.permit_all()
                 .require_present(x509.BasicConstraints, agnostic, _is_ca)
                 .may_be_present(x509.KeyUsage, agnostic, _may_sign_certificates))
    builder = (verification.PolicyBuilder().store(verification.Store(list(anchors))).time(now)
               .extension_policies(ca_policy=ca_policy, ee_policy=verification.ExtensionPolicy.permit_all()))
    return builder.build_client_verifier()


def _now(now):
    return (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0)


def _short(exc):
    text = str(exc)
    for prefix in ('validation failed: ', 'candidates exhausted: '):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split(' (encountered processing', 1)[0]
    if 'all candidates exhausted with no interior errors' in text:
        return 'no issuer for it among the certificates at hand'
    return text.replace('Python extension validator failed: ValueError: ', '')


def _name(cert):
    return cert.subject.rfc4514_string() or '(empty subject)'


def verify_issued(cert, intermediates, anchors, now=None):
    """The path of ``cert`` up to an anchor (issuers only, nearest first, the anchor last).

    Raises ``verification`` naming the certificate and the reason when there is none.
    """
    if not anchors:
        raise ESTError('verification', 'there is no trust anchor to verify %s with' % _name(cert))
    pool = [c for c in intermediates if c != cert]
    try:
        verified = _verifier(anchors, _now(now)).verify(cert, pool)
    except ESTError:
        raise
    except Exception as exc:  # VerificationError, or a validator's ValueError wrapped in it
        raise ESTError('verification', 'the certificate %s (issuer %s) does not validate to the trust anchors: %s'
                       % (_name(cert), cert.issuer.rfc4514_string(), _short(exc)))
    return list(verified.chain[1:])


def verify_ca(cert, intermediates, anchors, now=None):
    """Like :func:`verify_issued` for a CA certificate, which must also be fit to issue certificates."""
    problem = _ca_problem(cert)
    if problem:
        raise ESTError('verification', 'the certificate %s is not a CA certificate: %s' % (_name(cert), problem))
    if any(cert == anchor for anchor in anchors):
        return []
    chain = verify_issued(cert, intermediates, anchors, now)
    problem = _path_length_problem([cert] + chain)
    if problem:
        raise ESTError('verification', 'the CA certificate %s may not issue certificates: %s' % (_name(cert), problem))
    return chain


def keep_valid_cas(certs, anchors, now=None):
    """``(kept, dropped)``: the CA certificates of ``certs`` that pass :func:`verify_ca` (anchors among
    them are kept as they are); ``dropped`` holds ``(certificate, reason)`` for the others, in order."""
    kept, dropped = [], []
    for cert in certs:
        if any(cert == anchor for anchor in anchors):
            kept.append(cert)
            continue
        try:
            verify_ca(cert, [c for c in certs if c != cert], anchors, now)
        except ESTError as exc:
            dropped.append((cert, exc.message))
            continue
        kept.append(cert)
    return kept, dropped


def usable_anchor(cert, now=None):
    """Whether ``cert`` can serve as a trust anchor now: a CA certificate within its validity."""
    from .certinfo import not_after, not_before
    moment = _now(now)
    return _ca_problem(cert) is None and not_before(cert) <= moment < not_after(cert)


def _ca_problem(cert):
    """Why ``cert`` cannot act as a CA (RFC 5280 4.2.1.9, 4.2.1.3), or None."""
    from cryptography import x509
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return 'it has no basicConstraints extension'
    if not constraints.ca:
        return 'basicConstraints cA is not set'
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not usage.key_cert_sign:
        return 'its keyUsage lacks keyCertSign'
    return None


def _path_length_problem(path):
    """Whether each CA above ``path[0]`` lets it issue: pathLenConstraint counts the
    non-self-issued intermediates below a CA (RFC 5280 6.1.4 (l), (m)); ``path[0]`` is one."""
    from cryptography import x509
    below = 0
    for index, cert in enumerate(path):
        if index > 0:
            try:
                limit = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
            except x509.ExtensionNotFound:
                limit = None
            if limit is not None and below > limit:
                return 'the path length constraint %d of %s is exceeded' % (limit, _name(cert))
        if cert.issuer != cert.subject:
            below += 1
    return None
