"""Encoder for the RFC 9908 CertificationRequestInfoTemplate (the csrattrs "template" form).

Configuration::

    {"template": {"subject": [["2.5.4.3", null], ["O", "Example Org"]],
                  "key": {"algorithm": "1.2.840.10045.2.1", "curve": "1.3.132.0.34"},
                  "extensions": [{"oid": "2.5.29.17", "value_dns": ["a.example"]},
                                 {"oid": "2.5.29.37", "eku": ["1.3.6.1.5.5.7.3.1"]},
                                 {"oid": "2.5.29.15"}]},
     "attributes": [... plain csrattrs items, sent after the template ...]}

* ``subject``: [type, value or null] pairs, one RDN each; the type is an OID or
  one of ``NAME_TYPES``; a null value leaves the value out (the client fills it in).
* ``key``: ``algorithm`` (OID) plus, for EC, ``curve`` (OID; the AlgorithmIdentifier
  parameters) or, for RSA, ``size``: rsaEncryption with a placeholder RSAPublicKey
  whose modulus has that many bits (2^(size-1)) and exponent 65537.
* ``extensions``: an ExtensionTemplate each; ``critical`` (default false) and at
  most one value form: ``value_dns`` / ``value_ip`` / ``value_email`` / ``value_uri``
  (subjectAltName), ``eku`` (OIDs), ``key_usage`` (bit names), ``der`` (base64 of the
  extnValue contents); without one the extnValue is left out.

The template is the value of an id-aa-certificationRequestInfoTemplate attribute;
the extensions go into an id-aa-extensionReqTemplate attribute inside its
``attributes [1]``.  The ASN.1 (RFC 9908, IMPLICIT TAGS)::

    CertificationRequestInfoTemplate ::= SEQUENCE {
        version       INTEGER { v1(0) },
        subject       NameTemplate OPTIONAL,
        subjectPKInfo [0] SubjectPublicKeyInfoTemplate OPTIONAL,
        attributes    [1] Attributes }
    SingleAttributeTemplate ::= SEQUENCE { type OID, value ANY OPTIONAL }
    SubjectPublicKeyInfoTemplate ::= SEQUENCE { algorithm AlgorithmIdentifier,
                                                subjectPublicKey BIT STRING OPTIONAL }
    ExtensionTemplate ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
                                     extnValue OCTET STRING OPTIONAL }
"""

import base64
import binascii
import ipaddress

from cryptography import x509
from pyasn1.codec.der import encoder
from pyasn1.type import char, namedtype, tag, univ
from pyasn1_modules import rfc3279, rfc5280, rfc5652

OID_CRI_TEMPLATE = "1.2.840.113549.1.9.16.2.61"
OID_EXTENSION_REQ_TEMPLATE = "1.2.840.113549.1.9.16.2.62"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_SUBJECT_ALT_NAME = "2.5.29.17"
OID_KEY_USAGE = "2.5.29.15"
OID_EXTENDED_KEY_USAGE = "2.5.29.37"

NAME_TYPES = {
    "CN": "2.5.4.3", "C": "2.5.4.6", "L": "2.5.4.7", "ST": "2.5.4.8", "O": "2.5.4.10", "OU": "2.5.4.11",
    "serialNumber": "2.5.4.5", "DC": "0.9.2342.19200300.100.1.25", "UID": "0.9.2342.19200300.100.1.1",
    "emailAddress": "1.2.840.113549.1.9.1",
}
PRINTABLE_TYPES = ("2.5.4.6", "2.5.4.5")  # countryName, serialNumber
IA5_TYPES = ("0.9.2342.19200300.100.1.25", "1.2.840.113549.1.9.1")  # domainComponent, emailAddress

KEY_USAGE_BITS = ("digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment", "keyAgreement",
                  "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly")
KEY_USAGE_ALIASES = {"nonRepudiation": "contentCommitment"}
SAN_FORMS = {
    "value_dns": x509.DNSName,
    "value_ip": lambda text: x509.IPAddress(ipaddress.ip_address(text)),
    "value_email": x509.RFC822Name,
    "value_uri": x509.UniformResourceIdentifier,
}
VALUE_FORMS = tuple(SAN_FORMS) + ("eku", "key_usage", "der")


class TemplateError(ValueError):
    """The template description cannot be encoded."""


def _context(number):
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


class SingleAttributeTemplate(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("type", univ.ObjectIdentifier()),
        namedtype.OptionalNamedType("value", univ.Any()),
    )


class RelativeDistinguishedNameTemplate(univ.SetOf):
    componentType = SingleAttributeTemplate()


class NameTemplate(univ.SequenceOf):  # the rdnSequence choice, the only one
    componentType = RelativeDistinguishedNameTemplate()


class SubjectPublicKeyInfoTemplate(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("algorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.OptionalNamedType("subjectPublicKey", univ.BitString()),
    )


class ExtensionTemplate(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("extnID", univ.ObjectIdentifier()),
        namedtype.DefaultedNamedType("critical", univ.Boolean(False)),
        namedtype.OptionalNamedType("extnValue", univ.OctetString()),
    )


class ExtensionReqTemplate(univ.SequenceOf):
    componentType = ExtensionTemplate()


class TemplateAttributes(univ.SetOf):
    componentType = rfc5652.Attribute()


class CertificationRequestInfoTemplate(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.OptionalNamedType("subject", NameTemplate()),
        namedtype.OptionalNamedType("subjectPKInfo", SubjectPublicKeyInfoTemplate().subtype(implicitTag=_context(0))),
        namedtype.NamedType("attributes", TemplateAttributes().subtype(implicitTag=_context(1))),
    )


def _oid(text, what="OID"):
    if not isinstance(text, str):
        raise TemplateError("%s must be a dotted string, not %r" % (what, text))
    try:
        oid = univ.ObjectIdentifier(text)
        encoder.encode(oid)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # pyasn1 raises several kinds for a bad OID
        raise TemplateError("invalid %s %r" % (what, text)) from exc
    return oid


def _string_value(oid, value):
    if not isinstance(value, str) or not value:
        raise TemplateError("subject value for %s must be a non-empty string or null" % oid)
    if oid in PRINTABLE_TYPES:
        string = char.PrintableString(value)
    elif oid in IA5_TYPES:
        string = char.IA5String(value)
    else:
        string = char.UTF8String(value)
    try:
        return encoder.encode(string)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # e.g. a character PrintableString lacks
        raise TemplateError("subject value %r cannot be encoded for %s" % (value, oid)) from exc


def _subject(pairs):
    if not isinstance(pairs, list):
        raise TemplateError("template subject must be a list of [type, value or null] pairs")
    name = NameTemplate()
    name.clear()
    for index, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            raise TemplateError("template subject entries must be [type, value or null], not %r" % (pair,))
        oid = NAME_TYPES.get(pair[0], pair[0])
        single = SingleAttributeTemplate()
        single["type"] = _oid(oid, "subject attribute type")
        if pair[1] is not None:
            single["value"] = _string_value(oid, pair[1])
        rdn = RelativeDistinguishedNameTemplate()
        rdn.append(single)
        name[index] = rdn
    return name


def rsa_placeholder(size):
    """DER RSAPublicKey whose modulus is size bits long: the key size hint of a template."""
    key = rfc3279.RSAPublicKey()
    key["modulus"] = 1 << (size - 1)
    key["publicExponent"] = 65537
    return encoder.encode(key)


def _key(spec):
    if not isinstance(spec, dict) or "algorithm" not in spec or set(spec) - {"algorithm", "curve", "size"}:
        raise TemplateError('template key must be {"algorithm": OID} plus "curve" (EC) or "size" (RSA)')
    spki = SubjectPublicKeyInfoTemplate().subtype(implicitTag=_context(0))
    spki["algorithm"]["algorithm"] = _oid(spec["algorithm"], "key algorithm")
    if "curve" in spec:
        spki["algorithm"]["parameters"] = encoder.encode(_oid(spec["curve"], "curve"))
    if "size" in spec:
        size = spec["size"]
        if spec["algorithm"] != OID_RSA_ENCRYPTION or not isinstance(size, int) or isinstance(size, bool) or not 512 <= size <= 16384:
            raise TemplateError("template key size needs rsaEncryption and an integer from 512 to 16384")
        spki["algorithm"]["parameters"] = encoder.encode(univ.Null(""))
        spki["subjectPublicKey"] = univ.BitString.fromOctetString(rsa_placeholder(size))
    elif spec["algorithm"] == OID_RSA_ENCRYPTION:
        spki["algorithm"]["parameters"] = encoder.encode(univ.Null(""))
    return spki


def _list_of_strings(spec, key):
    values = spec[key]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise TemplateError("%r of extension %s must be a non-empty list of strings" % (key, spec["oid"]))
    return values


def _key_usage(names):
    bits = {}
    for name in names:
        name = KEY_USAGE_ALIASES.get(name, name)
        if name not in KEY_USAGE_BITS:
            raise TemplateError("unknown key usage %r (%s)" % (name, ", ".join(KEY_USAGE_BITS)))
        bits[name] = True
    flags = {bit: bits.get(bit, False) for bit in KEY_USAGE_BITS}
    return x509.KeyUsage(flags["digitalSignature"], flags["contentCommitment"], flags["keyEncipherment"],
                         flags["dataEncipherment"], flags["keyAgreement"], flags["keyCertSign"], flags["cRLSign"],
                         flags["encipherOnly"], flags["decipherOnly"])


def _extension_value(spec):
    """DER of the extnValue contents for an extension description, or None."""
    forms = [key for key in VALUE_FORMS if key in spec]
    if not forms:
        return None
    try:
        if all(form in SAN_FORMS for form in forms):
            names = [SAN_FORMS[form](value) for form in forms for value in _list_of_strings(spec, form)]
            return x509.SubjectAlternativeName(names).public_bytes()
        if len(forms) > 1:
            raise TemplateError("extension %s has more than one value form: %s" % (spec["oid"], ", ".join(forms)))
        if forms[0] == "eku":
            return x509.ExtendedKeyUsage([x509.ObjectIdentifier(str(_oid(o, "EKU"))) for o in _list_of_strings(spec, "eku")]).public_bytes()
        if forms[0] == "key_usage":
            return _key_usage(_list_of_strings(spec, "key_usage")).public_bytes()
        return base64.b64decode(spec["der"], validate=True)
    except TemplateError:
        raise
    except (ValueError, TypeError, binascii.Error) as exc:
        raise TemplateError("extension %s value cannot be encoded: %s" % (spec["oid"], str(exc)[:120])) from exc


def _extension(spec):
    if not isinstance(spec, dict) or "oid" not in spec:
        raise TemplateError("template extensions must be objects with 'oid', not %r" % (spec,))
    unknown = set(spec) - {"oid", "critical"} - set(VALUE_FORMS)
    if unknown:
        raise TemplateError("unknown keys %s in template extension %s" % (sorted(unknown), spec["oid"]))
    extension = ExtensionTemplate()
    extension["extnID"] = _oid(spec["oid"], "extension OID")
    critical = spec.get("critical", False)
    if not isinstance(critical, bool):
        raise TemplateError("'critical' of extension %s must be true or false" % spec["oid"])
    if critical:
        extension["critical"] = True
    value = _extension_value(spec)
    if value is not None:
        extension["extnValue"] = value
    return extension


def _attributes(extensions):
    attributes = TemplateAttributes().subtype(implicitTag=_context(1))
    attributes.clear()  # present even when empty: the field is not OPTIONAL
    if extensions is None:
        return attributes
    if not isinstance(extensions, list) or not extensions:
        raise TemplateError("template extensions must be a non-empty list")
    request = ExtensionReqTemplate()
    for index, spec in enumerate(extensions):
        request[index] = _extension(spec)
    attribute = rfc5652.Attribute()
    attribute["attrType"] = univ.ObjectIdentifier(OID_EXTENSION_REQ_TEMPLATE)
    attribute["attrValues"].append(encoder.encode(request))
    attributes.append(attribute)
    return attributes


def encode_template(template):
    """DER of the CertificationRequestInfoTemplate described by template (a dict)."""
    if not isinstance(template, dict) or set(template) - {"subject", "key", "extensions"}:
        raise TemplateError('template must be an object with "subject", "key" and/or "extensions"')
    value = CertificationRequestInfoTemplate()
    value["version"] = 0
    if "subject" in template:
        value["subject"] = _subject(template["subject"])
    if "key" in template:
        value["subjectPKInfo"] = _key(template["key"])
    value["attributes"] = _attributes(template.get("extensions"))
    return encoder.encode(value)
