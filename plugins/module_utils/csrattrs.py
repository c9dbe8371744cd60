# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CSR Attributes (``/csrattrs``): RFC 7030 §4.5, RFC 8951 §4 and RFC 9908.

:func:`parse_csrattrs` turns the DER of a ``CsrAttrs`` (the caller strips the base64 with
``codecs.decode_body``) into plain data; :func:`to_csr_requirements` condenses that into what a
CSR builder should apply.

``parse_csrattrs`` returns a list with one dict per ``AttrOrOID`` element, in server order::

    {'oid': '1.2.840.113549.1.9.14',      # dotted OID of the bare OID or of the attribute type
     'name': 'extensionRequest',          # well-known name, else the dotted OID again
     'type': 'oid' | 'attribute',
     'values': [...]}                      # [] for a bare OID; decoded values for an attribute

Decoded ``values`` by attribute type:

* ``extensionRequest`` (also Microsoft's 1.3.6.1.4.1.311.2.1.14 and a top-level
  ``id-aa-extensionReqTemplate``): one dict per requested extension,
  ``{'oid', 'name', 'critical': bool or None, 'value': decoded or None, 'value_hex': DER hex or None}``.
  ``value`` is a list of ``DNS:``/``IP:``/``email:``/``URI:``/``RID:``/``dirName:``/``otherName:``
  strings for subjectAltName, key usage bit names for keyUsage, EKU names (or dotted OIDs) for
  extKeyUsage, ``{'ca': bool, 'path_length': int or None}`` for basicConstraints, hex for
  subjectKeyIdentifier, else None. The RFC 7030 §4.5.2 example's bare OID value (macAddress)
  becomes ``{'oid', 'name', 'critical': None, 'value': None, 'value_hex': None}``.
* public key algorithms (id-ecPublicKey, rsaEncryption, id-Ed25519, ...): key hints
  ``{'key_type': 'ec', 'curve': 'secp384r1', 'curve_oid': '1.3.132.0.34'}``,
  ``{'key_type': 'rsa', 'key_size': 3072}``, ``{'key_type': 'ed25519'}``.
* ``challengePassword`` and other string attributes: the strings.
* ``id-aa-certificationRequestInfoTemplate`` (RFC 9908): ``[template]``, and the item also gets
  ``'template': template`` with ``template`` = ``{'version': 0, 'subject': [{'oid', 'name',
  'value': str or None}, ...] or None, 'key': key hint (see above, plus 'algorithm_oid') or None,
  'extensions': [extension dicts as above], 'attributes': [items as above for other attributes]}``.
* anything else: per value an OID dict ``{'oid', 'name'}``, a str, an int, a bool, or ``{'der': hex}``.

RFC 9908's ASN.1 (not in pyasn1-modules 0.4.2, so defined here): ``id-aa-certificationRequestInfoTemplate``
is ``id-aa 61`` = 1.2.840.113549.1.9.16.2.61 and ``id-aa-extensionReqTemplate`` is ``id-aa 62``::

    CertificationRequestInfoTemplate ::= SEQUENCE {
        version       INTEGER { v1(0) } (v1, ... ),
        subject       NameTemplate OPTIONAL,
        subjectPKInfo [0] SubjectPublicKeyInfoTemplate OPTIONAL,
        attributes    [1] Attributes{{ CRIAttributes }} }
    NameTemplate: a Name whose SingleAttributeTemplate ``value`` is OPTIONAL
    SubjectPublicKeyInfoTemplate ::= SEQUENCE { algorithm AlgorithmIdentifier,
                                                subjectPublicKey BIT STRING OPTIONAL }
    ExtensionTemplate ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
                                     extnValue OCTET STRING OPTIONAL }
    ExtensionReqTemplate ::= SEQUENCE SIZE (1..MAX) OF ExtensionTemplate

The module is IMPLICIT TAGS, so ``[0]`` and ``[1]`` are implicit.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import ipaddress

from ._asn1 import decode_all, require_pyasn1, short_reason as _short
from .errors import ESTError

try:  # Shipped to hosts that may lack pyasn1; the public functions report it as an ESTError.
    from pyasn1.type import char, constraint, namedtype, namedval, tag, univ
    from pyasn1_modules import rfc3279, rfc5280, rfc5652, rfc7030
    HAS_PYASN1 = True
    PYASN1_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    HAS_PYASN1 = False
    PYASN1_IMPORT_ERROR = _exc

MEDIA_TYPE = 'application/csrattrs'

OID_CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7'
OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14'
OID_MS_EXTENSION_REQUEST = '1.3.6.1.4.1.311.2.1.14'
OID_CRI_TEMPLATE = '1.2.840.113549.1.9.16.2.61'        # id-aa-certificationRequestInfoTemplate (RFC 9908)
OID_EXTENSION_REQ_TEMPLATE = '1.2.840.113549.1.9.16.2.62'  # id-aa-extensionReqTemplate (RFC 9908)
OID_ASYMM_DECRYPT_KEY_ID = '1.2.840.113549.1.9.16.2.54'
OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1'
OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1'
OID_SUBJECT_ALT_NAME = '2.5.29.17'

_EXTENSION_REQUEST_TYPES = (OID_EXTENSION_REQUEST, OID_MS_EXTENSION_REQUEST, OID_EXTENSION_REQ_TEMPLATE)

# Public key algorithms: OID -> key_type.
KEY_ALGORITHMS = {
    OID_RSA_ENCRYPTION: 'rsa',
    '1.2.840.113549.1.1.10': 'rsa',  # RSASSA-PSS keys
    OID_EC_PUBLIC_KEY: 'ec',
    '1.3.101.112': 'ed25519',
    '1.3.101.113': 'ed448',
    '1.3.101.110': 'x25519',
    '1.3.101.111': 'x448',
    '2.16.840.1.101.3.4.3.17': 'ml-dsa-44',
    '2.16.840.1.101.3.4.3.18': 'ml-dsa-65',
    '2.16.840.1.101.3.4.3.19': 'ml-dsa-87',
}

CURVES = {
    '1.2.840.10045.3.1.7': 'secp256r1',
    '1.3.132.0.34': 'secp384r1',
    '1.3.132.0.35': 'secp521r1',
    '1.3.132.0.33': 'secp224r1',
    '1.3.132.0.10': 'secp256k1',
    '1.3.36.3.3.2.8.1.1.7': 'brainpoolP256r1',
    '1.3.36.3.3.2.8.1.1.11': 'brainpoolP384r1',
    '1.3.36.3.3.2.8.1.1.13': 'brainpoolP512r1',
}

# Signature algorithms: OID -> (key_type or None, hash or None).
SIGNATURE_ALGORITHMS = {
    '1.2.840.113549.1.1.5': ('rsa', 'sha1'),
    '1.2.840.113549.1.1.14': ('rsa', 'sha224'),
    '1.2.840.113549.1.1.11': ('rsa', 'sha256'),
    '1.2.840.113549.1.1.12': ('rsa', 'sha384'),
    '1.2.840.113549.1.1.13': ('rsa', 'sha512'),
    '1.2.840.113549.1.1.10': ('rsa', None),
    '1.2.840.10045.4.3.1': ('ec', 'sha224'),
    '1.2.840.10045.4.3.2': ('ec', 'sha256'),
    '1.2.840.10045.4.3.3': ('ec', 'sha384'),
    '1.2.840.10045.4.3.4': ('ec', 'sha512'),
}

HASH_ALGORITHMS = {
    '1.3.14.3.2.26': 'sha1',
    '2.16.840.1.101.3.4.2.4': 'sha224',
    '2.16.840.1.101.3.4.2.1': 'sha256',
    '2.16.840.1.101.3.4.2.2': 'sha384',
    '2.16.840.1.101.3.4.2.3': 'sha512',
}

EXTENSIONS = {
    '2.5.29.14': 'subjectKeyIdentifier',
    '2.5.29.15': 'keyUsage',
    '2.5.29.17': 'subjectAltName',
    '2.5.29.18': 'issuerAltName',
    '2.5.29.19': 'basicConstraints',
    '2.5.29.30': 'nameConstraints',
    '2.5.29.31': 'cRLDistributionPoints',
    '2.5.29.32': 'certificatePolicies',
    '2.5.29.35': 'authorityKeyIdentifier',
    '2.5.29.37': 'extKeyUsage',
    '1.3.6.1.5.5.7.1.1': 'authorityInfoAccess',
    '1.3.6.1.5.5.7.1.24': 'tlsFeature',
}

NAME_ATTRIBUTES = {
    '2.5.4.3': 'commonName',
    '2.5.4.4': 'surname',
    '2.5.4.5': 'serialNumber',
    '2.5.4.6': 'countryName',
    '2.5.4.7': 'localityName',
    '2.5.4.8': 'stateOrProvinceName',
    '2.5.4.9': 'streetAddress',
    '2.5.4.10': 'organizationName',
    '2.5.4.11': 'organizationalUnitName',
    '2.5.4.12': 'title',
    '2.5.4.17': 'postalCode',
    '2.5.4.42': 'givenName',
    '2.5.4.65': 'pseudonym',
    '0.9.2342.19200300.100.1.25': 'domainComponent',
    '0.9.2342.19200300.100.1.1': 'userId',
    '1.2.840.113549.1.9.1': 'emailAddress',
}

EXTENDED_KEY_USAGES = {
    '1.3.6.1.5.5.7.3.1': 'serverAuth',
    '1.3.6.1.5.5.7.3.2': 'clientAuth',
    '1.3.6.1.5.5.7.3.3': 'codeSigning',
    '1.3.6.1.5.5.7.3.4': 'emailProtection',
    '1.3.6.1.5.5.7.3.8': 'timeStamping',
    '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
    '1.3.6.1.5.5.7.3.17': 'ipsecIKE',
    '1.3.6.1.5.5.7.3.27': 'cmcCA',
    '1.3.6.1.5.5.7.3.28': 'cmcRA',
    '1.3.6.1.5.5.7.3.32': 'cmKGA',
    '2.5.29.37.0': 'anyExtendedKeyUsage',
}

KEY_USAGE_BITS = ('digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement',
                  'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly')

OID_NAMES = {
    OID_CHALLENGE_PASSWORD: 'challengePassword',
    OID_EXTENSION_REQUEST: 'extensionRequest',
    OID_MS_EXTENSION_REQUEST: 'msExtensionRequest',
    OID_CRI_TEMPLATE: 'certificationRequestInfoTemplate',
    OID_EXTENSION_REQ_TEMPLATE: 'extensionReqTemplate',
    OID_ASYMM_DECRYPT_KEY_ID: 'asymmDecryptKeyID',
    '1.2.840.113549.1.9.16.2.37': 'decryptKeyID',
    '1.2.840.113549.1.9.2': 'unstructuredName',
    '1.2.840.113549.1.9.8': 'unstructuredAddress',
    '1.2.840.113549.1.9.15': 'smimeCapabilities',
    '1.2.840.113549.1.9.20': 'friendlyName',
    '1.2.840.113549.1.9.21': 'localKeyId',
    '1.3.6.1.1.1.1.22': 'macAddress',
    '0.9.2342.19200300.100.1.5': 'favouriteDrink',
    '1.3.6.1.5.5.7.7.36': 'changeSubjectName',
    '1.2.840.113549.1.1.1': 'rsaEncryption',
    '1.2.840.113549.1.1.10': 'id-RSASSA-PSS',
    OID_EC_PUBLIC_KEY: 'id-ecPublicKey',
    '1.3.101.112': 'id-Ed25519',
    '1.3.101.113': 'id-Ed448',
    '1.3.101.110': 'id-X25519',
    '1.3.101.111': 'id-X448',
    '2.16.840.1.101.3.4.3.17': 'id-ml-dsa-44',
    '2.16.840.1.101.3.4.3.18': 'id-ml-dsa-65',
    '2.16.840.1.101.3.4.3.19': 'id-ml-dsa-87',
    '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
    '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
    '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
    '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
    '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
    '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
    '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
    '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
    '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
    '1.3.14.3.2.26': 'sha1',
    '2.16.840.1.101.3.4.2.4': 'sha224',
    '2.16.840.1.101.3.4.2.1': 'sha256',
    '2.16.840.1.101.3.4.2.2': 'sha384',
    '2.16.840.1.101.3.4.2.3': 'sha512',
}
OID_NAMES.update(CURVES)
OID_NAMES.update(EXTENSIONS)
OID_NAMES.update(NAME_ATTRIBUTES)
OID_NAMES.update(EXTENDED_KEY_USAGES)

_MAX = float('inf')

if HAS_PYASN1:
    # RFC 9908 Appendix A, written out here because pyasn1-modules 0.4.2 does not carry it.

    class _SingleAttributeTemplate(univ.Sequence):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('type', univ.ObjectIdentifier()),
            namedtype.OptionalNamedType('value', univ.Any()),
        )

    class _RelativeDistinguishedNameTemplate(univ.SetOf):
        componentType = _SingleAttributeTemplate()
        sizeSpec = constraint.ValueSizeConstraint(1, _MAX)

    class _RDNSequenceTemplate(univ.SequenceOf):
        componentType = _RelativeDistinguishedNameTemplate()

    class _NameTemplate(univ.Choice):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('rdnSequence', _RDNSequenceTemplate()),
        )

    class _SubjectPublicKeyInfoTemplate(univ.Sequence):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('algorithm', rfc5280.AlgorithmIdentifier()),
            namedtype.OptionalNamedType('subjectPublicKey', univ.BitString()),
        )

    class _ExtensionTemplate(univ.Sequence):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('extnID', univ.ObjectIdentifier()),
            namedtype.DefaultedNamedType('critical', univ.Boolean().subtype(value=0)),
            namedtype.OptionalNamedType('extnValue', univ.OctetString()),
        )

    class _ExtensionTemplates(univ.SequenceOf):
        componentType = _ExtensionTemplate()

    class _TemplateAttributes(univ.SetOf):
        componentType = rfc5652.Attribute()

    class _CertificationRequestInfoTemplate(univ.Sequence):
        componentType = namedtype.NamedTypes(
            namedtype.NamedType('version', univ.Integer(namedValues=namedval.NamedValues(('v1', 0)))),
            namedtype.OptionalNamedType('subject', _NameTemplate()),
            namedtype.OptionalNamedType('subjectPKInfo', _SubjectPublicKeyInfoTemplate().subtype(
                implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))),
            namedtype.NamedType('attributes', _TemplateAttributes().subtype(
                implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 1))),
        )


def oid_name(oid):
    """The well-known name of a dotted OID, else the dotted OID itself."""
    return OID_NAMES.get(str(oid), str(oid))


def _require_pyasn1():
    require_pyasn1(HAS_PYASN1, PYASN1_IMPORT_ERROR, 'parsing CSR attributes')


def _decode(data, spec=None, what='value'):
    """BER-decode ``data`` completely; anything odd becomes ``ESTError('bad_response')``."""
    return decode_all(data, spec, what)


def _hex(data):
    return binascii.hexlify(bytes(data)).decode('ascii')


def _oid_dict(oid):
    oid = str(oid)
    return {'oid': oid, 'name': oid_name(oid)}


def _plain(value):
    """A decoded pyasn1 value of a universal type as plain data."""
    if isinstance(value, univ.ObjectIdentifier):
        return _oid_dict(value)
    if isinstance(value, univ.Boolean):
        return bool(value)
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, char.AbstractCharacterString):
        return str(value)
    if isinstance(value, univ.Null):
        return None
    if isinstance(value, univ.OctetString):
        return {'der': _hex(value.asOctets())}
    return None


def _generic_value(raw):
    """Plain data for an attribute value of a type we do not model: OID dict, str, int, bool or DER hex."""
    try:
        value = _decode(raw)
    except ESTError:
        return {'der': _hex(raw)}
    plain = _plain(value)
    if plain is None and not isinstance(value, univ.Null):
        return {'der': _hex(raw)}
    return plain


def _string_value(raw):
    """A DirectoryString / IA5String / PrintableString value as text, or None."""
    try:
        value = _decode(raw)
    except ESTError:
        return None
    if isinstance(value, char.AbstractCharacterString):
        return str(value)
    return None


# ---- extensions -----------------------------------------------------------------------------

def _general_name(name):
    kind = name.getName()
    value = name.getComponent()
    if kind == 'dNSName':
        return 'DNS:' + str(value)
    if kind == 'rfc822Name':
        return 'email:' + str(value)
    if kind == 'uniformResourceIdentifier':
        return 'URI:' + str(value)
    if kind == 'iPAddress':
        octets = value.asOctets()
        if len(octets) in (4, 16):
            return 'IP:' + str(ipaddress.ip_address(octets))
        return 'IP:' + _hex(octets)
    if kind == 'registeredID':
        return 'RID:' + str(value)
    if kind == 'directoryName':
        return 'dirName:' + _name_string(value)
    if kind == 'otherName':
        text = _string_value(bytes(value['value'])) if value['value'].isValue else None
        return 'otherName:' + str(value['type-id']) + (';' + text if text is not None else '')
    return '%s:%s' % (kind, _hex(value.asOctets()) if hasattr(value, 'asOctets') else '')


def _name_string(name):
    """An RFC 4514-like string (most significant RDN last) of a pyasn1 Name."""
    parts = []
    for rdn in name['rdnSequence']:
        pieces = []
        for atv in rdn:
            oid = str(atv['type'])
            text = _string_value(bytes(atv['value']))
            pieces.append('%s=%s' % (_short_name(oid), text if text is not None else '#' + _hex(atv['value'])))
        parts.append('+'.join(pieces))
    return ','.join(reversed(parts))


_SHORT_NAMES = {'2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.9': 'STREET', '2.5.4.10': 'O',
                '2.5.4.11': 'OU', '0.9.2342.19200300.100.1.25': 'DC', '0.9.2342.19200300.100.1.1': 'UID'}


def _short_name(oid):
    return _SHORT_NAMES.get(oid, NAME_ATTRIBUTES.get(oid, oid))


def _extension_value(oid, der):
    """Decoded plain value of a well-known extension, or None."""
    try:
        if oid in ('2.5.29.17', '2.5.29.18'):
            return [_general_name(gn) for gn in _decode(der, rfc5280.GeneralNames(), 'subjectAltName')]
        if oid == '2.5.29.15':
            bits = _decode(der, rfc5280.KeyUsage(), 'keyUsage')
            return [KEY_USAGE_BITS[i] for i, bit in enumerate(bits) if bit and i < len(KEY_USAGE_BITS)]
        if oid == '2.5.29.37':
            return [EXTENDED_KEY_USAGES.get(str(o), str(o)) for o in _decode(der, rfc5280.ExtKeyUsageSyntax(), 'extKeyUsage')]
        if oid == '2.5.29.19':
            value = _decode(der, rfc5280.BasicConstraints(), 'basicConstraints')
            path = value['pathLenConstraint']
            return {'ca': bool(value['cA']), 'path_length': int(path) if path.isValue else None}
        if oid == '2.5.29.14':
            return _hex(_decode(der, rfc5280.SubjectKeyIdentifier(), 'subjectKeyIdentifier').asOctets())
    except ESTError:
        return None
    except (ValueError, TypeError, IndexError):
        return None
    return None


def _extension_dict(oid, critical=None, der=None):
    oid = str(oid)
    result = {'oid': oid, 'name': oid_name(oid), 'critical': critical, 'value': None, 'value_hex': None}
    if der is not None:
        result['value_hex'] = _hex(der)
        if der:
            result['value'] = _extension_value(oid, der)
    return result


def _extensions_from_value(raw):
    """The extension dicts carried by one extensionRequest (or extensionReqTemplate) value."""
    # Proper form: Extensions (every extnValue present) or ExtensionTemplates (extnValue optional).
    try:
        templates = _decode(raw, _ExtensionTemplates(), 'extension request')
    except ESTError:
        templates = None
    if templates is not None:
        result = []
        for ext in templates:
            value = ext['extnValue']
            result.append(_extension_dict(ext['extnID'], bool(ext['critical']), value.asOctets() if value.isValue else None))
        return result
    # Liberal forms seen in the wild and in the RFC 7030 example: a bare OID, or a SEQUENCE OF OID.
    value = _decode(raw, None, 'extension request')
    if isinstance(value, univ.ObjectIdentifier):
        return [_extension_dict(value)]
    if isinstance(value, (univ.SequenceOf, univ.SetOf, univ.Sequence, univ.Set)):
        oids = [v for v in _components(value) if isinstance(v, univ.ObjectIdentifier)]
        if oids:
            return [_extension_dict(o) for o in oids]
    raise ESTError('bad_response', 'an extensionRequest value is neither Extensions nor an OID')


def _components(value):
    try:
        return [value.getComponentByPosition(i) for i in range(len(value))]
    except Exception:  # pylint: disable=broad-except
        return []


# ---- key hints ------------------------------------------------------------------------------

def _key_hint(algorithm_oid, raw_values):
    """``{'key_type': ..., 'curve'/'key_size': ...}`` for a public key algorithm and its values."""
    hint = {'key_type': KEY_ALGORITHMS.get(algorithm_oid, algorithm_oid)}
    for raw in raw_values:
        try:
            value = _decode(raw)
        except ESTError:
            continue
        if isinstance(value, univ.ObjectIdentifier):
            curve = str(value)
            hint['curve'] = CURVES.get(curve, curve)
            hint['curve_oid'] = curve
        elif isinstance(value, univ.Integer) and not isinstance(value, univ.Boolean):
            hint['key_size'] = int(value)
    return hint


def _rsa_placeholder_size(bits):
    """Key size of the placeholder RSAPublicKey an RFC 9908 template carries, or None."""
    try:
        key = _decode(bits.asOctets(), rfc3279.RSAPublicKey(), 'template public key')
        return int(key['modulus']).bit_length() or None
    except (ESTError, ValueError, TypeError):
        return None


# ---- items ----------------------------------------------------------------------------------

def _attribute_values(attribute):
    return [bytes(v) for v in attribute['attrValues']]


def _attribute_item(attr_type, raw_values):
    oid = str(attr_type)
    item = {'oid': oid, 'name': oid_name(oid), 'type': 'attribute', 'values': []}
    if oid in _EXTENSION_REQUEST_TYPES:
        for raw in raw_values:
            item['values'].extend(_extensions_from_value(raw))
    elif oid in KEY_ALGORITHMS:
        item['values'] = [_key_hint(oid, raw_values)]
    elif oid == OID_CRI_TEMPLATE:
        if len(raw_values) != 1:
            raise ESTError('bad_response', 'the certificationRequestInfoTemplate attribute must have exactly one value, has %d'
                           % len(raw_values))
        template = _parse_template(raw_values[0])
        item['values'] = [template]
        item['template'] = template
    else:  # challengePassword, name attributes and anything unknown
        item['values'] = [_generic_value(raw) for raw in raw_values]
    return item


def _parse_template(raw):
    tmpl = _decode(raw, _CertificationRequestInfoTemplate(), 'certificationRequestInfoTemplate')
    version = int(tmpl['version'])
    if version != 0:
        raise ESTError('bad_response', 'the certificationRequestInfoTemplate has version %d, only v1(0) is defined' % version)
    result = {'version': version, 'subject': None, 'key': None, 'extensions': [], 'attributes': []}
    subject = tmpl['subject']
    if subject.isValue:
        pairs = []
        for rdn in subject['rdnSequence']:
            for sat in rdn:
                oid = str(sat['type'])
                value = sat['value']
                pairs.append({'oid': oid, 'name': oid_name(oid),
                              'value': _string_value(bytes(value)) if value.isValue else None})
        result['subject'] = pairs
    spki = tmpl['subjectPKInfo']
    if spki.isValue:
        algorithm = str(spki['algorithm']['algorithm'])
        params = spki['algorithm']['parameters']
        key = _key_hint(algorithm, [bytes(params)] if params.isValue else [])
        key['algorithm_oid'] = algorithm
        bits = spki['subjectPublicKey']
        if bits.isValue and key['key_type'] == 'rsa':
            size = _rsa_placeholder_size(bits)
            if size:
                key['key_size'] = size
        result['key'] = key
    for attribute in tmpl['attributes']:
        oid = str(attribute['attrType'])
        raw_values = _attribute_values(attribute)
        if oid in _EXTENSION_REQUEST_TYPES:
            for value in raw_values:
                result['extensions'].extend(_extensions_from_value(value))
        else:
            result['attributes'].append(_attribute_item(oid, raw_values))
    return result


def parse_csrattrs(der):
    """Parse the DER of a CSR Attributes response into a list of plain-data items.

    See the module documentation for the shape. An empty ``CsrAttrs`` gives ``[]`` (nothing to
    apply, RFC 7030 §4.5.2). Garbage raises ``ESTError('bad_response')``; unknown OIDs and
    attributes are kept, not rejected (the client MUST ignore what it does not recognise).
    """
    _require_pyasn1()
    if not isinstance(der, (bytes, bytearray)):
        raise ESTError('invalid_input', 'parse_csrattrs() needs DER bytes, got %s' % type(der).__name__)
    if not der:
        raise ESTError('bad_response', 'the CSR attributes body is empty')
    try:
        return _parse(bytes(der))
    except ESTError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise ESTError('bad_response', 'the CSR attributes response is malformed: %s' % _short(exc))


def _parse(der):
    attrs = _decode(der, rfc7030.CsrAttrs(), 'CSR attributes response')
    items = []
    for entry in attrs:
        kind = entry.getName()
        if kind == 'oid':
            oid = str(entry['oid'])
            items.append({'oid': oid, 'name': oid_name(oid), 'type': 'oid', 'values': []})
        else:
            attribute = entry['attribute']
            items.append(_attribute_item(attribute['attrType'], _attribute_values(attribute)))
    return items


# ---- requirements ---------------------------------------------------------------------------

def _empty_requirements():
    return {
        'key_type': None,
        'curve': None,
        'key_size': None,
        'hash': None,
        'challenge_password_required': False,
        'extensions': [],
        'extension_values': [],
        'subject': {},
        'subject_alt_name': [],
        'key_usage': [],
        'extended_key_usage': [],
        'attributes': [],
        'from_template': False,
        'key_spec': None,
    }


_KEY_SPEC_CURVES = {'secp256r1': 'ec-p256', 'secp384r1': 'ec-p384', 'secp521r1': 'ec-p521'}


def _finish(req):
    """Fill ``key_spec``, the ``keys.KEY_TYPES`` style name ('ec-p384', 'rsa-4096', 'ed25519'), when known."""
    if req['key_type'] == 'ec' and req['curve'] in _KEY_SPEC_CURVES:
        req['key_spec'] = _KEY_SPEC_CURVES[req['curve']]
    elif req['key_type'] == 'rsa' and req['key_size']:
        req['key_spec'] = 'rsa-%d' % req['key_size']
    elif req['key_type'] in ('ed25519', 'ed448'):
        req['key_spec'] = req['key_type']
    return req


def _apply_key_hint(req, hint):
    if hint.get('key_type'):
        req['key_type'] = hint['key_type']
    if hint.get('curve'):
        req['curve'] = hint['curve']
    if hint.get('key_size'):
        req['key_size'] = hint['key_size']


def _apply_extensions(req, extensions):
    for ext in extensions:
        if not ext['value_hex'] and ext['oid'] not in EXTENSIONS:
            # A bare OID we cannot build an extension for (the RFC 7030 example's macAddress).
            if ext['oid'] not in req['attributes']:
                req['attributes'].append(ext['oid'])
            continue
        if ext['oid'] not in req['extensions']:
            req['extensions'].append(ext['oid'])
        if ext['value_hex']:
            req['extension_values'].append(ext)
        value = ext['value']
        if ext['oid'] == OID_SUBJECT_ALT_NAME and isinstance(value, list):
            for name in value:
                if name.split(':', 1)[0] in ('DNS', 'IP', 'email', 'URI') and name not in req['subject_alt_name']:
                    req['subject_alt_name'].append(name)
        elif ext['oid'] == '2.5.29.15' and isinstance(value, list):
            req['key_usage'].extend(v for v in value if v not in req['key_usage'])
        elif ext['oid'] == '2.5.29.37' and isinstance(value, list):
            req['extended_key_usage'].extend(v for v in value if v not in req['extended_key_usage'])


def _add_subject(req, name, value):
    if name in req['subject'] and value is not None:
        existing = req['subject'][name]
        if existing is None:
            req['subject'][name] = value
        elif isinstance(existing, list):
            existing.append(value)
        else:
            req['subject'][name] = [existing, value]
    elif name not in req['subject']:
        req['subject'][name] = value


def _apply_oid(req, oid):
    if oid == OID_CHALLENGE_PASSWORD:
        req['challenge_password_required'] = True
    elif oid in KEY_ALGORITHMS:
        req['key_type'] = KEY_ALGORITHMS[oid]
    elif oid in SIGNATURE_ALGORITHMS:
        key_type, hash_name = SIGNATURE_ALGORITHMS[oid]
        if hash_name:
            req['hash'] = hash_name
        if key_type and req['key_type'] is None:
            req['key_type'] = key_type
    elif oid in HASH_ALGORITHMS:
        req['hash'] = HASH_ALGORITHMS[oid]
    elif oid in CURVES:
        req['curve'] = CURVES[oid]
        req['key_type'] = req['key_type'] or 'ec'
    elif oid in EXTENSIONS:
        if oid not in req['extensions']:
            req['extensions'].append(oid)
    elif oid in NAME_ATTRIBUTES:
        _add_subject(req, NAME_ATTRIBUTES[oid], None)
    elif oid not in req['attributes']:
        req['attributes'].append(oid)


def _apply_item(req, item):
    oid = item['oid']
    if item['type'] == 'oid':
        _apply_oid(req, oid)
    elif oid in _EXTENSION_REQUEST_TYPES:
        _apply_extensions(req, item['values'])
    elif oid in KEY_ALGORITHMS:
        for hint in item['values']:
            _apply_key_hint(req, hint)
    elif oid == OID_CHALLENGE_PASSWORD:
        req['challenge_password_required'] = True
    elif oid in NAME_ATTRIBUTES:
        values = [v for v in item['values'] if isinstance(v, str)] or [None]
        for value in values:
            _add_subject(req, NAME_ATTRIBUTES[oid], value)
    else:
        _apply_oid(req, oid)


def to_csr_requirements(parsed):
    """What a CSR builder should apply, from the list :func:`parse_csrattrs` returns.

    Returns (every key always present)::

        {'key_type': 'rsa'|'ec'|'ed25519'|'ed448'|... or None,
         'curve': 'secp384r1' (or a dotted OID) or None,     # EC only
         'key_size': int or None,                             # RSA only
         'hash': 'sha256'|'sha384'|'sha512'|... or None,      # from a signature or hash algorithm OID
         'challenge_password_required': bool,
         'extensions': [dotted OIDs of extensions the CSR should carry],
         'extension_values': [extension dicts (see parse_csrattrs) whose value the server gave],
         'subject': {attribute name: value, or None when the client fills it in, or a list for repeats},
         'subject_alt_name': ['DNS:...', 'IP:...', 'email:...', 'URI:...'],
         'key_usage': ['digitalSignature', ...],
         'extended_key_usage': ['serverAuth', ... or dotted OIDs],
         'attributes': [dotted OIDs asked for that map to none of the above, e.g. macAddress],
         'from_template': bool,
         'key_spec': 'ec-p256'|'ec-p384'|'ec-p521'|'rsa-<bits>'|'ed25519'|'ed448' or None}  # keys.KEY_TYPES style

    When the response carries an RFC 9908 CertificationRequestInfoTemplate, only the template is
    used and the other elements are ignored (RFC 9908 §4). Subject names use the camelCase long
    names (``commonName``, ``organizationName``, ...) or the dotted OID for unknown types.
    """
    req = _empty_requirements()
    if not parsed:
        return req
    templates = [item['template'] for item in parsed if isinstance(item, dict) and item.get('template')]
    if templates:
        template = templates[0]
        req['from_template'] = True
        for pair in template.get('subject') or []:
            _add_subject(req, pair['name'], pair['value'])
        if template.get('key'):
            _apply_key_hint(req, template['key'])
        _apply_extensions(req, template.get('extensions') or [])
        for item in template.get('attributes') or []:
            _apply_item(req, item)
        return _finish(req)
    for item in parsed:
        _apply_item(req, item)
    return _finish(req)


def fetch_csrattrs(transport):
    """GET /csrattrs: the parsed list, ``[]`` when the server has nothing to ask (204 or an
    empty body), or None when it does not offer the operation (404/501, RFC 7030 §4.5.2)."""
    from . import codecs
    try:
        response = transport.get('csrattrs')
    except ESTError as exc:
        if exc.kind == 'not_supported':
            return None
        raise
    if response.status == 204 or not (response.body or b'').strip(b' \t\r\n\x00'):
        return []
    # Liberal: some servers label the body application/pkcs7-mime or leave the type out; the
    # content decides. Anything but text is tried.
    media, _params = codecs.parse_media_type(response.content_type)
    if media.startswith('text/'):
        raise ESTError('unexpected_content_type', 'the /csrattrs answer has Content-Type %r, expected %s'
                       % (response.content_type, MEDIA_TYPE))
    return parse_csrattrs(codecs.decode_body(response.body, '/csrattrs'))
