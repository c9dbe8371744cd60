# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side key generation (``/serverkeygen``): RFC 7030 §4.4, RFC 8951 §3.2.4.

The request is an ordinary PKCS#10 CSR (built by the CSR code, not here). The server MUST ignore
its public key and signature (RFC 7030 §4.4.1), so the CSR may be signed with a throwaway key or
with an existing one. To get the new private key encrypted to the client on top of TLS, the CSR
carries an ``id-aa-asymmDecryptKeyID`` attribute naming the client's key-transport key
(RFC 7030 §4.4.1.2; :func:`asymmetric_decrypt_key_id_attribute` gives its DER) plus an
SMIMECapabilities attribute listing the algorithms the client accepts
(:func:`smime_capabilities_attribute`).

The answer is ``multipart/mixed`` with a key part and a certificate part, in any order
(RFC 7030 §4.4.2). :func:`parse_serverkeygen_response` reads it with the standard library's MIME
parser and accepts:

* the key as ``application/pkcs8`` (PKCS#8 PrivateKeyInfo; PKCS#1 RSAPrivateKey and SEC1
  ECPrivateKey are accepted too), or as ``application/pkcs7-mime; smime-type=server-generated-key``
  (CMS EnvelopedData or RFC 5083 AuthEnvelopedData, decrypted with the caller's ``decrypt_key``
  whether the server names the recipient by issuerAndSerialNumber or by subjectKeyIdentifier - see
  :func:`_decrypt` for the algorithms; the plaintext may be a PKCS#8, an RFC 5958
  AsymmetricKeyPackage, or a CMS SignedData wrapping either - the SignedData is unwrapped, its
  signature is not checked);
* the certificate as ``application/pkcs7-mime`` certs-only;
* each part base64 (any line layout, with or without Content-Transfer-Encoding, which RFC 8951
  says to ignore), raw DER or PEM; CRLF or LF line ends; parts with an unknown or missing
  Content-Type are recognised by their content.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import email.parser
import email.policy

from .codecs import PKCS7_MEDIA_TYPES, decode_body, find_certificate_for_key, load_certs_only, parse_media_type
from ._asn1 import decode_all, require_pyasn1, short_reason as _short
from .errors import ESTError

try:  # Shipped to hosts that may lack pyasn1; the public functions report it as an ESTError.
    from pyasn1.codec.der import encoder as _der_encoder
    from pyasn1.type import univ
    from pyasn1_modules import rfc4055, rfc5083, rfc5084, rfc5280, rfc5652, rfc5958
    HAS_PYASN1 = True
    PYASN1_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    HAS_PYASN1 = False
    PYASN1_IMPORT_ERROR = _exc

MEDIA_TYPE = 'multipart/mixed'
PKCS8_MEDIA_TYPES = ('application/pkcs8', 'application/x-pkcs8', 'application/pkcs8-key')
SERVER_GENERATED_KEY = 'server-generated-key'

OID_ASYMM_DECRYPT_KEY_ID = '1.2.840.113549.1.9.16.2.54'
OID_SMIME_CAPABILITIES = '1.2.840.113549.1.9.15'
OID_SIGNED_DATA = '1.2.840.113549.1.7.2'
OID_ENVELOPED_DATA = '1.2.840.113549.1.7.3'
OID_AUTH_ENVELOPED_DATA = '1.2.840.113549.1.9.16.1.23'  # id-ct-authEnvelopedData (RFC 5083)
OID_DATA = '1.2.840.113549.1.7.1'
OID_KEY_PACKAGE = '2.16.840.1.101.2.1.2.78.5'  # id-ct-KP-aKeyPackage (RFC 5958)

# What the client asks for (the engine decrypts more, see _decrypt): RSA key transport, AES-256/128-CBC content.
DEFAULT_SMIME_CAPABILITIES = (
    '2.16.840.1.101.3.4.1.42',  # aes256-CBC
    '2.16.840.1.101.3.4.1.2',   # aes128-CBC
    '1.2.840.113549.1.1.1',     # rsaEncryption (key transport)
)

_MAX_NESTING = 4

# Content-encryption algorithms :func:`_decrypt` handles: OID -> (name, mode, key bytes).
_CONTENT_CIPHERS = {
    '2.16.840.1.101.3.4.1.2': ('AES-128-CBC', 'cbc', 16),
    '2.16.840.1.101.3.4.1.22': ('AES-192-CBC', 'cbc', 24),
    '2.16.840.1.101.3.4.1.42': ('AES-256-CBC', 'cbc', 32),
    '2.16.840.1.101.3.4.1.6': ('AES-128-GCM', 'gcm', 16),   # RFC 5084, in AuthEnvelopedData only
    '2.16.840.1.101.3.4.1.26': ('AES-192-GCM', 'gcm', 24),
    '2.16.840.1.101.3.4.1.46': ('AES-256-GCM', 'gcm', 32),
}
_OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1'
_OID_RSAES_OAEP = '1.2.840.113549.1.1.7'
_OID_MGF1 = '1.2.840.113549.1.1.8'
_OID_P_SPECIFIED = '1.2.840.113549.1.1.9'
_OID_SHA1 = '1.3.14.3.2.26'
_OAEP_HASHES = {
    _OID_SHA1: 'SHA1',
    '2.16.840.1.101.3.4.2.4': 'SHA224',
    '2.16.840.1.101.3.4.2.1': 'SHA256',
    '2.16.840.1.101.3.4.2.2': 'SHA384',
    '2.16.840.1.101.3.4.2.3': 'SHA512',
}
# Names for error messages, including algorithms a server might use that are not supported.
_ALGORITHM_NAMES = dict((oid, spec[0]) for oid, spec in _CONTENT_CIPHERS.items())
_ALGORITHM_NAMES.update({
    '1.2.840.113549.3.7': 'DES-EDE3-CBC',
    '1.3.14.3.2.7': 'DES-CBC',
    '1.2.840.113549.3.2': 'RC2-CBC',
    '2.16.840.1.101.3.4.1.7': 'AES-128-CCM',
    '2.16.840.1.101.3.4.1.27': 'AES-192-CCM',
    '2.16.840.1.101.3.4.1.47': 'AES-256-CCM',
    '1.2.840.113549.1.9.16.3.18': 'ChaCha20-Poly1305',
    '1.2.840.10045.2.1': 'id-ecPublicKey',
    _OID_RSA_ENCRYPTION: 'rsaEncryption',
    _OID_RSAES_OAEP: 'id-RSAES-OAEP',
})


def _require_pyasn1():
    require_pyasn1(HAS_PYASN1, PYASN1_IMPORT_ERROR, 'server-side key generation')


def _decode(data, spec):
    """BER-decode all of ``data`` against ``spec``; None when it does not fit."""
    try:
        return decode_all(data, spec)
    except ESTError:
        return None


# ---- attributes for the CSR builder ---------------------------------------------------------

def asymmetric_decrypt_key_id_attribute(key_identifier_bytes):
    """DER of the CSR Attribute ``id-aa-asymmDecryptKeyID`` (RFC 7030 §4.4.1.2).

    ``Attribute ::= SEQUENCE { type 1.2.840.113549.1.9.16.2.54, values SET { OCTET STRING } }``;
    ``key_identifier_bytes`` is usually the subjectKeyIdentifier of the client's key-transport
    certificate. The CSR builder adds this DER to the CSR's attributes.
    """
    _require_pyasn1()
    if not isinstance(key_identifier_bytes, (bytes, bytearray)) or not key_identifier_bytes:
        raise ESTError('invalid_input', 'the asymmetric decrypt key identifier must be non-empty bytes')
    attribute = rfc5652.Attribute()
    attribute['attrType'] = univ.ObjectIdentifier(OID_ASYMM_DECRYPT_KEY_ID)
    attribute['attrValues'].append(_der_encoder.encode(univ.OctetString(bytes(key_identifier_bytes))))
    return _der_encoder.encode(attribute)


def smime_capabilities_attribute(capabilities=DEFAULT_SMIME_CAPABILITIES):
    """DER of an SMIMECapabilities CSR Attribute (RFC 8551 §2.5.2) listing dotted OIDs, without parameters.

    RFC 7030 §4.4.1 asks for it next to the decrypt key identifier. The default lists what this
    engine can decrypt: AES-256-CBC, AES-128-CBC and RSA key transport.
    """
    _require_pyasn1()
    caps = univ.SequenceOf(componentType=rfc5280.AlgorithmIdentifier())
    for oid in capabilities:
        cap = rfc5280.AlgorithmIdentifier()
        try:
            cap['algorithm'] = univ.ObjectIdentifier(str(oid))
        except Exception:  # pylint: disable=broad-except
            raise ESTError('invalid_input', 'SMIME capability %r is not a dotted OID' % (oid,))
        caps.append(cap)
    attribute = rfc5652.Attribute()
    attribute['attrType'] = univ.ObjectIdentifier(OID_SMIME_CAPABILITIES)
    attribute['attrValues'].append(_der_encoder.encode(caps))
    return _der_encoder.encode(attribute)


# ---- multipart ------------------------------------------------------------------------------

def _mime_parts(content_type, body):
    media, params = parse_media_type(content_type)
    if media != MEDIA_TYPE:
        raise ESTError('unexpected_content_type', 'the serverkeygen response has Content-Type %r, expected multipart/mixed'
                       % (content_type,))
    if not params.get('boundary'):
        raise ESTError('bad_response', 'the serverkeygen response Content-Type %r names no boundary' % (content_type,))
    if not body:
        raise ESTError('bad_response', 'the serverkeygen response body is empty')
    header = ''.join(ch for ch in content_type if ch not in '\r\n').encode('latin-1', 'replace')
    raw = b'MIME-Version: 1.0\r\nContent-Type: ' + header + b'\r\n\r\n' + bytes(body)
    try:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts = message.get_payload() if message.is_multipart() else None
    except Exception as exc:  # pylint: disable=broad-except
        raise ESTError('bad_response', 'the serverkeygen response is not a readable multipart/mixed body: %s' % _short(exc))
    if not isinstance(parts, list) or not parts:
        raise ESTError('bad_response', 'the serverkeygen response has no MIME parts delimited by boundary %r' % params['boundary'])
    return parts


def _part_bytes(part):
    """The body of one MIME part as sent, whatever its Content-Transfer-Encoding says (RFC 8951 §3)."""
    if part.is_multipart():
        return None
    del part['Content-Transfer-Encoding']  # so the parser hands back the bytes untouched
    payload = part.get_payload(decode=True)
    if isinstance(payload, str):  # pragma: no cover - defensive, the parser gives bytes here
        payload = payload.encode('latin-1', 'replace')
    return payload or b''


def _part_der(payload, what):
    try:
        return decode_body(payload, what)
    except ESTError:
        stripped = payload.rstrip(b'\r\n')
        if stripped == payload or not stripped:
            raise
        return decode_body(stripped, what)


def _content_info_type(der):
    info = _decode(der, rfc5652.ContentInfo())
    if info is None:
        return None
    return str(info['contentType'])


def _classify(part, index):
    """``(kind, der)`` with kind 'key', 'encrypted_key', 'certs' or None for a part we do not use."""
    header = part.get('Content-Type')
    media, params = parse_media_type(str(header) if header is not None else '')
    what = 'part %d (%s) of the serverkeygen response' % (index + 1, media or 'no Content-Type')
    payload = _part_bytes(part)
    if payload is None:
        return None, None, what
    if media in PKCS8_MEDIA_TYPES:
        return 'key', _part_der(payload, what), what
    if media in PKCS7_MEDIA_TYPES:
        der = _part_der(payload, what)
        smime_type = params.get('smime-type', '').lower()
        if smime_type == SERVER_GENERATED_KEY:
            return 'encrypted_key', der, what
        if smime_type == 'certs-only':
            return 'certs', der, what
        content_type = _content_info_type(der)
        if content_type in (OID_ENVELOPED_DATA, OID_AUTH_ENVELOPED_DATA):
            return 'encrypted_key', der, what
        return 'certs', der, what
    # Unknown or missing media type: recognise the content.
    try:
        der = _part_der(payload, what)
    except ESTError:
        return None, None, what
    content_type = _content_info_type(der)
    if content_type in (OID_ENVELOPED_DATA, OID_AUTH_ENVELOPED_DATA):
        return 'encrypted_key', der, what
    if content_type == OID_SIGNED_DATA:
        return 'certs', der, what
    if _load_key_der(der) is not None:
        return 'key', der, what
    return None, None, what


# ---- keys -----------------------------------------------------------------------------------

def _load_key_der(der):
    """A cryptography private key from PKCS#8 / PKCS#1 / SEC1 / OneAsymmetricKey v2 DER, or None."""
    from cryptography.hazmat.primitives import serialization
    try:
        return serialization.load_der_private_key(der, password=None)
    except TypeError:
        raise ESTError('bad_response', 'the server returned a password-encrypted private key, which EST does not define')
    except Exception:  # pylint: disable=broad-except
        pass
    # RFC 5958 OneAsymmetricKey v2 (with a public key): retry as a v1 PrivateKeyInfo.
    one = _decode(der, rfc5958.OneAsymmetricKey())
    if one is not None and int(one['version']) == 1:
        plain = rfc5958.OneAsymmetricKey()
        plain['version'] = 0
        plain['privateKeyAlgorithm'] = one['privateKeyAlgorithm']
        plain['privateKey'] = one['privateKey']
        try:
            return serialization.load_der_private_key(_der_encoder.encode(plain), password=None)
        except Exception:  # pylint: disable=broad-except
            return None
    return None


def _key_from_content(data, depth=0):
    """The private key inside decrypted EnvelopedData content (RFC 7030 §4.4.2, RFC 5958 §4)."""
    if depth > _MAX_NESTING:
        raise ESTError('bad_response', 'the encrypted key is nested too deeply')
    key = _load_key_der(data)
    if key is not None:
        return key
    info = _decode(data, rfc5652.ContentInfo())
    if info is not None:
        content_type = str(info['contentType'])
        if content_type == OID_SIGNED_DATA:
            signed = _decode(bytes(info['content']), rfc5652.SignedData())
            if signed is None:
                raise ESTError('bad_response', 'the decrypted key holds a malformed SignedData')
            content = signed['encapContentInfo']['eContent']
            if not content.isValue:
                raise ESTError('bad_response', 'the SignedData around the server-generated key carries no content')
            return _key_from_content(content.asOctets(), depth + 1)
        if content_type == OID_DATA:
            inner = _decode(bytes(info['content']), univ.OctetString())
            if inner is not None:
                return _key_from_content(inner.asOctets(), depth + 1)
        raise ESTError('bad_response', 'the decrypted key is a CMS %s, expected SignedData or a key' % content_type)
    package = _decode(data, rfc5958.AsymmetricKeyPackage())
    if package is not None and len(package):
        key = _load_key_der(_der_encoder.encode(package[0]))
        if key is not None:
            return key
        raise ESTError('bad_response', 'the AsymmetricKeyPackage holds a key cryptography cannot load')
    raise ESTError('bad_response', 'the decrypted server-generated key is neither PKCS#8, an AsymmetricKeyPackage nor a SignedData')


# ---- CMS decryption (RFC 5652 §6, RFC 5083, RFC 5084, RFC 3560) --------------------------------

def _decrypt_key_id(certificate):
    """The AsymmetricDecryptKeyIdentifier the client sends for ``certificate`` (RFC 7030 §4.4.1.2): its
    subjectKeyIdentifier extension, else the RFC 5280 §4.2.1.2 method 1 identifier of its public key."""
    from cryptography import x509
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _decrypt_key_pair(decrypt_key):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    if decrypt_key is None:
        raise ESTError('invalid_input', 'the server returned the private key encrypted (CMS EnvelopedData); '
                       'give decrypt_key=(certificate, private_key) of the key named in the request')
    try:
        certificate, private_key = decrypt_key
    except (TypeError, ValueError):
        raise ESTError('invalid_input', 'decrypt_key must be a (certificate, private_key) pair')
    if not isinstance(certificate, x509.Certificate):
        raise ESTError('invalid_input', 'decrypt_key[0] must be a cryptography x509.Certificate')
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ESTError('invalid_input', 'decrypt_key[1] must be an RSA private key (only RSA key transport can be decrypted)')
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.public_numbers() != private_key.public_key().public_numbers():
        raise ESTError('invalid_input', 'decrypt_key[1] is not the private key of the certificate decrypt_key[0] (%s)'
                       % certificate.subject.rfc4514_string())
    return certificate, private_key


def _algorithm_name(oid):
    return '%s (%s)' % (_ALGORITHM_NAMES[oid], oid) if oid in _ALGORITHM_NAMES else oid


def _content_cipher(algorithm, authenticated):
    """``(name, mode, key size, parameters)`` for a contentEncryptionAlgorithm, checked against the envelope type."""
    oid = str(algorithm['algorithm'])
    if oid not in _CONTENT_CIPHERS:
        raise ESTError('bad_response', 'the encrypted server-generated key uses the content-encryption algorithm %s, which '
                       'this client does not support (AES-128/192/256-CBC in EnvelopedData, AES-128/192/256-GCM in '
                       'AuthEnvelopedData)' % _algorithm_name(oid))
    name, mode, size = _CONTENT_CIPHERS[oid]
    if authenticated and mode != 'gcm':
        raise ESTError('bad_response', 'the AuthEnvelopedData uses %s, which is not an authenticated cipher (RFC 5083 §2.1)' % name)
    if not authenticated and mode == 'gcm':
        raise ESTError('bad_response', 'the EnvelopedData uses %s, which needs an AuthEnvelopedData to carry its '
                       'authentication tag (RFC 5084 §3)' % name)
    parameters = algorithm['parameters']
    if not parameters.isValue:
        raise ESTError('bad_response', 'the %s algorithm identifier of the encrypted key has no parameters (%s)'
                       % (name, 'GCMParameters' if mode == 'gcm' else 'IV'))
    spec = rfc5084.GCMParameters() if mode == 'gcm' else univ.OctetString()
    value = _decode(bytes(parameters), spec)
    if value is None:
        raise ESTError('bad_response', 'the %s parameters of the encrypted key are malformed' % name)
    return name, mode, size, value


def _oaep_padding(parameters):
    """cryptography's OAEP padding for RSAES-OAEP-params (RFC 4055 §4.1; absent fields are SHA-1, MGF1-SHA-1, no label)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    params = rfc4055.RSAES_OAEP_params()
    if parameters.isValue:
        params = _decode(bytes(parameters), rfc4055.RSAES_OAEP_params())
        if params is None:
            raise ESTError('bad_response', 'the RSAES-OAEP parameters of the encrypted key are malformed')

    def _hash(identifier, what):
        oid = str(identifier['algorithm']) if identifier.isValue else _OID_SHA1
        if oid not in _OAEP_HASHES:
            raise ESTError('bad_response', 'the RSAES-OAEP %s %s is not supported (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512)'
                           % (what, oid))
        return getattr(hashes, _OAEP_HASHES[oid])()

    algorithm = _hash(params['hashFunc'], 'hash function')
    mgf_hash = hashes.SHA1()  # the default is mgf1SHA1 whatever hashFunc is
    mask = params['maskGenFunc']
    if mask.isValue:
        if str(mask['algorithm']) != _OID_MGF1:
            raise ESTError('bad_response', 'the RSAES-OAEP mask generation function %s is not supported (MGF1 only)'
                           % mask['algorithm'])
        mgf_parameters = _decode(bytes(mask['parameters']), rfc5280.AlgorithmIdentifier()) if mask['parameters'].isValue else None
        if mgf_parameters is None:
            raise ESTError('bad_response', 'the RSAES-OAEP MGF1 parameters of the encrypted key are malformed')
        mgf_hash = _hash(mgf_parameters, 'MGF1 hash function')
    label = None
    source = params['pSourceFunc']
    if source.isValue:
        if str(source['algorithm']) != _OID_P_SPECIFIED:
            raise ESTError('bad_response', 'the RSAES-OAEP label source %s is not supported (id-pSpecified only)' % source['algorithm'])
        value = _decode(bytes(source['parameters']), univ.OctetString()) if source['parameters'].isValue else None
        if value is None:
            raise ESTError('bad_response', 'the RSAES-OAEP label of the encrypted key is malformed')
        label = value.asOctets() or None
    return padding.OAEP(mgf=padding.MGF1(algorithm=mgf_hash), algorithm=algorithm, label=label)


def _key_transport_padding(algorithm):
    from cryptography.hazmat.primitives.asymmetric import padding
    oid = str(algorithm['algorithm'])
    if oid == _OID_RSA_ENCRYPTION:
        return padding.PKCS1v15()
    if oid == _OID_RSAES_OAEP:
        return _oaep_padding(algorithm['parameters'])
    raise ESTError('bad_response', 'the encrypted server-generated key is wrapped for our certificate with the key-encryption '
                   'algorithm %s, which this client does not support (rsaEncryption, id-RSAES-OAEP)' % _algorithm_name(oid))


def _issuer_der(certificate):
    """The certificate's issuer Name as pyasn1 DER-encodes it, so both sides of the comparison are normalised alike."""
    from cryptography.hazmat.primitives import serialization
    parsed = _decode(certificate.public_bytes(serialization.Encoding.DER), rfc5280.Certificate())
    if parsed is None:  # pragma: no cover - cryptography loaded it, so pyasn1 reads it too
        return certificate.issuer.public_bytes()
    return _der_encoder.encode(parsed['tbsCertificate']['issuer'])


def _describe_rid(rid):
    if rid.getName() == 'subjectKeyIdentifier':
        return 'subjectKeyIdentifier %s' % rid['subjectKeyIdentifier'].asOctets().hex()
    return 'issuerAndSerialNumber (serial %x)' % int(rid['issuerAndSerialNumber']['serialNumber'])


def _our_recipients(recipient_infos, certificate):
    """The KeyTransRecipientInfos addressed to ``certificate``, by issuerAndSerialNumber or subjectKeyIdentifier."""
    from cryptography import x509
    key_ids = {_decrypt_key_id(certificate), x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest}
    issuer = None
    ours, others = [], []
    for info in recipient_infos:
        if info.getName() != 'ktri':
            others.append('a %s recipient' % info.getName())
            continue
        ktri = info['ktri']
        rid = ktri['rid']
        if rid.getName() == 'subjectKeyIdentifier':
            match = rid['subjectKeyIdentifier'].asOctets() in key_ids
        else:
            ias = rid['issuerAndSerialNumber']
            if issuer is None:
                issuer = _issuer_der(certificate)
            match = int(ias['serialNumber']) == certificate.serial_number and _der_encoder.encode(ias['issuer']) == issuer
        (ours if match else others).append(ktri if match else _describe_rid(rid))
    if not ours:
        raise ESTError('bad_response', 'the encrypted server-generated key has no recipient for our decrypt certificate %s '
                       '(subjectKeyIdentifier %s, serial %x); it is encrypted to: %s'
                       % (certificate.subject.rfc4514_string(), _decrypt_key_id(certificate).hex(), certificate.serial_number,
                          ', '.join(others) or 'nobody'))
    return ours


def _unwrap_content_key(recipient_infos, certificate, private_key, name, size):
    """The content-encryption key from the first of our KeyTransRecipientInfos that unwraps to a ``size``-byte key."""
    for ktri in _our_recipients(recipient_infos, certificate):
        pad = _key_transport_padding(ktri['keyEncryptionAlgorithm'])
        try:
            key = private_key.decrypt(ktri['encryptedKey'].asOctets(), pad)
        except ValueError:
            continue
        if len(key) == size:
            return key
    # One message for every RSA failure: with implicit rejection (OpenSSL 3.2+) a wrong key yields random bytes, not an error.
    raise ESTError('bad_response', 'the content-encryption key of the encrypted server-generated key could not be unwrapped '
                   'with the decrypt key into a %s key (RSA decryption failed: wrong key or corrupted encryptedKey)' % name)


def _decrypt_content(name, mode, key, parameters, ciphertext, mac=None, aad=b''):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import padding as sym_padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    if mode == 'cbc':
        iv = parameters.asOctets()
        if len(iv) != 16:
            raise ESTError('bad_response', 'the %s IV of the encrypted key has %d bytes, expected 16' % (name, len(iv)))
        if not ciphertext or len(ciphertext) % 16:
            raise ESTError('bad_response', 'the %s encrypted content (%d bytes) is not a whole number of 16-byte blocks'
                           % (name, len(ciphertext)))
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = sym_padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise ESTError('bad_response', 'the %s encrypted content has bad PKCS#7 padding after decryption '
                           '(wrong key or corrupted content)' % name)
    nonce = parameters['aes-nonce'].asOctets()
    icv_length = int(parameters['aes-ICVlen'])
    if len(mac) != icv_length:
        raise ESTError('bad_response', 'the %s authentication tag has %d bytes, the parameters say %d' % (name, len(mac), icv_length))
    try:
        decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, mac, min_tag_length=icv_length)).decryptor()
    except ValueError as exc:
        raise ESTError('bad_response', 'the %s parameters of the encrypted key are unusable: %s' % (name, _short(exc)))
    decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(ciphertext)
    try:
        return plaintext + decryptor.finalize()
    except InvalidTag:
        raise ESTError('bad_response', 'the %s authentication tag of the encrypted server-generated key does not verify '
                       '(tampered or corrupted content, or wrong key)' % name)


def _decrypt(der, decrypt_key):
    """The plaintext of a CMS EnvelopedData (RFC 5652 §6) or AuthEnvelopedData (RFC 5083) for ``decrypt_key``.

    One pyasn1-based implementation instead of cryptography's ``pkcs7_decrypt_der``, which only finds
    recipients by issuerAndSerialNumber, only knows RSA PKCS#1 v1.5 and AES-128/256-CBC, and reads no
    AuthEnvelopedData - while RFC 7030 §4.4.2 lets the server name the recipient by the
    subjectKeyIdentifier the client sent in id-aa-asymmDecryptKeyID. A single path keeps the behaviour
    and error messages the same whichever form the server picks.

    Recipient: a KeyTransRecipientInfo whose rid is the decrypt certificate's issuerAndSerialNumber, or
    a subjectKeyIdentifier equal to what :func:`ask_for_encrypted_key` sends (the certificate's
    subjectKeyIdentifier extension, else the RFC 5280 method 1 SHA-1 of its key) or to the method 1
    identifier. Key transport: rsaEncryption (PKCS#1 v1.5) or id-RSAES-OAEP (RFC 3560, RFC 4055
    parameters: SHA-1/224/256/384/512, MGF1, optional label). Content: AES-128/192/256-CBC (IV as
    parameters, PKCS#7 padding) in EnvelopedData; AES-128/192/256-GCM (RFC 5084 GCMParameters, the tag
    in ``mac``, DER of authAttrs as additional data) in AuthEnvelopedData. DES-EDE3-CBC and other
    algorithms are refused by name. Every failure is ``ESTError('bad_response')`` naming what was wrong;
    no key material goes into messages.
    """
    certificate, private_key = _decrypt_key_pair(decrypt_key)
    info = _decode(der, rfc5652.ContentInfo())
    content_type = str(info['contentType']) if info is not None else None
    if content_type == OID_ENVELOPED_DATA:
        envelope, authenticated = _decode(bytes(info['content']), rfc5652.EnvelopedData()), False
    elif content_type == OID_AUTH_ENVELOPED_DATA:
        envelope, authenticated = _decode(bytes(info['content']), rfc5083.AuthEnvelopedData()), True
    else:
        raise ESTError('bad_response', 'the encrypted server-generated key is %s, expected a CMS EnvelopedData or AuthEnvelopedData'
                       % ('no CMS ContentInfo' if info is None else 'a CMS %s' % content_type))
    what = 'AuthEnvelopedData' if authenticated else 'EnvelopedData'
    if envelope is None:
        raise ESTError('bad_response', 'the encrypted server-generated key is a malformed %s' % what)
    content_info = envelope['authEncryptedContentInfo' if authenticated else 'encryptedContentInfo']
    name, mode, size, parameters = _content_cipher(content_info['contentEncryptionAlgorithm'], authenticated)
    if not content_info['encryptedContent'].isValue:
        raise ESTError('bad_response', 'the %s carries no encryptedContent (detached content is not supported)' % what)
    ciphertext = content_info['encryptedContent'].asOctets()
    key = _unwrap_content_key(envelope['recipientInfos'], certificate, private_key, name, size)
    if not authenticated:
        return _decrypt_content(name, mode, key, parameters, ciphertext)
    aad = b''
    if envelope['authAttrs'].isValue:  # RFC 5083 §2.2: their DER with the [1] tag replaced by SET OF
        aad = b'\x31' + _der_encoder.encode(envelope['authAttrs'])[1:]
    return _decrypt_content(name, mode, key, parameters, ciphertext, envelope['mac'].asOctets(), aad)


# ---- public ---------------------------------------------------------------------------------

def parse_serverkeygen_response(content_type, body, decrypt_key=None):
    """Read a ``/serverkeygen`` answer.

    ``content_type`` is the response's Content-Type header (with its boundary), ``body`` the bytes.
    ``decrypt_key`` is ``(certificate, rsa_private_key)`` for an encrypted key part.

    Returns ``{'private_key': <cryptography private key>, 'certificates': [x509.Certificate, ...],
    'encrypted': bool}``; ``certificates`` is the certificate part in server order (use
    :func:`check_key_matches` to pick the issued one).

    Raises ``ESTError``: 'unexpected_content_type' if not multipart/mixed; 'bad_response' for a
    missing boundary, a missing or duplicated key or certificate part, or an unreadable key;
    'invalid_input' for an encrypted key without (or with an unusable) ``decrypt_key``.
    """
    _require_pyasn1()
    if isinstance(body, str):
        body = body.encode('latin-1', 'replace')
    try:
        return _parse(content_type or '', body, decrypt_key)
    except ESTError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise ESTError('bad_response', 'the serverkeygen response could not be read: %s' % _short(exc))


def _parse(content_type, body, decrypt_key):
    found = {}
    seen = []
    for index, part in enumerate(_mime_parts(content_type, body)):
        kind, der, what = _classify(part, index)
        seen.append(what)
        if kind is None:
            continue
        slot = 'certs' if kind == 'certs' else 'key'
        if slot in found:
            raise ESTError('bad_response', 'the serverkeygen response has more than one %s part'
                           % ('certificate' if slot == 'certs' else 'private key'))
        found[slot] = (kind, der, what)
    if 'key' not in found:
        raise ESTError('bad_response', 'the serverkeygen response has no private key part (application/pkcs8 or '
                       'application/pkcs7-mime; smime-type=server-generated-key); parts: %s' % ', '.join(seen))
    if 'certs' not in found:
        raise ESTError('bad_response', 'the serverkeygen response has no certificate part (application/pkcs7-mime); parts: %s'
                       % ', '.join(seen))
    kind, der, what = found['key']
    if kind == 'encrypted_key':
        key = _key_from_content(_decrypt(der, decrypt_key))
        encrypted = True
    else:
        key = _load_key_der(der)
        if key is None:
            raise ESTError('bad_response', 'the %s is not a PKCS#8, PKCS#1 or SEC1 private key' % what)
        encrypted = False
    _kind, cert_der, cert_what = found['certs']
    certificates = load_certs_only(cert_der, cert_what)
    return {'private_key': key, 'certificates': certificates, 'encrypted': encrypted}


def check_key_matches(private_key, certificates):
    """The certificate in ``certificates`` whose public key is ``private_key``'s, else ``ESTError('verification')``."""
    try:
        public_key = private_key.public_key()
    except AttributeError:
        raise ESTError('invalid_input', 'check_key_matches() needs a cryptography private key')
    cert = find_certificate_for_key(certificates or [], public_key)
    if cert is None:
        raise ESTError('verification', 'none of the %d certificates returned by serverkeygen is for the returned private key'
                       % len(certificates or []))
    return cert


def load_decrypt_key(cert_path, key_path=None):
    """``(certificate, private key)`` from PEM files, to decrypt an encrypted server-generated key."""
    from .codecs import load_pem_certs
    from .fileio import read_bytes
    from .keys import load_private_key
    cert_data = read_bytes(cert_path)
    key_data = read_bytes(key_path or cert_path)
    if cert_data is None or key_data is None:
        raise ESTError('invalid_input', 'the decryption certificate or key is missing (%s, %s)' % (cert_path, key_path))
    cert = load_pem_certs(cert_data, 'decryption certificate %s' % cert_path)[0]
    return cert, load_private_key(key_data, 'the decryption key %s' % (key_path or cert_path))


def ask_for_encrypted_key(csr_der, signer, decrypt_cert):
    """``csr_der`` with AsymmetricDecryptKeyIdentifier (the recipient's subject key identifier) and
    SMIMECapabilities added (RFC 7030 §4.4.1.2), re-signed by ``signer``."""
    from .csr_asn1 import rebuild_csr
    key_id = _decrypt_key_id(decrypt_cert)
    return rebuild_csr(csr_der, signer, [asymmetric_decrypt_key_id_attribute(key_id), smime_capabilities_attribute()])
