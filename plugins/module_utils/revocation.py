# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a certificate revoked? OCSP (RFC 6960) and CRLs (RFC 5280 section 5, 6.3).

:func:`status_for` asks the responder or fetches the CRL the certificate names and answers
``good`` or ``revoked``, or raises ``ESTError('revocation_check', ...)``: an answer that cannot
be had or cannot be trusted is never taken for "not revoked". Trusted means:

- OCSP: the response is for this certificate (CertID with the issuer's name and key hashes
  and the serial), signed by the issuer itself or by a responder certificate the issuer
  issued directly with the id-kp-OCSPSigning extended key usage (RFC 6960 4.2.2.2), valid
  now; a nonce we sent, when echoed, matches; thisUpdate is not in the future and nextUpdate
  (when given) not in the past; without nextUpdate thisUpdate is at most :data:`MAX_AGE_WITHOUT_NEXT_UPDATE` old.
  ``unknown`` is an error. The responder certificate's own revocation is not checked
  (RFC 6960 4.2.2.2.1 leaves that to the CA; id-pkix-ocsp-nocheck is the common case).
- CRL: a complete CRL (no delta, no indirect or partitioned CRL) issued under the issuer's
  name and signed by the issuer's key (which must allow cRLSign when it has a key usage),
  with a nextUpdate in the future.

``auto`` asks OCSP when the certificate names a responder, else the CRL; when the responder
cannot be reached (connection, timeout, an HTTP error, tryLater or internalError) and the
certificate names a CRL, the CRL answers. A responder that answers something untrustworthy
is an error, not a reason to ask elsewhere. CRL and OCSP data are signed, so plain
``http://`` is the normal transport (RFC 5280 4.2.1.13, RFC 6960 A.1). Bodies are read up to
:data:`MAX_OCSP_BYTES` / :data:`MAX_CRL_BYTES`.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os

from .errors import ESTError

MODES = ('auto', 'ocsp', 'crl')
MAX_OCSP_BYTES = 256 * 1024
MAX_CRL_BYTES = 16 * 1024 * 1024
CLOCK_SKEW = datetime.timedelta(minutes=5)
MAX_AGE_WITHOUT_NEXT_UPDATE = datetime.timedelta(days=1)
_OID_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9'
_UNAVAILABLE_STATUSES = ('INTERNAL_ERROR', 'TRY_LATER')  # RFC 6960 2.3: the responder is not able to answer now


class _Unreachable(ESTError):
    """The responder or CRL could not be fetched (the only failure ``auto`` falls back from)."""

    def __init__(self, message):
        super(_Unreachable, self).__init__('revocation_check', message)


def _error(message, url=None):
    return ESTError('revocation_check', message, details={'revocation_url': url} if url else None)


def status_for(cert, issuer_or_chain, mode='auto', timeout=10):
    """The revocation status of ``cert`` (a ``cryptography`` certificate).

    ``issuer_or_chain``: the issuer's certificate, or certificates among which it is (the chain,
    the CA bundle). Returns ``{'status': 'good'|'revoked', 'reason', 'revocation_time' (ISO 8601
    UTC), 'source': 'ocsp'|'crl', 'url', 'this_update', 'next_update'}``; with ``auto`` after an
    unreachable responder also ``ocsp_error``. Raises ``ESTError('revocation_check', ...)``.
    """
    if mode not in MODES:
        raise ESTError('invalid_input', 'revocation mode must be one of %s, got %r' % (', '.join(MODES), mode))
    issuer = _find_issuer(cert, issuer_or_chain)
    ocsp_urls, crl_urls = _ocsp_urls(cert), _crl_urls(cert)
    subject = cert.subject.rfc4514_string()
    if mode == 'ocsp' and not ocsp_urls:
        raise _error('the certificate %s names no OCSP responder (authority information access)' % subject)
    if mode == 'crl' and not crl_urls:
        raise _error('the certificate %s names no CRL distribution point' % subject)
    if not ocsp_urls and not crl_urls:
        raise _error('the certificate %s names neither an OCSP responder nor a CRL distribution point, so its '
                     'revocation status cannot be checked' % subject)
    if mode == 'crl' or (mode == 'auto' and not ocsp_urls):
        return _first_crl(cert, issuer, crl_urls, timeout)
    try:
        return _ocsp_status(cert, issuer, ocsp_urls[0], timeout)
    except _Unreachable as exc:
        if mode == 'ocsp' or not crl_urls:
            raise
        result = _first_crl(cert, issuer, crl_urls, timeout)
        result['ocsp_error'] = exc.message
        return result


def _find_issuer(cert, issuer_or_chain):
    candidates = issuer_or_chain if isinstance(issuer_or_chain, (list, tuple)) else [issuer_or_chain]
    for candidate in candidates:
        if candidate is None or candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
            return candidate
        except Exception:  # pylint: disable=broad-except  # a wrong key type or signature: not this one
            continue
    raise _error('the issuer of %s (%s) is not among the CA certificates given, so its revocation status cannot be '
                 'checked' % (cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()))


def _uris(names):
    from cryptography import x509
    return [n.value for n in names if isinstance(n, x509.UniformResourceIdentifier)
            and n.value.lower().startswith(('http://', 'https://'))]


def _ocsp_urls(cert):
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return _uris([d.access_location for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP])


def _crl_urls(cert):
    from cryptography import x509
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        if point.crl_issuer is None and point.full_name:  # an indirect CRL (cRLIssuer) is not supported
            urls.extend(_uris(point.full_name))
    return urls


# -- HTTP -------------------------------------------------------------------------------------------------

def _fetch(method, url, limit, timeout, what, body=None, headers=None):
    """The body of a 200 answer, at most ``limit`` bytes; :class:`_Unreachable` for anything else."""
    import requests
    try:
        with requests.Session() as session:
            session.max_redirects = 3
            response = session.request(method, url, data=body, headers=headers, timeout=timeout, stream=True)
            with response:
                if response.status_code != 200:
                    raise _Unreachable('the %s at %s answered HTTP %d' % (what, url, response.status_code))
                declared = response.headers.get('Content-Length')
                if declared and declared.isdigit() and int(declared) > limit:
                    raise _error('the %s at %s sent %s bytes, more than the %d accepted' % (what, url, declared, limit), url)
                data = b''
                for chunk in response.iter_content(65536):
                    data += chunk
                    if len(data) > limit:
                        raise _error('the %s at %s sent more than the %d bytes accepted' % (what, url, limit), url)
                return data
    except requests.exceptions.RequestException as exc:
        raise _Unreachable('the %s at %s cannot be reached: %s' % (what, url, type(exc).__name__ + (': %s' % exc if str(exc) else '')))


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ') if moment is not None else None


def _check_times(this_update, next_update, what, url, now):
    if this_update > now + CLOCK_SKEW:
        raise _error('the %s from %s is dated in the future (thisUpdate %s)' % (what, url, _iso(this_update)), url)
    if next_update is None:
        if now - this_update > MAX_AGE_WITHOUT_NEXT_UPDATE:
            raise _error('the %s from %s has no nextUpdate and is older than %s (thisUpdate %s)'
                         % (what, url, MAX_AGE_WITHOUT_NEXT_UPDATE, _iso(this_update)), url)
    elif next_update < now - CLOCK_SKEW:
        raise _error('the %s from %s is stale: nextUpdate %s has passed' % (what, url, _iso(next_update)), url)


def _reason_name(flag):
    return flag.value if flag is not None else 'unspecified'  # the RFC 5280 5.3.1 name, e.g. keyCompromise


# -- OCSP -------------------------------------------------------------------------------------------------

def _ocsp_status(cert, issuer, url, timeout):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp
    nonce = os.urandom(16)
    request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
               .add_extension(x509.OCSPNonce(nonce), critical=False).build())
    data = _fetch('POST', url, MAX_OCSP_BYTES, timeout, 'OCSP responder',
                  request.public_bytes(serialization.Encoding.DER), {'Content-Type': 'application/ocsp-request'})
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        raise _error('the OCSP responder at %s sent something that is not an OCSP response (%s)' % (url, exc), url)
    status = response.response_status
    if status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        if status.name in _UNAVAILABLE_STATUSES:
            raise _Unreachable('the OCSP responder at %s answered %s' % (url, status.name))
        raise _error('the OCSP responder at %s answered %s' % (url, status.name), url)
    try:
        _verify_ocsp_signer(response, issuer, url)
        single = _single_response(response, cert, issuer, url)
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
    except ValueError as exc:  # cryptography parses lazily: a malformed part surfaces here
        raise _error('the OCSP response from %s cannot be read (%s)' % (url, exc), url)
    if echoed is not None and echoed != nonce:
        raise _error('the OCSP response from %s carries another request\'s nonce (a replay?)' % url, url)
    now = _utc_now()
    _check_times(single.this_update_utc, single.next_update_utc, 'OCSP response', url, now)
    result = {'source': 'ocsp', 'url': url, 'this_update': _iso(single.this_update_utc),
              'next_update': _iso(single.next_update_utc), 'reason': None, 'revocation_time': None}
    if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
        result['status'] = 'good'
    elif single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        result.update(status='revoked', reason=_reason_name(single.revocation_reason),
                      revocation_time=_iso(single.revocation_time_utc))
    else:
        raise _error('the OCSP responder at %s does not know the certificate %s (serial %x): status unknown'
                     % (url, cert.subject.rfc4514_string(), cert.serial_number), url)
    return result


def _single_response(response, cert, issuer, url):
    """The SingleResponse for cert's CertID (in whatever hash algorithm the responder used)."""
    for single in response.responses:
        if single.serial_number != cert.serial_number:
            continue
        algorithm = single.hash_algorithm
        if (_digest(algorithm, issuer.subject.public_bytes()) == single.issuer_name_hash
                and _digest(algorithm, _public_key_bits(issuer)) == single.issuer_key_hash):
            return single
    raise _error('the OCSP response from %s is not about the certificate asked for (serial %x)' % (url, cert.serial_number), url)


def _digest(algorithm, data):
    from cryptography.hazmat.primitives import hashes
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _public_key_bits(cert):
    """The subjectPublicKey BIT STRING value of cert (RFC 6960 4.1.1 hashes it for issuerKeyHash and byKey)."""
    from cryptography.hazmat.primitives import serialization
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    start, _end = _der_contents(spki, 0)
    _algorithm, after_algorithm = _der_contents(spki, start)
    bits_start, bits_end = _der_contents(spki, after_algorithm)
    return spki[bits_start + 1:bits_end]  # after the unused-bits octet


def _der_contents(data, offset):
    """(start, end) of the contents of the DER element at ``offset``."""
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start:start + count], 'big')
        start += count
    return start, start + length


def _responder_is(response, cert):
    from cryptography.hazmat.primitives import hashes
    if response.responder_key_hash is not None:
        return _digest(hashes.SHA1(), _public_key_bits(cert)) == response.responder_key_hash
    return response.responder_name == cert.subject


def _verify_ocsp_signer(response, issuer, url):
    """RFC 6960 4.2.2.2: signed by the issuer, or by a responder certificate the issuer issued for OCSP signing."""
    if _responder_is(response, issuer):
        signer = issuer
    else:
        signer = next((c for c in response.certificates if _responder_is(response, c)), None)
        if signer is None:
            raise _error('the OCSP response from %s is signed neither by the issuer %s nor by a responder certificate it '
                         'carries' % (url, issuer.subject.rfc4514_string()), url)
        _check_delegated_responder(signer, issuer, url)
    try:
        _verify_signature(signer.public_key(), response.signature, response.tbs_response_bytes, response.signature_hash_algorithm)
    except Exception:  # pylint: disable=broad-except  # InvalidSignature, or a key that cannot verify this algorithm
        raise _error('the signature of the OCSP response from %s does not verify with the key of %s'
                     % (url, signer.subject.rfc4514_string()), url)


def _check_delegated_responder(signer, issuer, url):
    from cryptography import x509
    from .certinfo import not_after, not_before
    what = 'the OCSP responder certificate %s in the response from %s' % (signer.subject.rfc4514_string(), url)
    try:
        signer.verify_directly_issued_by(issuer)
    except Exception:  # pylint: disable=broad-except
        raise _error('%s is not issued by %s, so it may not answer for its certificates (RFC 6960 4.2.2.2)'
                     % (what, issuer.subject.rfc4514_string()), url)
    try:
        usages = [oid.dotted_string for oid in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        usages = []
    if _OID_OCSP_SIGNING not in usages:
        raise _error('%s lacks the extended key usage id-kp-OCSPSigning (RFC 6960 4.2.2.2)' % what, url)
    now = _utc_now()
    if not (not_before(signer) <= now + CLOCK_SKEW and now <= not_after(signer)):
        raise _error('%s is not valid now' % what, url)


def _verify_signature(public_key, signature, data, hash_algorithm):
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(public_key, dsa.DSAPublicKey):
        public_key.verify(signature, data, hash_algorithm)
    else:  # Ed25519 / Ed448 sign the data itself
        public_key.verify(signature, data)


# -- CRL --------------------------------------------------------------------------------------------------

def _first_crl(cert, issuer, urls, timeout):
    """The answer of the first CRL that can be fetched; a CRL that is fetched but not trusted is an error."""
    unreachable = None
    for url in urls:
        try:
            return _crl_status(cert, issuer, url, timeout)
        except _Unreachable as exc:
            unreachable = exc
    raise unreachable


def _crl_status(cert, issuer, url, timeout):
    from cryptography import x509
    data = _fetch('GET', url, MAX_CRL_BYTES, timeout, 'CRL distribution point')
    try:
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b'-----BEGIN') else x509.load_der_x509_crl(data)
        _check_crl(crl, issuer, url)
        revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        reason = None
        if revoked is not None:
            try:
                reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = None
    except ValueError as exc:
        raise _error('the CRL from %s cannot be read (%s)' % (url, exc), url)
    now = _utc_now()
    if crl.next_update_utc is None:  # RFC 5280 5.1.2.5: conforming CRL issuers include it; without it nothing says it is current
        raise _error('the CRL from %s has no nextUpdate, so nothing says it is current' % url, url)
    _check_times(crl.last_update_utc, crl.next_update_utc, 'CRL', url, now)
    result = {'source': 'crl', 'url': url, 'this_update': _iso(crl.last_update_utc), 'next_update': _iso(crl.next_update_utc),
              'reason': None, 'revocation_time': None, 'status': 'good'}
    if revoked is not None:
        result.update(status='revoked', reason=_reason_name(reason), revocation_time=_iso(revoked.revocation_date_utc))
    return result


def _check_crl(crl, issuer, url):
    from cryptography import x509
    if crl.issuer != issuer.subject:
        raise _error('the CRL from %s is issued by %s, not by the certificate\'s issuer %s'
                     % (url, crl.issuer.rfc4514_string(), issuer.subject.rfc4514_string()), url)
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.crl_sign:
            raise _error('the issuer %s may not sign CRLs (its key usage lacks cRLSign)' % issuer.subject.rfc4514_string(), url)
    except x509.ExtensionNotFound:
        pass
    if not crl.is_signature_valid(issuer.public_key()):
        raise _error('the signature of the CRL from %s does not verify with the key of %s'
                     % (url, issuer.subject.rfc4514_string()), url)
    for extension in crl.extensions:
        if isinstance(extension.value, x509.DeltaCRLIndicator):
            raise _error('the CRL from %s is a delta CRL; a complete CRL is needed' % url, url)
        if isinstance(extension.value, x509.IssuingDistributionPoint):
            point = extension.value
            if point.indirect_crl or point.only_some_reasons or point.only_contains_ca_certs or point.only_contains_attribute_certs:
                raise _error('the CRL from %s covers only part of the certificates or reasons (issuing distribution '
                             'point); such CRLs are not supported' % url, url)
        elif extension.critical and not isinstance(extension.value, (x509.CRLNumber, x509.AuthorityKeyIdentifier)):
            raise _error('the CRL from %s has a critical extension %s this client does not understand'
                         % (url, extension.oid.dotted_string), url)
