"""/csrattrs in the RFC 9908 template form (id-aa-certificationRequestInfoTemplate)."""

import base64

import pytest
from pyasn1.codec.der import decoder
from pyasn1.type import univ
from pyasn1_modules import rfc3279, rfc7030

from lab_helpers import client_module, get
from support.labserver import LabServerError

OID_CRI_TEMPLATE = "1.2.840.113549.1.9.16.2.61"

EC_TEMPLATE = {
    "template": {
        "subject": [["2.5.4.3", None], ["2.5.4.10", "Example Org"], ["C", "DE"]],
        "key": {"algorithm": "1.2.840.10045.2.1", "curve": "1.3.132.0.34"},
        "extensions": [{"oid": "2.5.29.17", "value_dns": ["a.example"], "value_ip": ["192.0.2.7"]},
                       {"oid": "2.5.29.37", "eku": ["1.3.6.1.5.5.7.3.1"]},
                       {"oid": "2.5.29.15"}],
    },
    "attributes": ["1.2.840.113549.1.9.7"],
}
RSA_TEMPLATE = {
    "template": {
        "key": {"algorithm": "1.2.840.113549.1.1.1", "size": 3072},
        "extensions": [{"oid": "2.5.29.15", "critical": True, "key_usage": ["digitalSignature", "keyEncipherment"]}],
    },
}


def children(data):
    """[(tag byte, contents)] of the DER TLVs one after the other in data (the contents of a constructed value)."""
    result = []
    while data:
        tag, length, offset = data[0], data[1], 2
        if length & 0x80:
            size = length & 0x7F
            length, offset = int.from_bytes(data[2:2 + size], "big"), 2 + size
        result.append((tag, data[offset:offset + length]))
        data = data[offset + length:]
    return result


def fetch_der(server):
    response = get(server, "csrattrs")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/csrattrs"
    return base64.b64decode(b"".join(response.content.split()), validate=True)


def test_structure(server):
    """Read with pyasn1 alone: the template attribute first, then the extra items."""
    server.set_config(csrattrs=EC_TEMPLATE)
    attrs, rest = decoder.decode(fetch_der(server), asn1Spec=rfc7030.CsrAttrs())
    assert not rest and len(attrs) == 2
    attribute = attrs[0]["attribute"]
    assert str(attribute["attrType"]) == OID_CRI_TEMPLATE and len(attribute["attrValues"]) == 1
    assert str(attrs[1]["oid"]) == "1.2.840.113549.1.9.7"
    template = bytes(attribute["attrValues"][0])
    ((outer_tag, contents),) = children(template)
    assert outer_tag == 0x30
    fields = children(contents)  # version, subject, subjectPKInfo [0] IMPLICIT, attributes [1] IMPLICIT
    assert [tag for tag, dummy in fields] == [0x02, 0x30, 0xA0, 0xA1]
    assert fields[0][1] == b"\x00"
    rdns = children(fields[1][1])  # RDNs: SET { SEQUENCE { type, value OPTIONAL } }
    first = children(children(rdns[0][1])[0][1])
    assert [tag for tag, dummy in first] == [0x06]  # CN without a value
    second = children(children(rdns[1][1])[0][1])
    assert [tag for tag, dummy in second] == [0x06, 0x0C] and second[1][1] == b"Example Org"  # O as UTF8String


def test_rsa_placeholder_modulus(server):
    server.set_config(csrattrs=RSA_TEMPLATE)
    der = fetch_der(server)
    attrs = decoder.decode(der, asn1Spec=rfc7030.CsrAttrs())[0]
    template = bytes(attrs[0]["attribute"]["attrValues"][0])
    # SubjectPublicKeyInfoTemplate [0]: the BIT STRING holds an RSAPublicKey with a 3072-bit modulus.
    start = template.index(b"\x03\x82")
    bits = decoder.decode(template[start:], asn1Spec=univ.BitString())[0]
    key = decoder.decode(bits.asOctets(), asn1Spec=rfc3279.RSAPublicKey())[0]
    assert int(key["modulus"]).bit_length() == 3072 and int(key["publicExponent"]) == 65537


def test_client_parser_reads_the_ec_template(server):
    csrattrs = client_module("csrattrs")
    server.set_config(csrattrs=EC_TEMPLATE)
    parsed = csrattrs.parse_csrattrs(fetch_der(server))
    assert [item["oid"] for item in parsed] == [OID_CRI_TEMPLATE, "1.2.840.113549.1.9.7"]
    template = parsed[0]["template"]
    assert template["subject"] == [{"oid": "2.5.4.3", "name": "commonName", "value": None},
                                   {"oid": "2.5.4.10", "name": "organizationName", "value": "Example Org"},
                                   {"oid": "2.5.4.6", "name": "countryName", "value": "DE"}]
    requirements = csrattrs.to_csr_requirements(parsed)
    assert requirements["from_template"] and requirements["key_spec"] == "ec-p384"
    assert requirements["subject"] == {"commonName": None, "organizationName": "Example Org", "countryName": "DE"}
    assert requirements["subject_alt_name"] == ["DNS:a.example", "IP:192.0.2.7"]
    assert requirements["extended_key_usage"] == ["serverAuth"]
    assert requirements["extensions"] == ["2.5.29.17", "2.5.29.37", "2.5.29.15"]


def test_client_parser_reads_the_rsa_template(server):
    csrattrs = client_module("csrattrs")
    server.set_config(csrattrs=RSA_TEMPLATE)
    requirements = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(fetch_der(server)))
    assert requirements["key_spec"] == "rsa-3072" and requirements["key_size"] == 3072
    assert requirements["key_usage"] == ["digitalSignature", "keyEncipherment"]
    assert requirements["extension_values"][0]["critical"] is True


def test_empty_template(server):
    csrattrs = client_module("csrattrs")
    server.set_config(csrattrs={"template": {}})
    parsed = csrattrs.parse_csrattrs(fetch_der(server))
    assert parsed[0]["template"] == {"version": 0, "subject": None, "key": None, "extensions": [], "attributes": []}


@pytest.mark.parametrize("bad", [
    {"template": []},
    {"template": {}, "other": 1},
    {"template": {"color": "red"}},
    {"template": {"subject": [["2.5.4.3"]]}},
    {"template": {"subject": [["not an oid", None]]}},
    {"template": {"subject": [["C", "Ünïcode"]]}},  # countryName is a PrintableString
    {"template": {"key": {"curve": "1.3.132.0.34"}}},
    {"template": {"key": {"algorithm": "1.2.840.10045.2.1", "size": 256}}},
    {"template": {"key": {"algorithm": "1.2.840.113549.1.1.1", "size": True}}},
    {"template": {"extensions": []}},
    {"template": {"extensions": [{"oid": "2.5.29.15", "key_usage": ["flying"]}]}},
    {"template": {"extensions": [{"oid": "2.5.29.17", "value_dns": ["a"], "eku": ["1.2"]}]}},
    {"template": {"extensions": [{"oid": "2.5.29.17", "value_ip": ["not-an-ip"]}]}},
    {"template": {"extensions": [{"oid": "2.5.29.15", "critical": "yes"}]}},
    {"template": {"extensions": [{"oid": "2.5.29.15", "der": "!!"}]}},
    {"template": {}, "attributes": "1.2.3"},
])
def test_invalid_templates_are_rejected(server, bad):
    with pytest.raises(LabServerError, match="400"):
        server.set_config(csrattrs=bad)
    assert get(server, "csrattrs").status_code == 204  # unchanged
