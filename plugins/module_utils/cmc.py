# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Full CMC (``/fullcmc``): RFC 7030 §4.3, RFC 5272 / 5273 / 6402, CMS per RFC 5652.

:func:`build_full_pki_request` wraps one or more PKCS#10 requests in a Full PKI Request: a CMS
SignedData whose encapsulated content is a ``PKIData`` (id-cct-PKIData) with the controls
transactionId, senderNonce and optionally identification, and one ``tcr`` TaggedRequest per CSR
(bodyPartIDs 1..n; the controls follow with n+1, n+2, ...). It is signed with:

* an existing certificate's key (``signer_cert`` given): SignerInfo v1 with issuerAndSerialNumber,
  and the certificate is included; or
* the key of one of the requests (no ``signer_cert``; RFC 5272 §3.2): SignerInfo v3 with
  subjectKeyIdentifier. Its value is the SKI extension of the CSR with that key when the CSR has one
  (RFC 5272 §3.2 a-c: the CSR SHOULD carry it), else the SHA-1 of the public key bits (RFC 5280
  §4.2.1.2 method 1, what ``x509.SubjectKeyIdentifier.from_public_key`` puts in a CSR).

Signed attributes are contentType and messageDigest. Algorithms: RSA PKCS#1 v1.5 with SHA-256
(sha256WithRSAEncryption), ECDSA with SHA-256 (ecdsa-with-SHA256), Ed25519 (with SHA-512 as the
digest algorithm, RFC 8419 §3). ``signer_key`` may also be a callable ``sign(data) -> signature`` (a
PKCS#11 key, say) with ``signer_public_key`` telling the algorithm: it must sign ``data`` with the
hash above (CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256 or CKM_EDDSA); a raw ``r||s`` ECDSA signature is
converted to DER.

:func:`parse_pki_response` reads the answer: a Full PKI Response (SignedData with id-cct-PKIResponse)
or a Simple PKI Response (certs-only SignedData, RFC 7030 §4.3.2).

The request is POSTed (base64, by the transport) as :data:`CMC_REQUEST_CONTENT_TYPE`; the answer comes
as :data:`CMC_RESPONSE_CONTENT_TYPE` or as certs-only ``application/pkcs7-mime``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os

from ._asn1 import decode_all, require_pyasn1, short_reason as _short
from .errors import ESTError

try:  # Shipped to hosts that may lack pyasn1; the public functions report it as an ESTError.
    from pyasn1.codec.der import encoder as _der_encoder
    from pyasn1.type import char, namedtype, univ
    from pyasn1_modules import rfc4055, rfc5280, rfc5652, rfc6402
    HAS_PYASN1 = True
    PYASN1_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    HAS_PYASN1 = False
    PYASN1_IMPORT_ERROR = _exc

CMC_REQUEST_CONTENT_TYPE = 'application/pkcs7-mime; smime-type=CMC-request'
CMC_RESPONSE_CONTENT_TYPE = 'application/pkcs7-mime; smime-type=CMC-response'

OID_SIGNED_DATA = '1.2.840.113549.1.7.2'
OID_DATA = '1.2.840.113549.1.7.1'
OID_PKI_DATA = '1.3.6.1.5.5.7.12.2'        # id-cct-PKIData
OID_PKI_RESPONSE = '1.3.6.1.5.5.7.12.3'    # id-cct-PKIResponse
OID_CONTENT_TYPE = '1.2.840.113549.1.9.3'
OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4'
OID_CMC_STATUS_INFO = '1.3.6.1.5.5.7.7.1'
OID_CMC_IDENTIFICATION = '1.3.6.1.5.5.7.7.2'
OID_CMC_TRANSACTION_ID = '1.3.6.1.5.5.7.7.5'
OID_CMC_SENDER_NONCE = '1.3.6.1.5.5.7.7.6'
OID_CMC_RECIPIENT_NONCE = '1.3.6.1.5.5.7.7.7'
OID_CMC_STATUS_INFO_V2 = '1.3.6.1.5.5.7.7.25'
OID_CMC_QUERY_PENDING = '1.3.6.1.5.5.7.7.21'
OID_KP_CMC_CA = '1.3.6.1.5.5.7.3.27'          # id-kp-cmcCA (RFC 6402 2.10)
OID_KP_CMC_RA = '1.3.6.1.5.5.7.3.28'          # id-kp-cmcRA

_HASHES = {
    '1.3.14.3.2.26': 'sha1',
    '2.16.840.1.101.3.4.2.4': 'sha224',
    '2.16.840.1.101.3.4.2.1': 'sha256',
    '2.16.840.1.101.3.4.2.2': 'sha384',
    '2.16.840.1.101.3.4.2.3': 'sha512',
}
_HASH_OIDS = dict((name, oid) for oid, name in _HASHES.items())

_RSA_PKCS1 = {
    '1.2.840.113549.1.1.5': 'sha1',
    '1.2.840.113549.1.1.14': 'sha224',
    '1.2.840.113549.1.1.11': 'sha256',
    '1.2.840.113549.1.1.12': 'sha384',
    '1.2.840.113549.1.1.13': 'sha512',
}
_ECDSA = {
    '1.2.840.10045.4.1': 'sha1',
    '1.2.840.10045.4.3.1': 'sha224',
    '1.2.840.10045.4.3.2': 'sha256',
    '1.2.840.10045.4.3.3': 'sha384',
    '1.2.840.10045.4.3.4': 'sha512',
}
_OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1'
_OID_RSA_PSS = '1.2.840.113549.1.1.10'
_OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1'
_OID_ED25519 = '1.3.101.112'
_OID_ED448 = '1.3.101.113'
_OID_SHA256_RSA = '1.2.840.113549.1.1.11'
_OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2'

STATUS_NAMES = {0: 'success', 2: 'failed', 3: 'pending', 4: 'no_support', 5: 'confirm_required', 6: 'pop_required', 7: 'partial'}
FAIL_INFO_NAMES = {0: 'badAlg', 1: 'badMessageCheck', 2: 'badRequest', 3: 'badTime', 4: 'badCertId', 5: 'unsupportedExt',
                   6: 'mustArchiveKeys', 7: 'badIdentity', 8: 'popRequired', 9: 'popFailed', 10: 'noKeyReuse',
                   11: 'internalCAError', 12: 'tryLater', 13: 'authDataFail'}
# The status a response as a whole gets when several status controls disagree: the worst one wins.
_STATUS_SEVERITY = ('failed', 'no_support', 'pop_required', 'confirm_required', 'pending', 'partial', 'success')


if HAS_PYASN1:
    # rfc6402's CMCStatusInfoV2 has OtherStatusInfo as a CHOICE of two untagged SEQUENCEs (pendInfo,
    # extendedFailInfo), which pyasn1 cannot tell apart; read otherInfo as ANY and sort it out here.

    class _StatusInfoV2(univ.Sequence):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('cMCStatus', univ.Integer()),
            namedtype.NamedType('bodyList', univ.SequenceOf(componentType=rfc6402.BodyPartReference())),
            namedtype.OptionalNamedType('statusString', char.UTF8String()),
            namedtype.OptionalNamedType('otherInfo', univ.Any()),
        )

    class _StatusInfo(univ.Sequence):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('cMCStatus', univ.Integer()),
            namedtype.NamedType('bodyList', univ.SequenceOf(componentType=univ.Integer())),
            namedtype.OptionalNamedType('statusString', char.UTF8String()),
            namedtype.OptionalNamedType('otherInfo', univ.Any()),
        )

    class _ExtendedFailInfo(univ.Sequence):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('failInfoOID', univ.ObjectIdentifier()),
            namedtype.NamedType('failInfoValue', univ.Any()),
        )


def _require_pyasn1():
    require_pyasn1(HAS_PYASN1, PYASN1_IMPORT_ERROR, 'full CMC')


def _decode(data, spec, what, der=False):
    return decode_all(data, spec, what, der)


def _hash(name):
    from cryptography.hazmat.primitives import hashes
    return {'sha1': hashes.SHA1, 'sha224': hashes.SHA224, 'sha256': hashes.SHA256, 'sha384': hashes.SHA384,
            'sha512': hashes.SHA512}[name]()


# ---- signing --------------------------------------------------------------------------------

def _profile(public_key):
    """``(digest name, signature algorithm OID, NULL parameters?)`` for a public key."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    if isinstance(public_key, rsa.RSAPublicKey):
        return 'sha256', _OID_SHA256_RSA, True
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return 'sha256', _OID_ECDSA_SHA256, False
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return 'sha512', _OID_ED25519, False
    raise ESTError('invalid_input', 'cannot sign a CMC request with a %s key (RSA, EC or Ed25519 only)'
                   % type(public_key).__name__)


def _ecdsa_to_der(signature, public_key):
    """DER ECDSA-Sig-Value from a raw ``r||s`` signature (as PKCS#11 returns it); DER input is kept."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
    size = (public_key.curve.key_size + 7) // 8
    try:
        decode_dss_signature(signature)
        is_der = True
    except ValueError:
        is_der = False
    if is_der or len(signature) != 2 * size:
        return signature
    return encode_dss_signature(int.from_bytes(signature[:size], 'big'), int.from_bytes(signature[size:], 'big'))


def sign_raw(data, signer, public_key=None):
    """Sign ``data`` the way the CMS SignerInfo here is signed; returns ``(signature_algorithm_oid, signature)``.

    ``signer`` is a cryptography private key (RSA, EC, Ed25519) or a callable ``sign(data) -> bytes``
    (then ``public_key`` is required and says the algorithm; see the module documentation).
    """
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from .keys import ExternalKey
    if isinstance(signer, ExternalKey):  # a key in a token: its signing callable and public key
        return sign_raw(data, signer.sign, signer.public_key())
    if callable(signer) and not hasattr(signer, 'public_key'):
        if public_key is None:
            raise ESTError('invalid_input', 'signing with a callable needs the signer public key')
        _digest, sig_oid, _null = _profile(public_key)
        try:
            signature = signer(data)
        except ESTError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise ESTError('key_store', 'the signing callback failed: %s' % _short(exc))
        if not isinstance(signature, (bytes, bytearray)) or not signature:
            raise ESTError('key_store', 'the signing callback returned no signature bytes')
        signature = bytes(signature)
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            signature = _ecdsa_to_der(signature, public_key)
        return sig_oid, signature
    if not hasattr(signer, 'public_key'):
        raise ESTError('invalid_input', 'signer must be a cryptography private key or a callable, got %s' % type(signer).__name__)
    _digest, sig_oid, _null = _profile(signer.public_key())
    try:
        if isinstance(signer, rsa.RSAPrivateKey):
            return sig_oid, signer.sign(data, padding.PKCS1v15(), _hash('sha256'))
        if isinstance(signer, ec.EllipticCurvePrivateKey):
            return sig_oid, signer.sign(data, ec.ECDSA(_hash('sha256')))
        if isinstance(signer, ed25519.Ed25519PrivateKey):
            return sig_oid, signer.sign(data)
    except Exception as exc:  # pylint: disable=broad-except
        raise ESTError('key_store', 'signing the CMC request failed: %s' % _short(exc))
    raise ESTError('invalid_input', 'cannot sign with a %s' % type(signer).__name__)  # pragma: no cover


def _algorithm(oid, null_params=False):
    alg = rfc5280.AlgorithmIdentifier()
    alg['algorithm'] = univ.ObjectIdentifier(oid)
    if null_params:
        alg['parameters'] = _der_encoder.encode(univ.Null(''))
    return alg


def _attribute(oid, value_der):
    attr = rfc5652.Attribute()
    attr['attrType'] = univ.ObjectIdentifier(oid)
    attr['attrValues'].append(value_der)
    return attr


def _sign_signed_data(content_type, content, signer, public_key, signer_cert=None, subject_key_identifier=None):
    """DER ContentInfo(SignedData) over ``content`` with one SignerInfo (see the module documentation)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    digest_name, sig_oid, null_params = _profile(public_key)
    digest_alg = _algorithm(_HASH_OIDS[digest_name])

    signer_info = rfc5652.SignerInfo()
    if signer_cert is not None:
        cert_der = signer_cert.public_bytes(Encoding.DER)
        cert = _decode(cert_der, rfc5280.Certificate(), 'signer certificate', der=True)
        signer_info['version'] = 1
        signer_info['sid']['issuerAndSerialNumber']['issuer'] = cert['tbsCertificate']['issuer']
        signer_info['sid']['issuerAndSerialNumber']['serialNumber'] = cert['tbsCertificate']['serialNumber']
    else:
        signer_info['version'] = 3
        signer_info['sid']['subjectKeyIdentifier'] = subject_key_identifier
    signer_info['digestAlgorithm'] = digest_alg

    attrs = signer_info['signedAttrs']
    attrs.append(_attribute(OID_CONTENT_TYPE, _der_encoder.encode(univ.ObjectIdentifier(content_type))))
    digest = hashlib.new(digest_name, content).digest()
    attrs.append(_attribute(OID_MESSAGE_DIGEST, _der_encoder.encode(univ.OctetString(digest))))
    signed_attrs = _der_encoder.encode(attrs)
    # The signature covers the DER of the attributes with the SET OF tag, not the [0] (RFC 5652 §5.4).
    _sig_oid, signature = sign_raw(b'\x31' + signed_attrs[1:], signer, public_key)
    signer_info['signatureAlgorithm'] = _algorithm(sig_oid, null_params)
    signer_info['signature'] = signature

    signed_data = rfc5652.SignedData()
    signed_data['version'] = 3
    signed_data['digestAlgorithms'].append(digest_alg)
    signed_data['encapContentInfo']['eContentType'] = univ.ObjectIdentifier(content_type)
    signed_data['encapContentInfo']['eContent'] = content
    if signer_cert is not None:
        choice = signed_data['certificates'].getComponentByPosition(0)
        choice['certificate'] = cert
    signed_data['signerInfos'].append(signer_info)

    info = rfc5652.ContentInfo()
    info['contentType'] = rfc5652.id_signedData
    info['content'] = _der_encoder.encode(signed_data)
    return _der_encoder.encode(info)


# ---- request --------------------------------------------------------------------------------

def _tagged_attribute(body_part_id, oid, value_der):
    attr = rfc6402.TaggedAttribute()
    attr['bodyPartID'] = body_part_id
    attr['attrType'] = univ.ObjectIdentifier(oid)
    attr['attrValues'].append(value_der)
    return attr


def _load_csrs(csrs_der):
    from cryptography import x509
    if isinstance(csrs_der, (bytes, bytearray)):
        csrs_der = [csrs_der]
    csrs_der = list(csrs_der or [])
    if not csrs_der:
        raise ESTError('invalid_input', 'a Full PKI Request needs at least one CSR')
    result = []
    for index, der in enumerate(csrs_der):
        if isinstance(der, x509.CertificateSigningRequest):
            from cryptography.hazmat.primitives.serialization import Encoding
            der = der.public_bytes(Encoding.DER)
        if not isinstance(der, (bytes, bytearray)):
            raise ESTError('invalid_input', 'CSR %d must be DER bytes' % (index + 1))
        der = bytes(der)
        try:
            csr = x509.load_der_x509_csr(der)
        except Exception as exc:  # pylint: disable=broad-except
            raise ESTError('invalid_input', 'CSR %d is not a DER PKCS#10 request: %s' % (index + 1, _short(exc)))
        try:
            request = _decode(der, rfc6402.CertificationRequest(), 'CSR %d' % (index + 1), der=True)
        except ESTError as exc:
            raise ESTError('invalid_input', exc.message)
        if _der_encoder.encode(request) != der:
            raise ESTError('invalid_input', 'CSR %d is not DER-encoded; it would not survive being embedded' % (index + 1))
        result.append((csr, request))
    return result


def _subject_key_identifier(public_key, csrs, explicit=None):
    """The SKI for a SignerInfo signed with a request key (RFC 5272 §3.2 a-c)."""
    from cryptography import x509
    from .codecs import public_key_der
    if explicit is not None:
        if not isinstance(explicit, (bytes, bytearray)) or not explicit:
            raise ESTError('invalid_input', 'subject_key_identifier must be non-empty bytes')
        return bytes(explicit)
    wanted = public_key_der(public_key)
    matching = [csr for csr, _request in csrs if public_key_der(csr.public_key()) == wanted]
    if not matching:
        raise ESTError('invalid_input', 'without signer_cert the request must be signed with the key of one of its CSRs '
                       '(RFC 5272 §3.2); the signer key matches none of them')
    try:
        return matching[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except Exception:  # pylint: disable=broad-except
        pass  # no SKI extension, or one cryptography cannot read
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


def new_transaction_id():
    """A random positive transactionId (63 bits)."""
    return int.from_bytes(os.urandom(8), 'big') >> 1 or 1


def new_nonce():
    """16 random bytes for senderNonce."""
    return os.urandom(16)


def build_full_pki_request_info(csrs_der, signer_key, signer_cert=None, transaction_id=None, sender_nonce=None,
                                identification=None, signer_public_key=None, subject_key_identifier=None, query_pending=None):
    """Like :func:`build_full_pki_request`; returns ``{'der': bytes, 'transaction_id': int, 'sender_nonce': bytes}``.

    Keep ``transaction_id`` and ``sender_nonce`` to check the response with :func:`parse_pki_response`.
    With ``query_pending`` (the pendToken of an earlier pending answer) the PKIData asks about that
    request (RFC 5272 6.13) instead of carrying the requests again; ``csrs_der`` then only identifies
    the signing key, as in the original request.
    """
    _require_pyasn1()
    csrs = _load_csrs(csrs_der)
    if signer_cert is not None:
        public_key = signer_cert.public_key()
        if hasattr(signer_key, 'public_key'):
            from .codecs import public_key_der
            if public_key_der(signer_key.public_key()) != public_key_der(public_key):
                raise ESTError('invalid_input', 'the signer key does not belong to the signer certificate')
    elif hasattr(signer_key, 'public_key'):
        public_key = signer_key.public_key()
    elif signer_public_key is not None:
        public_key = signer_public_key
    else:
        raise ESTError('invalid_input', 'signing with a callable needs signer_public_key or signer_cert')
    if transaction_id is None:
        transaction_id = new_transaction_id()
    if sender_nonce is None:
        sender_nonce = new_nonce()
    try:
        transaction_id = int(transaction_id)
    except (TypeError, ValueError):
        raise ESTError('invalid_input', 'transaction_id must be an integer')
    if not isinstance(sender_nonce, (bytes, bytearray)) or not sender_nonce:
        raise ESTError('invalid_input', 'sender_nonce must be non-empty bytes')
    sender_nonce = bytes(sender_nonce)

    pki_data = rfc6402.PKIData()
    if query_pending is None:
        for index, (_csr, request) in enumerate(csrs):
            tagged = pki_data['reqSequence'].getComponentByPosition(index)
            tcr = tagged['tcr']
            tcr['bodyPartID'] = index + 1
            tcr['certificationRequest'] = request
        body_part = len(csrs)
    else:
        pki_data['reqSequence'].clear()
        body_part = 0
    controls = [(OID_CMC_TRANSACTION_ID, _der_encoder.encode(univ.Integer(transaction_id))),
                (OID_CMC_SENDER_NONCE, _der_encoder.encode(univ.OctetString(sender_nonce)))]
    if query_pending is not None:
        controls.append((OID_CMC_QUERY_PENDING, _der_encoder.encode(univ.OctetString(bytes(query_pending)))))
    if identification:
        controls.append((OID_CMC_IDENTIFICATION, _der_encoder.encode(char.UTF8String(str(identification)))))
    for oid, value in controls:
        body_part += 1
        pki_data['controlSequence'].append(_tagged_attribute(body_part, oid, value))
    # Empty SEQUENCE OFs must still be present.
    pki_data['cmsSequence'].clear()
    pki_data['otherMsgSequence'].clear()
    content = _der_encoder.encode(pki_data)

    ski = None
    if signer_cert is None:
        ski = _subject_key_identifier(public_key, csrs, subject_key_identifier)
    der = _sign_signed_data(OID_PKI_DATA, content, signer_key, public_key, signer_cert, ski)
    return {'der': der, 'transaction_id': transaction_id, 'sender_nonce': sender_nonce}


def build_full_pki_request(csrs_der, signer_key, signer_cert=None, transaction_id=None, sender_nonce=None,
                           identification=None, signer_public_key=None, subject_key_identifier=None):
    """DER of a Full PKI Request (ContentInfo/SignedData/PKIData) for ``csrs_der`` (one DER CSR or a list).

    ``signer_key``: cryptography private key, or a callable ``sign(data) -> signature`` (then give
    ``signer_public_key`` or ``signer_cert``). ``signer_cert``: sign as that certificate
    (issuerAndSerialNumber) instead of with a request key (subjectKeyIdentifier).
    ``transaction_id`` (int) and ``sender_nonce`` (bytes) are random when not given - pass your
    own, or use :func:`build_full_pki_request_info`, to check the response. ``identification``:
    optional text for the id-cmc-identification control. ``subject_key_identifier``: override the SKI
    used when signing with a request key.
    """
    return build_full_pki_request_info(csrs_der, signer_key, signer_cert, transaction_id, sender_nonce, identification,
                                       signer_public_key, subject_key_identifier)['der']


# ---- response -------------------------------------------------------------------------------

def _read_tlv(data, offset):
    """``(header_length, content_length)`` of the DER/BER TLV at ``offset``; None for indefinite or broken."""
    if offset + 2 > len(data):
        return None
    pos = offset + 1
    if data[offset] & 0x1F == 0x1F:
        while pos < len(data) and data[pos] & 0x80:
            pos += 1
        pos += 1
    if pos >= len(data):
        return None
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            return None
        length = int.from_bytes(data[pos:pos + count], 'big')
        pos += count
    if pos + length > len(data):
        return None
    return pos - offset, length


def _children(data, offset):
    """Offsets of the TLVs inside the constructed TLV at ``offset``."""
    head = _read_tlv(data, offset)
    if head is None:
        return None
    start, end = offset + head[0], offset + head[0] + head[1]
    result = []
    pos = start
    while pos < end:
        item = _read_tlv(data, pos)
        if item is None:
            return None
        result.append(pos)
        pos += item[0] + item[1]
    return result if pos == end else None


def _raw_signed_attrs(der):
    """The exact bytes of each SignerInfo's signedAttrs (or None), read straight from the message."""
    try:
        top = _children(der, 0)
        explicit = _children(der, top[1])
        signed_data = _children(der, explicit[0])
        signer_infos = _children(der, signed_data[-1])
        result = []
        for pos in signer_infos:
            fields = _children(der, pos)
            found = None
            for field in fields[3:4]:
                if der[field] == 0xA0:
                    head = _read_tlv(der, field)
                    found = der[field:field + head[0] + head[1]]
            result.append(found)
        return result
    except (TypeError, IndexError):
        return None


def _name_der(name):
    return _der_encoder.encode(name)


def _asn_certificates(certs):
    """``[(cryptography certificate, pyasn1 Certificate)]`` for certificates known outside the message."""
    from cryptography.hazmat.primitives.serialization import Encoding
    return [(cert, _decode(cert.public_bytes(Encoding.DER), rfc5280.Certificate(), 'CA certificate', der=True)) for cert in certs]


def _find_signer(sid, certificates):
    """The certificate (cryptography, plus its pyasn1 form) named by a SignerIdentifier, or None."""
    from cryptography import x509
    kind = sid.getName()
    for cert, asn in certificates:
        if kind == 'issuerAndSerialNumber':
            ias = sid['issuerAndSerialNumber']
            if (int(ias['serialNumber']) == int(asn['tbsCertificate']['serialNumber'])
                    and _name_der(ias['issuer']) == _name_der(asn['tbsCertificate']['issuer'])):
                return cert
        elif kind == 'subjectKeyIdentifier':
            wanted = sid['subjectKeyIdentifier'].asOctets()
            try:
                if cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == wanted:
                    return cert
            except Exception:  # pylint: disable=broad-except
                pass
            try:
                if x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest == wanted:
                    return cert
            except Exception:  # pylint: disable=broad-except
                pass
    return None


def _verify_signature(public_key, sig_alg, digest_name, signature, data):
    """True when ``signature`` over ``data`` verifies; False otherwise (never raises)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    oid = str(sig_alg['algorithm'])
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if oid == _OID_RSA_PSS:
                params = _decode(bytes(sig_alg['parameters']), rfc4055.RSASSA_PSS_params(), 'RSASSA-PSS parameters')
                hash_name = _HASHES.get(str(params['hashAlgorithm']['algorithm']), 'sha1')
                mgf_params = params['maskGenAlgorithm']['parameters']
                mgf_hash = hash_name
                if mgf_params.isValue:
                    mgf_alg = _decode(bytes(mgf_params), rfc5280.AlgorithmIdentifier(), 'MGF1 parameters')
                    mgf_hash = _HASHES.get(str(mgf_alg['algorithm']), 'sha1')
                salt = int(params['saltLength'])
                public_key.verify(signature, data, padding.PSS(padding.MGF1(_hash(mgf_hash)), salt), _hash(hash_name))
                return True
            hash_name = _RSA_PKCS1.get(oid) or (digest_name if oid == _OID_RSA_ENCRYPTION else None)
            if hash_name is None:
                return False
            public_key.verify(signature, data, padding.PKCS1v15(), _hash(hash_name))
            return True
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            hash_name = _ECDSA.get(oid) or (digest_name if oid == _OID_EC_PUBLIC_KEY else None)
            if hash_name is None:
                return False
            public_key.verify(signature, data, ec.ECDSA(_hash(hash_name)))
            return True
        if isinstance(public_key, ed25519.Ed25519PublicKey) and oid == _OID_ED25519:
            public_key.verify(signature, data)
            return True
        if isinstance(public_key, ed448.Ed448PublicKey) and oid == _OID_ED448:
            public_key.verify(signature, data)
            return True
    except InvalidSignature:
        return False
    except Exception:  # pylint: disable=broad-except
        return False
    return False


def _verify_signer_info(signer_info, cert, content_type, content, raw_attrs):
    digest_name = _HASHES.get(str(signer_info['digestAlgorithm']['algorithm']))
    if digest_name is None or content is None:
        return False
    signature = signer_info['signature'].asOctets()
    attrs = signer_info['signedAttrs']
    if attrs.isValue and len(attrs):
        seen_type = seen_digest = False
        for attr in attrs:
            oid = str(attr['attrType'])
            values = [bytes(v) for v in attr['attrValues']]
            if oid == OID_CONTENT_TYPE:
                if len(values) != 1 or str(_decode(values[0], univ.ObjectIdentifier(), 'contentType attribute')) != content_type:
                    return False
                seen_type = True
            elif oid == OID_MESSAGE_DIGEST:
                expected = hashlib.new(digest_name, content).digest()
                if len(values) != 1 or _decode(values[0], univ.OctetString(), 'messageDigest attribute').asOctets() != expected:
                    return False
                seen_digest = True
        if not (seen_type and seen_digest):
            return False
        candidates = []
        if raw_attrs:
            candidates.append(b'\x31' + raw_attrs[1:])
        encoded = _der_encoder.encode(attrs)
        candidates.append(b'\x31' + encoded[1:])
        return any(_verify_signature(cert.public_key(), signer_info['signatureAlgorithm'], digest_name, signature, data)
                   for data in candidates)
    return _verify_signature(cert.public_key(), signer_info['signatureAlgorithm'], digest_name, signature, content)


def _iso_time(value):
    try:
        return value.asDateTime.isoformat()
    except Exception:  # pylint: disable=broad-except
        return str(value)


def _status_from(info, legacy):
    code = int(info['cMCStatus'])
    result = {
        'status': STATUS_NAMES.get(code, 'failed'),
        'status_code': code,
        'body_list': [],
        'status_string': None,
        'fail_info': None,
        'pending_token': None,
        'pending_time': None,
    }
    for ref in info['bodyList']:
        if legacy:
            result['body_list'].append(int(ref))
        elif ref.getName() == 'bodyPartID':
            result['body_list'].append(int(ref['bodyPartID']))
        else:
            result['body_list'].append([int(part) for part in ref['bodyPartPath']])
    if info['statusString'].isValue:
        result['status_string'] = str(info['statusString'])
    other = info['otherInfo']
    if other.isValue:
        raw = bytes(other)
        if raw[:1] == b'\x02':
            value = int(_decode(raw, univ.Integer(), 'failInfo'))
            result['fail_info'] = FAIL_INFO_NAMES.get(value, 'unknown(%d)' % value)
        else:
            try:
                pend = _decode(raw, rfc6402.PendInfo(), 'pendInfo')
            except ESTError:
                pend = None
            if pend is not None:
                result['pending_token'] = pend['pendToken'].asOctets()
                result['pending_time'] = _iso_time(pend['pendTime'])
            elif not legacy:
                result['fail_info'] = str(_decode(raw, _ExtendedFailInfo(), 'extendedFailInfo')['failInfoOID'])
            else:
                raise ESTError('bad_response', 'the CMCStatusInfo otherInfo is neither failInfo nor pendInfo')
    return result


def _load_certificates(signed_data):
    from cryptography import x509
    result = []
    certs = signed_data['certificates']
    if not certs.isValue:
        return result
    for choice in certs:
        if choice.getName() != 'certificate':
            continue
        asn = choice['certificate']
        try:
            cert = x509.load_der_x509_certificate(_der_encoder.encode(asn))
        except Exception as exc:  # pylint: disable=broad-except
            raise ESTError('bad_response', 'the CMC response holds an unreadable certificate: %s' % _short(exc))
        result.append((cert, asn))
    return result


def parse_pki_response(der, request_transaction_id=None, sender_nonce=None, verify_signer=None):
    """Read a CMC PKI Response (RFC 5272 §3.3 / §4.1) from its DER.

    Returns::

        {'status': 'success'|'failed'|'pending'|'partial'|'no_support'|'confirm_required'|'pop_required',
         'status_code': int or None,        # the CMCStatus number (None for a Simple PKI Response)
         'fail_info': 'badRequest'|... or a dotted OID (extendedFailInfo) or None,
         'status_string': str or None,
         'body_list': [bodyPartID int, or [path ints]],
         'pending_token': bytes or None,
         'pending_time': ISO 8601 str or None,
         'statuses': [one dict per status control, same keys as above],
         'certificates': [x509.Certificate, ...],   # SignedData.certificates, in message order
         'simple': bool,                            # True for a certs-only Simple PKI Response
         'signed': bool,
         'signature_valid': bool or None,           # None when unsigned
         'signer_certificates': [x509.Certificate],  # certificates whose SignerInfo verified
         'signer_trusted': bool or None,            # None without verify_signer
         'signer_authorized': bool or None,         # CA certificate or id-kp-cmcCA/cmcRA; None without verify_signer
         'transaction_id': int or None,
         'transaction_id_ok': bool or None,         # None without request_transaction_id
         'recipient_nonce': bytes or None,
         'recipient_nonce_ok': bool or None,        # None without sender_nonce, or for a Simple PKI Response
         'sender_nonce': bytes or None}             # the server's nonce

    ``status``: with several status controls the worst one (failed > no_support > pop_required >
    confirm_required > pending > partial > success); with none, success if certificates came back.
    ``signature_valid`` is True only when every SignerInfo verifies over its signed attributes with a
    certificate from the message and, with ``verify_signer`` (a list of trusted CA certificates), the
    signer chains to one of them. A bad signature does not raise: callers decide.
    Malformed input raises ``ESTError('bad_response')``.
    """
    _require_pyasn1()
    if not isinstance(der, (bytes, bytearray)) or not der:
        raise ESTError('bad_response', 'the CMC response is empty')
    try:
        return _parse_response(bytes(der), request_transaction_id, sender_nonce, verify_signer)
    except ESTError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise ESTError('bad_response', 'the CMC response is malformed: %s' % _short(exc))


def _parse_response(der, request_transaction_id, sender_nonce, verify_signer):
    info = _decode(der, rfc5652.ContentInfo(), 'CMC response')
    if str(info['contentType']) != OID_SIGNED_DATA:
        raise ESTError('bad_response', 'the CMC response is a CMS %s, expected SignedData' % info['contentType'])
    signed_data = _decode(bytes(info['content']), rfc5652.SignedData(), 'CMC response SignedData')
    certificates = _load_certificates(signed_data)
    encap = signed_data['encapContentInfo']
    content_type = str(encap['eContentType'])
    content = encap['eContent'].asOctets() if encap['eContent'].isValue else None
    result = {
        'status': 'success', 'status_code': None, 'fail_info': None, 'status_string': None, 'body_list': [],
        'pending_token': None, 'pending_time': None, 'statuses': [],
        'certificates': [cert for cert, _asn in certificates], 'simple': False,
        'signed': False, 'signature_valid': None, 'signer_certificates': [], 'signer_trusted': None, 'signer_authorized': None,
        'transaction_id': None, 'transaction_id_ok': None,
        'recipient_nonce': None, 'recipient_nonce_ok': None, 'sender_nonce': None,
    }

    if content is None or (content_type == OID_DATA and not content):
        # Simple PKI Response: certs-only, a success is implied (RFC 5272 §4.1, RFC 7030 §4.3.2).
        if not certificates:
            raise ESTError('bad_response', 'the CMC response carries neither a PKIResponse nor certificates')
        result['simple'] = True
        return result
    if content_type != OID_PKI_RESPONSE:
        raise ESTError('bad_response', 'the CMC response content is %s, expected id-cct-PKIResponse' % content_type)

    response = _decode(content, rfc6402.PKIResponse(), 'PKIResponse')
    for control in response['controlSequence']:
        oid = str(control['attrType'])
        values = [bytes(v) for v in control['attrValues']]
        for value in values:
            if oid == OID_CMC_STATUS_INFO_V2:
                result['statuses'].append(_status_from(_decode(value, _StatusInfoV2(), 'CMCStatusInfoV2'), False))
            elif oid == OID_CMC_STATUS_INFO:
                result['statuses'].append(_status_from(_decode(value, _StatusInfo(), 'CMCStatusInfo'), True))
            elif oid == OID_CMC_RECIPIENT_NONCE:
                result['recipient_nonce'] = _decode(value, univ.OctetString(), 'recipientNonce').asOctets()
            elif oid == OID_CMC_SENDER_NONCE:
                result['sender_nonce'] = _decode(value, univ.OctetString(), 'senderNonce').asOctets()
            elif oid == OID_CMC_TRANSACTION_ID:
                result['transaction_id'] = int(_decode(value, univ.Integer(), 'transactionId'))

    if result['statuses']:
        worst = min(result['statuses'], key=lambda s: _STATUS_SEVERITY.index(s['status']))
        for key in ('status', 'status_code', 'fail_info', 'status_string', 'body_list', 'pending_token', 'pending_time'):
            result[key] = worst[key]
    elif not certificates:
        raise ESTError('bad_response', 'the PKIResponse carries no status control and no certificates')

    if request_transaction_id is not None:
        result['transaction_id_ok'] = result['transaction_id'] == int(request_transaction_id)
    if sender_nonce is not None:
        result['recipient_nonce_ok'] = result['recipient_nonce'] == bytes(sender_nonce)

    signer_infos = list(signed_data['signerInfos'])
    if signer_infos:
        result['signed'] = True
        raw_attrs = _raw_signed_attrs(der) or []
        valid = True
        # RFC 5652 makes the certificates of a SignedData optional: the signer may be a CA certificate we hold.
        known = _asn_certificates(verify_signer or [])
        for index, signer_info in enumerate(signer_infos):
            cert = _find_signer(signer_info['sid'], certificates) or _find_signer(signer_info['sid'], known)
            raw = raw_attrs[index] if index < len(raw_attrs) else None
            if cert is None or not _verify_signer_info(signer_info, cert, content_type, content, raw):
                valid = False
                continue
            result['signer_certificates'].append(cert)
        if verify_signer is not None:
            trusted = list(verify_signer)
            pool = result['certificates']
            result['signer_trusted'] = bool(result['signer_certificates']) and all(
                _signer_trusted(cert, trusted, pool) for cert in result['signer_certificates'])
            result['signer_authorized'] = bool(result['signer_certificates']) and all(
                _authorized_signer(cert, trusted) for cert in result['signer_certificates'])
            valid = valid and result['signer_trusted']
        result['signature_valid'] = valid
    return result


def _signer_trusted(cert, trusted, pool):
    """The signer is one of the ``trusted`` CA certificates, or passes path validation to them."""
    from .pathvalid import verify_issued
    if any(cert == anchor for anchor in trusted):
        return True
    try:
        verify_issued(cert, [c for c in pool if c != cert] + list(trusted), trusted)
    except ESTError:
        return False
    return True


def _authorized_signer(cert, trusted):
    """May ``cert`` sign a CMC response? The CA certificate itself, or one marked id-kp-cmcCA / id-kp-cmcRA (RFC 6402 2.10)."""
    from cryptography import x509
    if any(cert == anchor for anchor in trusted):
        return True
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return any(usage.dotted_string in (OID_KP_CMC_CA, OID_KP_CMC_RA) for usage in usages)


# ---- one exchange ---------------------------------------------------------------------------

def exchange_full_pki_request(csrs_der, signer_key, signer_cert, ca_certs, post, identification=None, query_pending=None,
                              transaction_id=None, strict=True):
    """Send one Full PKI Request and return the certificates of a successful answer (RFC 7030 §4.3).

    ``post(der)`` sends the request and returns the transport's answer (it may raise
    :class:`~.errors.ESTPending` for HTTP 202). A failure answered as 4xx/5xx with a CMC body
    (§4.3.2) is read like a 200, and so is a 202 that carries one. The answer must echo the
    transactionId and nonce, and a signed answer must verify against ``ca_certs``.

    ``strict`` (the default) also requires a PKIResponse to be signed, by a CA certificate of
    ``ca_certs`` or by a certificate marked id-kp-cmcCA or id-kp-cmcRA (RFC 6402 2.10) that
    validates to them; a certs-only Simple PKI Response (§4.3.2) needs no signature.

    ``query_pending`` (a pendToken) asks about an earlier pending request (RFC 5272 6.13) in
    the same transaction (``transaction_id``). A CMC failure raises ``ESTError('bad_request')``
    with ``cmc_status`` and ``cmc_fail_info`` in its details; a CMC pending status
    ``ESTPending`` whose ``cmc`` attribute holds ``{'token': bytes or None, 'transaction_id': int}``
    and whose ``retry_after`` comes from pendTime (or the HTTP Retry-After).
    """
    from . import codecs
    from .errors import ESTPending
    request = build_full_pki_request_info(csrs_der, signer_key, signer_cert, identification=identification,
                                          transaction_id=transaction_id, query_pending=query_pending)
    http_retry_after = None
    try:
        response = post(request['der'])
    except ESTPending as exc:
        answer = getattr(exc, 'response', None)
        if answer is None or not answer.body or not codecs.media_type_is(answer.content_type, codecs.PKCS7_MEDIA_TYPES):
            exc.cmc = {'token': query_pending, 'transaction_id': request['transaction_id']}
            raise
        response, http_retry_after = answer, exc.retry_after
    except ESTError as exc:
        answer = exc.response
        if answer is None or not answer.body or not codecs.media_type_is(answer.content_type, codecs.PKCS7_MEDIA_TYPES):
            raise
        response = answer
    if not codecs.media_type_is(response.content_type, codecs.PKCS7_MEDIA_TYPES):
        raise ESTError('unexpected_content_type', 'the fullcmc answer has Content-Type %r, expected application/pkcs7-mime'
                       % response.content_type)
    answer = parse_pki_response(codecs.decode_body(response.body, 'fullcmc'), request['transaction_id'],
                                request['sender_nonce'], verify_signer=ca_certs)
    _check_response_signer(answer, strict)
    if answer['transaction_id_ok'] is False or answer['recipient_nonce_ok'] is False:
        raise ESTError('verification', 'the CMC response does not answer this request (transactionId or nonce differ)')
    status = answer['status']
    if status == 'pending':
        token = answer.get('pending_token') or query_pending
        retry_after = _seconds_until(answer.get('pending_time'))
        pending = ESTPending('the server holds the CMC request for approval%s'
                             % (' until %s' % answer['pending_time'] if answer.get('pending_time') else ''),
                             retry_after=retry_after if retry_after is not None else http_retry_after)
        pending.cmc = {'token': token, 'transaction_id': request['transaction_id']}
        raise pending
    if status != 'success':
        detail = ', '.join(x for x in (answer.get('fail_info'), answer.get('status_string')) if x)
        raise ESTError('bad_request', 'the CMC request was answered %s%s' % (status, ' (%s)' % detail if detail else ''),
                       details={'cmc_status': status, 'cmc_fail_info': answer.get('fail_info')})
    if not answer['certificates']:
        raise ESTError('bad_response', 'the CMC response reports success but holds no certificate')
    return answer['certificates']


def _check_response_signer(answer, strict):
    """Refuse a PKIResponse whose signature does not verify, and (``strict``) an unsigned one or one
    signed by a certificate that is neither the CA nor a CMC CA/RA."""
    if answer['simple']:
        return
    if answer['signed'] and not answer['signature_valid']:
        raise ESTError('verification', 'the signature of the CMC response does not verify against the CA certificates')
    if not strict:
        return
    if not answer['signed']:
        raise ESTError('verification', 'the PKIResponse is not signed, so nothing shows it comes from the CA; '
                       'set cmc_response_check=lenient to accept unsigned responses')
    if not answer.get('signer_authorized'):
        names = ', '.join(c.subject.rfc4514_string() for c in answer['signer_certificates'])
        raise ESTError('verification', 'the CMC response is signed by %s, which is neither a CA certificate of the server '
                       'nor marked id-kp-cmcCA or id-kp-cmcRA (RFC 6402 2.10); set cmc_response_check=lenient to accept it'
                       % (names or 'an unknown certificate'))


def _seconds_until(iso_time):
    """Whole seconds from now until an ISO 8601 time (0 when past); None when there is none."""
    import datetime
    if not iso_time:
        return None
    try:
        when = datetime.datetime.fromisoformat(iso_time)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0, int((when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()))
