# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CSR attributes: RFC 7030 §4.5.2, RFC 8951 §4 and the RFC 9908 template form."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pki.est.plugins.module_utils import codecs, csrattrs
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils._der import read_fixture, tlv
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fuzz import MUTATIONS, mutate


def fixture(name):
    return read_fixture('csrattrs', name)


# ---- a tiny independent DER writer, so the tests do not reuse the module's ASN.1 classes ----

def oid(dotted):
    parts = [int(p) for p in dotted.split('.')]
    body = [40 * parts[0] + parts[1]] + parts[2:]
    out = b''
    for number in body:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.insert(0, 0x80 | (number & 0x7F))
            number >>= 7
        out += bytes(chunk)
    return tlv(0x06, out)


def seq(*items):
    return tlv(0x30, b''.join(items))


def set_(*items):
    return tlv(0x31, b''.join(items))


def integer(value):
    return tlv(0x02, value.to_bytes((value.bit_length() + 8) // 8 or 1, 'big'))


def utf8(text):
    return tlv(0x0C, text.encode('utf-8'))


def octets(data):
    return tlv(0x04, data)


def attribute(type_oid, *values):
    return seq(oid(type_oid), set_(*values))


def extension(ext_oid, value=None, critical=False):
    parts = [oid(ext_oid)]
    if critical:
        parts.append(b'\x01\x01\xff')
    if value is not None:
        parts.append(octets(value))
    return seq(*parts)


SAN_VALUE = seq(tlv(0x82, b'device.example.com'), tlv(0x87, bytes([192, 0, 2, 7])), tlv(0x81, b'ops@example.com'),
                tlv(0x86, b'https://example.com/x'), tlv(0x88, oid('1.2.3.4')[2:]))
KU_VALUE = tlv(0x03, b'\x05\xa0')   # digitalSignature, keyEncipherment
EKU_VALUE = seq(oid('1.3.6.1.5.5.7.3.2'), oid('1.3.6.1.5.5.7.3.1'), oid('1.2.3.4.5'))
BC_VALUE = seq(b'\x01\x01\x00')


def template(subject=True, key='ec', extensions=True, extra_attrs=()):
    parts = [integer(0)]
    if subject:
        parts.append(seq(set_(seq(oid('2.5.4.10'), utf8('Example Inc'))),
                         set_(seq(oid('2.5.4.11'), utf8('Devices'))),
                         set_(seq(oid('2.5.4.3')))))     # CN: value absent, the client fills it in
    # [0] IMPLICIT SubjectPublicKeyInfoTemplate: the tag replaces the SEQUENCE header.
    if key == 'ec':
        parts.append(tlv(0xA0, seq(oid('1.2.840.10045.2.1'), oid('1.3.132.0.34'))))
    elif key == 'rsa':
        modulus = (1 << 3071) | 1
        placeholder = seq(integer(modulus), integer(65537))
        parts.append(tlv(0xA0, seq(oid('1.2.840.113549.1.1.1'), b'\x05\x00') + tlv(0x03, b'\x00' + placeholder)))
    attrs = list(extra_attrs)
    if extensions:
        attrs.append(attribute('1.2.840.113549.1.9.16.2.62', seq(
            extension('2.5.29.17'),                          # subjectAltName: client fills it in
            extension('2.5.29.15', KU_VALUE, critical=True),
            extension('2.5.29.37', EKU_VALUE))))
    parts.append(tlv(0xA1, b''.join(attrs)))
    return seq(*parts)


def csrattrs_with_template(**kwargs):
    return seq(oid('1.2.840.113549.1.9.7'),                                     # legacy element
               attribute('1.2.840.10045.2.1', oid('1.3.132.0.35')),           # legacy: P-521
               attribute('1.2.840.113549.1.9.16.2.61', template(**kwargs)))   # the RFC 9908 template


def b64(der):
    return codecs.decode_body(der)


# ---- RFC 7030 §4.5.2 example and the RFC 9908 §5 examples ------------------------------------

def test_rfc7030_example_parses():
    body = fixture('rfc7030_example.b64')
    items = csrattrs.parse_csrattrs(codecs.decode_body(body, 'CSR attributes'))
    assert [(i['type'], i['name']) for i in items] == [
        ('oid', 'challengePassword'), ('attribute', 'id-ecPublicKey'),
        ('attribute', 'extensionRequest'), ('oid', 'ecdsa-with-SHA384')]
    assert items[1]['values'] == [{'key_type': 'ec', 'curve': 'secp384r1', 'curve_oid': '1.3.132.0.34'}]
    # The RFC puts a bare macAddress OID where Extensions belong (see RFC 9908 §3.2); kept as a request.
    assert items[2]['values'][0]['oid'] == '1.3.6.1.1.1.1.22'
    assert items[2]['values'][0]['name'] == 'macAddress'
    assert items[2]['values'][0]['value'] is None


def test_rfc7030_example_hex_matches_text():
    expected = bytes.fromhex(
        '3041 0609 2a864886f70d010907 3012 0607 2a8648ce3d0201 3107 0605 2b81040022 3016 0609 2a864886f70d01090e '
        '3109 0607 2b060101010116 0608 2a8648ce3d040303'.replace(' ', ''))
    assert codecs.decode_body(fixture('rfc7030_example.b64')) == expected


def test_rfc7030_example_requirements():
    req = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(b64(fixture('rfc7030_example.b64'))))
    assert req['key_type'] == 'ec'
    assert req['curve'] == 'secp384r1'
    assert req['hash'] == 'sha384'
    assert req['challenge_password_required'] is True
    assert req['attributes'] == ['1.3.6.1.1.1.1.22']
    assert req['extensions'] == []
    assert req['from_template'] is False


@pytest.mark.parametrize('name, key_type, curve, key_size, hash_name', [
    ('rfc9908_5_2_ec_p384.b64', 'ec', 'secp384r1', None, 'sha384'),
    ('rfc9908_5_3_ec_p521.b64', 'ec', 'secp521r1', None, 'sha512'),
    ('rfc9908_5_4_rsa_4096.b64', 'rsa', None, 4096, 'sha256'),
])
def test_rfc9908_key_examples(name, key_type, curve, key_size, hash_name):
    req = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(b64(fixture(name))))
    assert (req['key_type'], req['curve'], req['key_size'], req['hash']) == (key_type, curve, key_size, hash_name)
    assert req['key_spec'] == ('rsa-%d' % key_size if key_type == 'rsa' else {'secp384r1': 'ec-p384', 'secp521r1': 'ec-p521'}[curve])
    assert req['challenge_password_required'] is True


def test_rfc9908_p521_example_keeps_unknown_oids_and_subject_hint():
    req = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(b64(fixture('rfc9908_5_3_ec_p521.b64'))))
    assert req['subject'] == {'serialNumber': None}
    assert '1.2.840.113549.1.9.20' in req['attributes']       # friendlyName
    assert '0.9.2342.19200300.100.1.5' in req['attributes']


def test_rfc9908_acp_subject_alt_name_example():
    items = csrattrs.parse_csrattrs(b64(fixture('rfc9908_5_1_acp_san_crlf.bin')))
    ext = items[0]['values'][0]
    assert ext['name'] == 'subjectAltName'
    assert ext['critical'] is True
    assert ext['value'] == ['otherName:1.3.6.1.5.5.7.8.10;rfc8994+fd739fc23c3440112233445500000000+@acp.example.com']
    req = csrattrs.to_csr_requirements(items)
    assert req['extensions'] == ['2.5.29.17']
    assert req['extension_values'][0]['value_hex'] == ext['value_hex']
    assert req['subject_alt_name'] == []    # an otherName is copied via extension_values, not as a string


def test_base64_layouts_all_parse_the_same():
    text = base64.b64encode(b64(fixture('rfc7030_example.b64')))
    layouts = [text, text + b'\n', b'\r\n'.join(text[i:i + 16] for i in range(0, len(text), 16)), b'  ' + text + b'\x00']
    results = [csrattrs.parse_csrattrs(codecs.decode_body(body)) for body in layouts]
    assert all(r == results[0] for r in results)


# ---- extensionRequest with real values -------------------------------------------------------

def test_extension_request_values_are_decoded():
    der = seq(attribute('1.2.840.113549.1.9.14', seq(
        extension('2.5.29.17', SAN_VALUE),
        extension('2.5.29.15', KU_VALUE, critical=True),
        extension('2.5.29.37', EKU_VALUE),
        extension('2.5.29.19', BC_VALUE, critical=True),
        extension('2.5.29.14', octets(b'\x01\x02')),
        extension('1.2.3.99', b'\x05\x00'))))
    items = csrattrs.parse_csrattrs(der)
    exts = dict((e['name'], e) for e in items[0]['values'])
    assert exts['subjectAltName']['value'] == ['DNS:device.example.com', 'IP:192.0.2.7', 'email:ops@example.com',
                                               'URI:https://example.com/x', 'RID:1.2.3.4']
    assert exts['keyUsage']['value'] == ['digitalSignature', 'keyEncipherment']
    assert exts['keyUsage']['critical'] is True
    assert exts['extKeyUsage']['value'] == ['clientAuth', 'serverAuth', '1.2.3.4.5']
    assert exts['basicConstraints']['value'] == {'ca': False, 'path_length': None}
    assert exts['subjectKeyIdentifier']['value'] == '0102'
    assert exts['1.2.3.99']['value'] is None and exts['1.2.3.99']['value_hex'] == '0500'

    req = csrattrs.to_csr_requirements(items)
    assert req['subject_alt_name'] == ['DNS:device.example.com', 'IP:192.0.2.7', 'email:ops@example.com',
                                       'URI:https://example.com/x']
    assert req['key_usage'] == ['digitalSignature', 'keyEncipherment']
    assert req['extended_key_usage'] == ['clientAuth', 'serverAuth', '1.2.3.4.5']
    assert req['extensions'] == ['2.5.29.17', '2.5.29.15', '2.5.29.37', '2.5.29.19', '2.5.29.14', '1.2.3.99']
    assert len(req['extension_values']) == 6


def test_extension_request_as_sequence_of_oids_and_ms_type():
    der = seq(attribute('1.3.6.1.4.1.311.2.1.14', seq(oid('2.5.29.17'), oid('2.5.29.37'))))
    items = csrattrs.parse_csrattrs(der)
    assert [e['name'] for e in items[0]['values']] == ['subjectAltName', 'extKeyUsage']
    assert csrattrs.to_csr_requirements(items)['extensions'] == ['2.5.29.17', '2.5.29.37']


def test_bare_extension_and_name_oids():
    der = seq(oid('2.5.29.17'), oid('2.5.4.3'), oid('2.16.840.1.101.3.4.2.3'), oid('1.3.101.112'))
    req = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(der))
    assert req['extensions'] == ['2.5.29.17']
    assert req['subject'] == {'commonName': None}
    assert req['hash'] == 'sha512'
    assert req['key_type'] == 'ed25519'


def test_signature_oid_implies_key_type_only_when_unset():
    req = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(seq(oid('1.2.840.113549.1.1.12'))))
    assert (req['key_type'], req['hash']) == ('rsa', 'sha384')
    req = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(
        seq(attribute('1.2.840.10045.2.1', oid('1.2.840.10045.3.1.7')), oid('1.2.840.10045.4.3.2'))))
    assert (req['key_type'], req['curve'], req['hash']) == ('ec', 'secp256r1', 'sha256')


def test_unknown_attribute_values_are_kept_as_plain_data():
    der = seq(attribute('1.2.3.4.5', utf8('text'), integer(7), oid('1.2.3'), octets(b'\xff'), seq()))
    item = csrattrs.parse_csrattrs(der)[0]
    assert item['name'] == '1.2.3.4.5'
    assert item['values'] == ['text', 7, {'oid': '1.2.3', 'name': '1.2.3'}, {'der': 'ff'}, {'der': '3000'}]
    assert csrattrs.to_csr_requirements([item])['attributes'] == ['1.2.3.4.5']


def test_challenge_password_attribute():
    item = csrattrs.parse_csrattrs(seq(attribute('1.2.840.113549.1.9.7', utf8('abc'))))[0]
    assert item['values'] == ['abc']
    assert csrattrs.to_csr_requirements([item])['challenge_password_required'] is True


# ---- RFC 9908 template -----------------------------------------------------------------------

def test_template_is_parsed():
    items = csrattrs.parse_csrattrs(csrattrs_with_template())
    item = items[2]
    assert item['name'] == 'certificationRequestInfoTemplate'
    assert item['oid'] == '1.2.840.113549.1.9.16.2.61'
    tmpl = item['template']
    assert item['values'] == [tmpl]
    assert tmpl['version'] == 0
    assert tmpl['subject'] == [
        {'oid': '2.5.4.10', 'name': 'organizationName', 'value': 'Example Inc'},
        {'oid': '2.5.4.11', 'name': 'organizationalUnitName', 'value': 'Devices'},
        {'oid': '2.5.4.3', 'name': 'commonName', 'value': None}]
    assert tmpl['key'] == {'key_type': 'ec', 'curve': 'secp384r1', 'curve_oid': '1.3.132.0.34',
                           'algorithm_oid': '1.2.840.10045.2.1'}
    names = [(e['name'], e['critical'], e['value']) for e in tmpl['extensions']]
    assert names == [('subjectAltName', False, None), ('keyUsage', True, ['digitalSignature', 'keyEncipherment']),
                     ('extKeyUsage', False, ['clientAuth', 'serverAuth', '1.2.3.4.5'])]


def test_template_wins_over_legacy_elements():
    req = csrattrs.to_csr_requirements(csrattrs.parse_csrattrs(csrattrs_with_template()))
    assert req['from_template'] is True
    # RFC 9908 §4: the legacy challengePassword and P-521 elements are ignored.
    assert req['challenge_password_required'] is False
    assert (req['key_type'], req['curve']) == ('ec', 'secp384r1')
    assert req['subject'] == {'organizationName': 'Example Inc', 'organizationalUnitName': 'Devices', 'commonName': None}
    assert req['extensions'] == ['2.5.29.17', '2.5.29.15', '2.5.29.37']
    assert req['key_usage'] == ['digitalSignature', 'keyEncipherment']
    assert req['extended_key_usage'] == ['clientAuth', 'serverAuth', '1.2.3.4.5']


def test_template_rsa_placeholder_gives_key_size():
    tmpl = csrattrs.parse_csrattrs(csrattrs_with_template(key='rsa', subject=False, extensions=False))[2]['template']
    assert tmpl['subject'] is None
    assert tmpl['key']['key_type'] == 'rsa'
    assert tmpl['key']['key_size'] == 3072
    assert tmpl['extensions'] == []


def test_template_minimal_and_with_extra_attributes():
    extra = (attribute('1.2.840.113549.1.9.7', utf8('x')),
             attribute('1.2.840.113549.1.9.14', seq(extension('2.5.29.17', SAN_VALUE))))
    items = csrattrs.parse_csrattrs(seq(attribute('1.2.840.113549.1.9.16.2.61',
                                                  template(subject=False, key=None, extensions=False, extra_attrs=extra))))
    tmpl = items[0]['template']
    assert tmpl['key'] is None
    assert [a['name'] for a in tmpl['attributes']] == ['challengePassword']
    req = csrattrs.to_csr_requirements(items)
    assert req['challenge_password_required'] is True
    assert req['subject_alt_name'][0] == 'DNS:device.example.com'
    assert req['key_type'] is None


def test_template_with_bad_version_or_shape_is_rejected():
    bad_version = seq(attribute('1.2.840.113549.1.9.16.2.61', seq(integer(1), tlv(0xA1, b''))))
    with pytest.raises(ESTError) as err:
        csrattrs.parse_csrattrs(bad_version)
    assert err.value.kind == 'bad_response'
    with pytest.raises(ESTError):
        csrattrs.parse_csrattrs(seq(attribute('1.2.840.113549.1.9.16.2.61', utf8('nope'))))
    with pytest.raises(ESTError):
        csrattrs.parse_csrattrs(seq(attribute('1.2.840.113549.1.9.16.2.61', template(), template())))


# ---- empty and garbage -----------------------------------------------------------------------

def test_empty_sequence_means_nothing_to_apply():
    assert csrattrs.parse_csrattrs(b'\x30\x00') == []
    req = csrattrs.to_csr_requirements([])
    assert req['key_type'] is None and req['extensions'] == [] and req['challenge_password_required'] is False
    assert csrattrs.parse_csrattrs(codecs.decode_body(b'MAA=\r\n')) == []


@pytest.mark.parametrize('body', [b'garbage!', b'\x31\x00', b'\x30\x05\x06\x03', b'\x30\x00\x00', b'\x02\x01\x00',
                                  b'\x30\x03\x02\x01\x00', b''])
def test_garbage_is_bad_response(body):
    with pytest.raises(ESTError) as err:
        csrattrs.parse_csrattrs(body)
    assert err.value.kind == 'bad_response'


def test_non_bytes_is_invalid_input():
    with pytest.raises(ESTError) as err:
        csrattrs.parse_csrattrs(u'MEE=')
    assert err.value.kind == 'invalid_input'


# ---- property-based: nothing but ESTError escapes ---------------------------------------------

VALID = [b64(fixture('rfc7030_example.b64')), b64(fixture('rfc9908_5_1_acp_san_crlf.bin')), csrattrs_with_template(),
         csrattrs_with_template(key='rsa')]


def _check(data):
    try:
        items = csrattrs.parse_csrattrs(data)
    except ESTError as exc:
        assert exc.kind == 'bad_response'
        return
    assert isinstance(items, list)
    csrattrs.to_csr_requirements(items)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_esterror(data):
    _check(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), MUTATIONS)
def test_mutated_messages_only_raise_esterror(valid, mutations):
    _check(mutate(valid, mutations))
