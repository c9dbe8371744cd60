"""Encoder for the /csrattrs response body (RFC 7030 4.5.2 as replaced by RFC 8951 4).

The configuration describes the CsrAttrs SEQUENCE as a JSON list.  Each item is

* ``"1.2.3"`` or ``{"oid": "1.2.3"}``: an ``oid`` choice (e.g. a signature algorithm
  or challengePassword);
* ``{"oid": "1.2.3", "values": [...]}``: an ``attribute`` choice whose values are
  OIDs (``"1.2.3"`` or ``{"oid": "1.2.3"}``) or raw DER (``{"der": "<base64>"}``);
* ``{"oid": "1.2.840.113549.1.9.14", "extensions": ["2.5.29.17", ...]}``: the
  RFC 7030 style extensionRequest attribute, one OID value per wanted extension.

Item kinds are looked up in ``ITEM_ENCODERS`` so another form can be added
without touching the others.

Instead of a list the configuration may be ``{"template": {...}, "attributes":
[items]}``: the RFC 9908 form, a CsrAttrs whose first element is an
id-aa-certificationRequestInfoTemplate attribute (encoded by ``csrtemplate``),
followed by the optional plain items.
"""

import base64
import binascii

from pyasn1.codec.der import encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc7030


class CsrAttrsError(ValueError):
    """The csrattrs description cannot be encoded."""


def _oid(text):
    if not isinstance(text, str):
        raise CsrAttrsError("an OID must be a dotted string, not %r" % (text,))
    try:
        oid = univ.ObjectIdentifier(text)
        encoder.encode(oid)
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise CsrAttrsError("invalid OID %r" % text) from exc
    return oid


def _value_der(value):
    """DER of one attribute value: an OID or caller-supplied DER."""
    if isinstance(value, str):
        return encoder.encode(_oid(value))
    if isinstance(value, dict) and set(value) == {"oid"}:
        return encoder.encode(_oid(value["oid"]))
    if isinstance(value, dict) and set(value) == {"der"}:
        try:
            return base64.b64decode(value["der"], validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise CsrAttrsError("attribute value 'der' must be base64") from exc
    raise CsrAttrsError("attribute value must be an OID string, {\"oid\": ...} or {\"der\": ...}, not %r" % (value,))


def _encode_oid_item(item):
    choice = rfc7030.AttrOrOID()
    choice["oid"] = _oid(item if isinstance(item, str) else item["oid"])
    return choice


def _encode_attribute_item(item):
    values = list(item.get("values", [])) + list(item.get("extensions", []))
    if not values:
        raise CsrAttrsError("attribute %s needs at least one value" % item["oid"])
    attribute = rfc7030.Attribute()
    attribute["attrType"] = _oid(item["oid"])
    for index, value in enumerate(values):
        attribute["attrValues"][index] = univ.Any(_value_der(value))
    choice = rfc7030.AttrOrOID()
    choice["attribute"] = attribute
    return choice


def _item_kind(item):
    if isinstance(item, str):
        return "oid"
    if not isinstance(item, dict) or "oid" not in item:
        raise CsrAttrsError("each csrattrs item must be an OID string or an object with 'oid', not %r" % (item,))
    extra = set(item) - {"oid"}
    if not extra:
        return "oid"
    if extra <= {"values", "extensions"}:
        for key in extra:
            if not isinstance(item[key], list):
                raise CsrAttrsError("%r of %s must be a list" % (key, item["oid"]))
        return "attribute"
    raise CsrAttrsError("unknown keys %s in csrattrs item %s" % (sorted(extra), item["oid"]))


ITEM_ENCODERS = {
    "oid": _encode_oid_item,
    "attribute": _encode_attribute_item,
}


def _template_item(template):
    from .csrtemplate import OID_CRI_TEMPLATE, TemplateError, encode_template
    try:
        der = encode_template(template)
    except TemplateError as exc:
        raise CsrAttrsError(str(exc)) from exc
    attribute = rfc7030.Attribute()
    attribute["attrType"] = univ.ObjectIdentifier(OID_CRI_TEMPLATE)
    attribute["attrValues"][0] = univ.Any(der)
    choice = rfc7030.AttrOrOID()
    choice["attribute"] = attribute
    return choice


def _elements(description):
    """The AttrOrOID elements for a list of items or a {"template", "attributes"} object."""
    if isinstance(description, list):
        return [ITEM_ENCODERS[_item_kind(item)](item) for item in description]
    if isinstance(description, dict) and "template" in description and not set(description) - {"template", "attributes"}:
        items = description.get("attributes", [])
        if not isinstance(items, list):
            raise CsrAttrsError("csrattrs 'attributes' must be a list of items")
        return [_template_item(description["template"])] + _elements(items)
    raise CsrAttrsError('csrattrs must be null, "404", a list or {"template": ..., "attributes": [...]}')


def encode_csrattrs(items):
    """DER of the CsrAttrs SEQUENCE described by items (a list, may be empty; or a template object)."""
    sequence = rfc7030.CsrAttrs()
    sequence.clear()  # turn the schema into an (empty) value: an empty list is valid
    for index, element in enumerate(_elements(items)):
        sequence[index] = element
    try:
        return encoder.encode(sequence)
    except PyAsn1Error as exc:
        raise CsrAttrsError("cannot encode csrattrs: %s" % str(exc)[:200]) from exc
