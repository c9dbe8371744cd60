# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PKCS#10 requests and the subject / subjectAltName / key usage vocabulary."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, ExtensionOID

from ansible_collections.pki.est.plugins.module_utils import csr
from ansible_collections.pki.est.plugins.module_utils.codecs import public_key_der
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

CN, O, OU, C = '2.5.4.3', '2.5.4.10', '2.5.4.11', '2.5.4.6'


@pytest.fixture(scope='module')
def signing_keys():
    return {
        'ec': ec.generate_private_key(ec.SECP384R1()),
        'rsa': rsa.generate_private_key(public_exponent=65537, key_size=2048),
        'ed25519': ed25519.Ed25519PrivateKey.generate(),
    }


# -- subject -------------------------------------------------------------------------------------------

def test_subject_aliases_in_order():
    pairs = csr.subject_pairs(subject={'commonName': 'a.example', 'O': 'Example', 'organizational_unit_name': ['Ops', 'Web'],
                                       'c': 'DE', 'serialNumber': 'SN-42', '1.2.3.4.5': 'custom', 'Email Address': 'a@b.c'})
    assert pairs == [(CN, 'a.example'), (O, 'Example'), (OU, 'Ops'), (OU, 'Web'), (C, 'DE'), ('2.5.4.5', 'SN-42'),
                     ('1.2.3.4.5', 'custom'), ('1.2.840.113549.1.9.1', 'a@b.c')]


@pytest.mark.parametrize('alias, oid', [('CN', CN), ('cn', CN), ('common-name', CN), ('organizationName', O), ('OU', OU),
                                        ('countryName', C), ('ST', '2.5.4.8'), ('L', '2.5.4.7'), ('DC', '0.9.2342.19200300.100.1.25'),
                                        ('UID', '0.9.2342.19200300.100.1.1'), ('GN', '2.5.4.42'), ('SN', '2.5.4.4')])
def test_subject_alias(alias, oid):
    assert csr.subject_pairs(subject={alias: 'DE' if oid == C else 'value'}) == [(oid, 'DE' if oid == C else 'value')]


def test_common_name_alone_and_with_subject():
    assert csr.subject_pairs('host.example') == [(CN, 'host.example')]
    assert csr.subject_pairs('host.example', {'O': 'Example'}) == [(O, 'Example'), (CN, 'host.example')]
    # The same CN twice is not duplicated.
    assert csr.subject_pairs('host.example', {'CN': 'host.example', 'O': 'Example'}) == [(CN, 'host.example'), (O, 'Example')]
    assert csr.subject_pairs() == []
    assert csr.subject_pairs(None, {}) == []


@pytest.mark.parametrize('common_name, subject, fragment', [
    (None, {'Colour': 'blue'}, "unknown subject attribute 'Colour'"),
    (None, {'3.5.4': 'x'}, "unknown subject attribute '3.5.4'"),
    (None, {'2.5.4.': 'x'}, "unknown subject attribute '2.5.4.'"),
    (None, {'C': 'DEU'}, "two letters, got 'DEU'"),
    (None, {'C': 'D'}, 'two letters'),
    (None, {'O': ''}, "'O' is empty"),
    (None, {'OU': ['Ops', '']}, "'OU' is empty"),
    (None, {'O': None}, "'O' is empty"),  # a YAML key without a value, not the text 'None'
    (None, {'OU': ['Ops', None]}, "'OU' is empty"),
    ('a.example', {'CN': 'b.example'}, 'common_name and subject.CN disagree'),
    ('a.example', {'commonName': ['b.example', 'c.example']}, 'disagree'),
])
def test_subject_errors(common_name, subject, fragment):
    with pytest.raises(ESTError) as info:
        csr.subject_pairs(common_name, subject)
    assert info.value.kind == 'invalid_input'
    assert fragment in info.value.message


@pytest.mark.parametrize('common_name, subject', [
    ('a\u00e9\u00df.example', None),  # non-ASCII letters are fine in a UTF8String
    ('x' * 64, None),
    ('\u00e9' * 32, None),  # 64 bytes as UTF-8
    ('host.example', {'O': 'Example, Inc.', 'OU': ['Ops & Web', 'A/B (c)'], 'C': 'de', 'serialNumber': 42}),
    (None, {'street': 'Main Street 1', 'L': 'S\u00e3o Paulo', '2.5.4.3': 'x' * 64}),
])
def test_subject_values_accepted(common_name, subject):
    pairs = csr.subject_pairs(common_name, subject)
    assert pairs
    csr.x509_name(pairs)  # and cryptography takes them


@pytest.mark.parametrize('common_name, subject, fragment', [
    ('a\nb', None, "common_name contains a control character: 'a\\nb'"),
    ('a\tb', None, "common_name contains a control character: 'a\\tb'"),
    ('\x00', None, "common_name contains a control character: '\\x00'"),
    ('a\rb', None, 'control character'),
    ('a\x1fb', None, "'a\\x1fb'"),
    ('a\x7fb', None, "'a\\x7fb'"),  # DEL
    ('a\x85b', None, "'a\\x85b'"),  # C1: NEL
    ('a\x9fb', None, "'a\\x9fb'"),
    ('host.example\n', None, 'common_name contains a control character'),
    (None, {'CN': 'a\nb'}, "subject attribute 'CN' contains a control character: 'a\\nb'"),
    (None, {'O': 'Example\x00Inc'}, "subject attribute 'O' contains a control character: 'Example\\x00Inc'"),
    (None, {'OU': ['Ops', 'W\teb']}, "subject attribute 'OU' contains a control character: 'W\\teb'"),
    (None, {'2.5.4.10': 'a\x1bb'}, "subject attribute '2.5.4.10' contains a control character"),
    ('x' * 65, None, 'common_name is too long (65 characters'),
    (None, {'CN': 'y' * 65}, "subject attribute 'CN' is too long (65 characters"),
    (None, {'2.5.4.3': 'y' * 100}, 'at most 64'),
    ('\u00e9' * 33, None, 'common_name is too long (33 characters, 66 bytes as UTF-8)'),
    (None, {'C': 'D1'}, "two letters, got 'D1'"),
    (None, {'C': '\u00fc1'}, 'two letters'),
])
def test_subject_value_errors(common_name, subject, fragment):
    with pytest.raises(ESTError) as info:
        csr.subject_pairs(common_name, subject)
    assert info.value.kind == 'invalid_input'
    assert fragment in info.value.message


def test_name_pairs_round_trip():
    pairs = csr.subject_pairs('h.example', {'O': 'Example', 'OU': ['A', 'B'], 'C': 'FR'})
    assert csr.name_pairs(csr.x509_name(pairs)) == pairs


# -- subjectAltName ------------------------------------------------------------------------------------

@pytest.mark.parametrize('entry, expected', [
    ('DNS:Host.Example.COM.', 'DNS:host.example.com'),
    ('dns: www.example.com ', 'DNS:www.example.com'),
    ('  DNS:*.Example.org', 'DNS:*.example.org'),
    ('IP:192.0.2.1', 'IP:192.0.2.1'),
    ('ip address:192.0.2.7', 'IP:192.0.2.7'),
    ('IP:2001:DB8:0:0:0:0:0:1', 'IP:2001:db8::1'),
    ('IP:2001:db8::0:1', 'IP:2001:db8::1'),
    ('email:Ops@Example.com', 'email:Ops@Example.com'),
    ('RFC822:ops@example.com', 'email:ops@example.com'),
    ('URI:https://example.com/Path', 'URI:https://example.com/Path'),
    ('uri:urn:uuid:1234', 'URI:urn:uuid:1234'),
])
def test_normalize_san(entry, expected):
    assert csr.normalize_san(entry) == expected


@pytest.mark.parametrize('entry, fragment', [
    ('host.example.com', 'must look like DNS:name'),
    ('DNS:', 'must look like DNS:name'),
    ('otherName:1.2.3', "type 'othername' is not supported"),
    ('dirName:CN=x', 'is not supported'),
    ('IP:300.1.1.1', 'is not an IP address'),
    ('IP:host.example', 'is not an IP address'),
    ('IP:2001:db8:::1', 'is not an IP address'),
])
def test_normalize_san_errors(entry, fragment):
    with pytest.raises(ESTError) as info:
        csr.normalize_san(entry)
    assert info.value.kind == 'invalid_input'
    assert fragment in info.value.message


@pytest.mark.parametrize('entry, expected', [
    ('DNS:localhost', 'DNS:localhost'),
    ('DNS:a.b', 'DNS:a.b'),
    ('DNS:a-b.c-d.example', 'DNS:a-b.c-d.example'),
    ('DNS:xn--bcher-kva.example', 'DNS:xn--bcher-kva.example'),
    ('DNS:_sip._tcp.example.com', 'DNS:_sip._tcp.example.com'),  # underscores: SRV-style labels
    ('DNS:host_1.example', 'DNS:host_1.example'),
    ('DNS:1.example', 'DNS:1.example'),
    ('DNS:*.a.example', 'DNS:*.a.example'),
    ('DNS:' + 'a' * 63 + '.example', 'DNS:' + 'a' * 63 + '.example'),
    ('DNS:' + '.'.join(['a' * 63] * 3 + ['b' * 61]), 'DNS:' + '.'.join(['a' * 63] * 3 + ['b' * 61])),  # 253
    ('DNS:' + '.'.join(['a' * 63] * 3 + ['b' * 61]) + '.', 'DNS:' + '.'.join(['a' * 63] * 3 + ['b' * 61])),
    ('email:a@b', 'email:a@b'),
    ('email:first.last+tag@sub.example.com', 'email:first.last+tag@sub.example.com'),
    ("email:o'neil!#$%&*=?^`{|}~-_/@example.com", "email:o'neil!#$%&*=?^`{|}~-_/@example.com"),
    ('email:ops@xn--bcher-kva.example', 'email:ops@xn--bcher-kva.example'),
    ('URI:urn:ietf:rfc:7030', 'URI:urn:ietf:rfc:7030'),
    ('URI:spiffe://example.org/ns/default/sa/web', 'URI:spiffe://example.org/ns/default/sa/web'),
    ('URI:coap+tcp://[2001:db8::1]:5683/x?y=1#z', 'URI:coap+tcp://[2001:db8::1]:5683/x?y=1#z'),
    ('URI:a1.b-c+d:x%20y', 'URI:a1.b-c+d:x%20y'),
    ('URI:mailto:ops@example.com', 'URI:mailto:ops@example.com'),
    ('IP:::', 'IP:::'),
    ('IP:0.0.0.0', 'IP:0.0.0.0'),
])
def test_normalize_san_valid_values(entry, expected):
    assert csr.normalize_san(entry) == expected


@pytest.mark.parametrize('entry, fragment', [
    # DNS
    ('DNS:a b', "subject_alt_name entry 'DNS:a b' is not a valid DNS name: ' ' in label 'a b'"),
    ('DNS:a..b', "'DNS:a..b' is not a valid DNS name: it has an empty label"),
    ('DNS:.a.b', 'empty label'),
    ('DNS:a.b..', 'empty label'),  # one trailing dot is stripped, not two
    ('DNS:.', 'empty label'),
    ('DNS:-a.b', "label '-a' starts or ends with a hyphen"),
    ('DNS:a-.b', "label 'a-' starts or ends with a hyphen"),
    ('DNS:a.b-', 'starts or ends with a hyphen'),
    ('DNS:a\tb.example', "'\\t' in label"),
    ('DNS:a\x00b', "'\\x00' in label"),
    ('DNS:a\nb.example', 'is not a valid DNS name'),
    ('DNS:host:443', "':' in label"),
    ('DNS:a/b.example', "'/' in label"),
    ('DNS:a@b.example', "'@' in label"),
    ('DNS:*', "'*' in label"),
    ('DNS:*.', "'*' in label"),
    ('DNS:*.*.example', "'*' in label"),
    ('DNS:a.*.example', "'*' in label"),
    ('DNS:w*.example', "'*' in label"),
    ('DNS:*.', 'a wildcard is a whole first label'),
    ('DNS:' + 'a' * 64 + '.example', 'longer than 63 characters'),
    ('DNS:' + '.'.join(['a' * 63] * 3 + ['b' * 62]), 'longer than 253 characters'),
    ('DNS:b\u00fccher.example', 'A-label (xn--)'),
    ('DNS:b\u00fccher.example', 'is not ASCII'),
    # email
    ('email:not an email', "subject_alt_name entry 'email:not an email' is not a valid email address"),
    ('email:ops', 'local-part@domain'),
    ('email:@example.com', 'local-part@domain'),
    ('email:ops@', 'local-part@domain'),
    ('email:o ps@example.com', "' ' in the local part"),
    ('email:o\tps@example.com', "'\\t' in the local part"),
    ('email:o\x7fps@example.com', "'\\x7f' in the local part"),
    ('email:a@b@example.com', "'@' in the local part"),
    ('email:ops@exa mple.com', "domain 'exa mple.com': ' ' in label"),
    ('email:ops@a..example', "domain 'a..example': it has an empty label"),
    ('email:ops@-a.example', 'hyphen'),
    ('email:ops@*.example.com', "'*' in label"),
    ('email:ops@example.com.', 'empty label'),
    ('email:\u00fc@example.com', 'A-label'),
    ('email:ops@b\u00fccher.example', 'A-label'),
    # URI
    ('URI:example.com/path', "subject_alt_name entry 'URI:example.com/path' is not a valid URI: it has no scheme"),
    ('URI:foo bar:x', "'URI:foo bar:x' is not a valid URI: it contains ' '"),
    ('URI:https://a.example/x y', "contains ' '"),
    ('URI:https://a.example/\x00', "contains '\\x00'"),
    ('URI:https://a.example/\x85x', "contains '\\x85'"),
    ('DNS:a\x85b.example', "'\\x85' in label"),
    ('email:o\x9fps@example.com', "'\\x9f' in the local part"),
    ('email:ops@a\x85b.example', "'\\x85' in label"),
    ('URI:/relative/path', 'no scheme'),
    ('URI://host/path', 'no scheme'),
    ('URI:1http://a.example/', 'no scheme'),
    ('URI:ht_tp://a.example/', 'no scheme'),
    ('URI:https://\u00fc.example/', 'A-label'),
    # IP (as before)
    ('IP:1.2.3', "subject_alt_name 'IP:1.2.3' is not an IP address"),
    ('IP:1.2.3.4.5', 'is not an IP address'),
    ('IP:192.0.2.1/24', 'is not an IP address'),
    ('IP:192.0.2. 1', 'is not an IP address'),
])
def test_normalize_san_invalid_values(entry, fragment):
    with pytest.raises(ESTError) as info:
        csr.normalize_san(entry)
    assert info.value.kind == 'invalid_input'
    assert fragment in info.value.message


def test_general_names_and_san_strings_round_trip():
    sans = ['DNS:a.example', 'IP:192.0.2.1', 'IP:2001:db8::1', 'email:a@example.com', 'URI:https://a.example/']
    names = csr.general_names(sans)
    assert names == [x509.DNSName('a.example'), x509.IPAddress(ipaddress.ip_address('192.0.2.1')),
                     x509.IPAddress(ipaddress.ip_address('2001:db8::1')), x509.RFC822Name('a@example.com'),
                     x509.UniformResourceIdentifier('https://a.example/')]
    assert csr.san_strings(names) == sans
    assert csr.san_strings([x509.DNSName('UPPER.example.')]) == ['DNS:upper.example']


# -- key usage / extended key usage --------------------------------------------------------------------

def test_key_usage_names():
    assert csr.key_usage_names(['digitalSignature', 'key_encipherment', 'Key Agreement', 'nonRepudiation', 'digitalsignature']) == \
        ['content_commitment', 'digital_signature', 'key_agreement', 'key_encipherment']
    assert csr.key_usage_names(['keyCertSign', 'cRLSign', 'dataEncipherment', 'encipherOnly', 'decipherOnly', 'contentCommitment']) == \
        ['content_commitment', 'crl_sign', 'data_encipherment', 'decipher_only', 'encipher_only', 'key_cert_sign']
    assert csr.key_usage_names(None) == []
    assert csr.key_usage_names([]) == []


@pytest.mark.parametrize('bad', ['signing', 'serverAuth', ''])
def test_key_usage_names_error(bad):
    with pytest.raises(ESTError) as info:
        csr.key_usage_names(['digitalSignature', bad])
    assert info.value.kind == 'invalid_input'
    assert repr(bad) in info.value.message


def test_eku_oids():
    names = ['serverAuth', 'client_auth', 'Code Signing', 'emailProtection', 'timeStamping', 'OCSPSigning',
             'anyExtendedKeyUsage', '1.3.6.1.4.1.99999.1', 'serverauth']
    expected = ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.4', '1.3.6.1.5.5.7.3.8',
                '1.3.6.1.5.5.7.3.9', '2.5.29.37.0', '1.3.6.1.4.1.99999.1']
    assert csr.eku_oids(names) == sorted(expected)
    assert csr.eku_oids(None) == []


@pytest.mark.parametrize('bad', ['webServer', '3.1', '1.3.', 'digitalSignature'])
def test_eku_oids_error(bad):
    with pytest.raises(ESTError) as info:
        csr.eku_oids([bad])
    assert info.value.kind == 'invalid_input'
    assert repr(bad) in info.value.message


# -- build_csr -----------------------------------------------------------------------------------------

def _ext(req, oid):
    return req.extensions.get_extension_for_oid(oid)


@pytest.mark.parametrize('kind', ['ec', 'rsa', 'ed25519'])
def test_build_csr_contents(signing_keys, kind):
    key = signing_keys[kind]
    pairs = csr.subject_pairs('dev.example', {'O': 'Example'})
    req = csr.build_csr(key, pairs, sans=['DNS:Dev.Example.', 'IP:192.0.2.9'], key_usage=['digitalSignature', 'keyEncipherment'],
                        eku=['serverAuth', 'clientAuth'], challenge_password='otp-1234')
    assert req.is_signature_valid
    assert public_key_der(req.public_key()) == public_key_der(key.public_key())
    assert csr.name_pairs(req.subject) == [(O, 'Example'), (CN, 'dev.example')]
    assert sorted(ext.oid.dotted_string for ext in req.extensions) == sorted([
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string, ExtensionOID.KEY_USAGE.dotted_string,
        ExtensionOID.EXTENDED_KEY_USAGE.dotted_string])
    san = _ext(req, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san.critical is False
    assert csr.san_strings(san.value) == ['DNS:dev.example', 'IP:192.0.2.9']
    usage = _ext(req, ExtensionOID.KEY_USAGE)
    assert usage.critical is True
    assert (usage.value.digital_signature, usage.value.key_encipherment) == (True, True)
    assert (usage.value.content_commitment, usage.value.data_encipherment, usage.value.key_agreement,
            usage.value.key_cert_sign, usage.value.crl_sign) == (False,) * 5
    eku = _ext(req, ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku.critical is False
    assert set(eku.value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert len(eku.value) == 2
    assert req.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value == b'otp-1234'
    assert csr.extension_values(req) == {'sans': ['DNS:dev.example', 'IP:192.0.2.9'],
                                         'key_usage': ['digital_signature', 'key_encipherment'],
                                         'eku': ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']}
    # What goes on the wire loads back.
    assert csr.csr_der(csr.load_csr(csr.csr_der(req))) == csr.csr_der(req)


def test_build_csr_signature_hashes(signing_keys):
    assert csr.build_csr(signing_keys['ec'], [(CN, 'x')]).signature_hash_algorithm.name == 'sha384'
    assert csr.build_csr(signing_keys['rsa'], [(CN, 'x')]).signature_hash_algorithm.name == 'sha256'
    assert csr.build_csr(signing_keys['rsa'], [(CN, 'x')], hash_name='sha512').signature_hash_algorithm.name == 'sha512'
    assert csr.build_csr(signing_keys['ed25519'], [(CN, 'x')]).signature_hash_algorithm is None


def test_build_csr_minimal_has_nothing_extra(signing_keys):
    req = csr.build_csr(signing_keys['ec'], [(CN, 'only.example')])
    assert req.is_signature_valid
    assert list(req.extensions) == []
    assert list(req.attributes) == []
    assert csr.extension_values(req) == {'sans': [], 'key_usage': [], 'eku': []}


def test_build_csr_san_critical_when_subject_empty(signing_keys):
    req = csr.build_csr(signing_keys['ec'], [], sans=['DNS:only-san.example'])
    assert req.is_signature_valid
    assert list(req.subject) == []
    san = _ext(req, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san.critical is True
    assert csr.san_strings(san.value) == ['DNS:only-san.example']


def test_build_csr_needs_subject_or_san(signing_keys):
    with pytest.raises(ESTError) as info:
        csr.build_csr(signing_keys['ec'], [], sans=[])
    assert info.value.kind == 'invalid_input'
    assert 'needs a subject' in info.value.message


@pytest.mark.parametrize('arguments, fragment', [
    (dict(sans=['DNS:ok.example', 'bogus']), 'must look like'),
    (dict(key_usage=['flying']), "unknown key usage 'flying'"),
    (dict(eku=['flying']), "unknown extended key usage 'flying'"),
    (dict(key_usage=['encipherOnly']), 'key_agreement'),
    (dict(key_usage=['decipherOnly', 'digitalSignature']), 'key_agreement'),
    (dict(sans=['DNS:b\u00fccher.example']), 'A-label'),
    (dict(sans=['email:\u00fc@example.com']), 'A-label'),
    (dict(sans=['URI:https://\u00fc.example/']), 'A-label'),
    (dict(pairs=[(CN, 'x' * 65)]), 'cannot build the certificate request'),
    (dict(pairs=[(C, '\u00fc1')]), 'cannot build the certificate request'),
])
def test_build_csr_bad_input(signing_keys, arguments, fragment):
    arguments = dict(arguments)
    pairs = arguments.pop('pairs', [(CN, 'x')])
    with pytest.raises(ESTError) as info:
        csr.build_csr(signing_keys['ec'], pairs, **arguments)
    assert info.value.kind == 'invalid_input'
    assert fragment in info.value.message


def test_build_csr_encipher_only_with_key_agreement(signing_keys):
    req = csr.build_csr(signing_keys['ec'], [(CN, 'x')], key_usage=['keyAgreement', 'encipherOnly'])
    assert csr.extension_values(req)['key_usage'] == ['encipher_only', 'key_agreement']


# -- load_csr ------------------------------------------------------------------------------------------

def test_load_csr_pem_der_and_text(signing_keys):
    req = csr.build_csr(signing_keys['ec'], [(CN, 'load.example')])
    der = csr.csr_der(req)
    pem = csr.csr_pem(req)
    assert pem.startswith(b'-----BEGIN CERTIFICATE REQUEST-----')
    for data in (der, pem, pem.decode('ascii'), b'junk before\n' + pem):
        assert csr.csr_der(csr.load_csr(data)) == der


@pytest.mark.parametrize('data', [b'', b'\x30\x03\x02\x01\x00', b'not a csr', b'-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n'
                                  b'-----END CERTIFICATE REQUEST-----\n'])
def test_load_csr_garbage(data):
    with pytest.raises(ESTError) as info:
        csr.load_csr(data, source='CSR file req.pem')
    assert info.value.kind == 'invalid_input'
    assert info.value.message.startswith('cannot read the CSR file req.pem')


def test_load_csr_bad_signature(signing_keys):
    der = bytearray(csr.csr_der(csr.build_csr(signing_keys['ed25519'], [(CN, 'tampered.example')])))
    der[-1] ^= 0x01  # the last byte of the Ed25519 signature
    with pytest.raises(ESTError) as info:
        csr.load_csr(bytes(der), source='CSR file req.der')
    assert info.value.kind == 'invalid_input'
    assert info.value.message == 'the CSR file req.der signature does not verify'


def test_load_csr_from_other_tools(pki):
    # A CSR made without this module (the test PKI's plain builder) loads as well.
    assert csr.name_pairs(csr.load_csr(_pki.der(pki.csr)).subject) == [(O, 'pki.est tests'), (CN, 'device.example.com')]


# -- extension_values on a certificate -----------------------------------------------------------------

def test_extension_values_round_trip_on_certificate(pki, signing_keys):
    sans = ['DNS:a.example', 'DNS:b.example', 'IP:2001:db8::5', 'email:ops@example.com', 'URI:spiffe://example/a']
    req = csr.build_csr(signing_keys['rsa'], [(CN, 'a.example')], sans=sans, key_usage=['digitalSignature', 'keyAgreement'],
                        eku=['clientAuth', '1.3.6.1.4.1.99999.7'])
    cert = _pki.cert_from_csr(req, pki.intermediate, pki.intermediate_key)
    assert csr.extension_values(cert) == {
        'sans': sans,
        'key_usage': csr.key_usage_names(['digitalSignature', 'keyAgreement']),
        'eku': csr.eku_oids(['clientAuth', '1.3.6.1.4.1.99999.7']),
    }
    # A certificate without these extensions has empty lists, not errors.
    assert csr.extension_values(pki.leaf) == {'sans': [], 'key_usage': [], 'eku': []}
