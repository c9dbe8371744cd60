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
  (CMS EnvelopedData, decrypted with the caller's ``decrypt_key``; the plaintext may be a PKCS#8,
  an RFC 5958 AsymmetricKeyPackage, or a CMS SignedData wrapping either - the SignedData is
  unwrapped, its signature is not checked);
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
    from pyasn1_modules import rfc5280, rfc5652, rfc5958
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
OID_DATA = '1.2.840.113549.1.7.1'
OID_KEY_PACKAGE = '2.16.840.1.101.2.1.2.78.5'  # id-ct-KP-aKeyPackage (RFC 5958)

# What cryptography can decrypt: RSA PKCS#1 v1.5 key transport, AES-128/256-CBC content.
DEFAULT_SMIME_CAPABILITIES = (
    '2.16.840.1.101.3.4.1.42',  # aes256-CBC
    '2.16.840.1.101.3.4.1.2',   # aes128-CBC
    '1.2.840.113549.1.1.1',     # rsaEncryption (key transport)
)

_MAX_NESTING = 4


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
        if content_type == OID_ENVELOPED_DATA:
            return 'encrypted_key', der, what
        return 'certs', der, what
    # Unknown or missing media type: recognise the content.
    try:
        der = _part_der(payload, what)
    except ESTError:
        return None, None, what
    content_type = _content_info_type(der)
    if content_type == OID_ENVELOPED_DATA:
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


def _decrypt(der, decrypt_key):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs7
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
    try:
        return pkcs7.pkcs7_decrypt_der(der, certificate, private_key, [])
    except Exception as exc:  # pylint: disable=broad-except
        raise ESTError('bad_response', 'the encrypted server-generated key could not be decrypted with the given key '
                       '(is it the key named in the request, and an RSA key-transport recipient?): %s' % _short(exc))


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
    from cryptography import x509
    from .csr_asn1 import rebuild_csr
    try:
        key_id = decrypt_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        key_id = x509.SubjectKeyIdentifier.from_public_key(decrypt_cert.public_key()).digest
    return rebuild_csr(csr_der, signer, [asymmetric_decrypt_key_id_attribute(key_id), smime_capabilities_attribute()])
