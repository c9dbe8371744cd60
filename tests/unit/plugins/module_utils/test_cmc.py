# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Full CMC: RFC 7030 §4.3 with RFC 5272 / 5273 / 6402 messages in CMS SignedData (RFC 5652)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import char, univ, useful
from pyasn1_modules import rfc5652, rfc6402

from ansible_collections.pki.est.plugins.module_utils import cmc
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki
from ansible_collections.pki.est.tests.unit.plugins.module_utils._der import read_fixture, tlv
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fuzz import MUTATIONS, mutate


OID_SHA256 = '2.16.840.1.101.3.4.2.1'
OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2'


def fixture(name):
    return read_fixture('cmc', name)


# ---- a small independent DER writer for building responses ----------------------------------

def oid(dotted):
    return der_encoder.encode(univ.ObjectIdentifier(dotted))


def seq(*items):
    return tlv(0x30, b''.join(items))


def set_(*items):
    return tlv(0x31, b''.join(items))


def integer(value):
    return der_encoder.encode(univ.Integer(value))


def octets(data):
    return tlv(0x04, data)


class CmcPKI:
    def __init__(self):
        self.ca, self.ca_key = _pki.self_signed('CMC Test CA')
        self.other_ca, self.other_ca_key = _pki.self_signed('Some Other CA')
        self.ra, self.ra_key = _pki.issued('CMC RA', self.ca, self.ca_key, ca=False)
        self.ec_key = _pki.new_key()
        self.ec_csr = _pki.make_csr(self.ec_key, 'ec.example.com')
        self.issued, _k = _pki.issued('ec.example.com', self.ca, self.ca_key, ca=False, key=self.ec_key)
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_csr = (x509.CertificateSigningRequestBuilder().subject_name(_pki.name('rsa.example.com'))
                        .add_extension(x509.SubjectKeyIdentifier(b'\x11' * 8), critical=False)
                        .sign(self.rsa_key, hashes.SHA256()))
        self.ed_key = ed25519.Ed25519PrivateKey.generate()
        self.ed_csr = x509.CertificateSigningRequestBuilder().subject_name(_pki.name('ed.example.com')).sign(self.ed_key, None)


@pytest.fixture(scope='module')
def pki():
    return CmcPKI()


# ---- reading a request back with pyasn1 --------------------------------------------------------

def open_request(der):
    info, rest = der_decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
    assert not rest
    assert info['contentType'] == rfc5652.id_signedData
    signed, rest = der_decoder.decode(bytes(info['content']), asn1Spec=rfc5652.SignedData())
    assert not rest
    assert str(signed['encapContentInfo']['eContentType']) == '1.3.6.1.5.5.7.12.2'
    content = signed['encapContentInfo']['eContent'].asOctets()
    pki_data, rest = der_decoder.decode(content, asn1Spec=rfc6402.PKIData())
    assert not rest
    return signed, content, pki_data


def controls(pki_data):
    result = {}
    for control in pki_data['controlSequence']:
        result[str(control['attrType'])] = (int(control['bodyPartID']), bytes(control['attrValues'][0]))
    return result


def check_signature(signed, content, public_key):
    """Verify a SignerInfo independently of the module: digest, content type, signature."""
    assert len(signed['signerInfos']) == 1
    signer = signed['signerInfos'][0]
    attrs = dict((str(a['attrType']), bytes(a['attrValues'][0])) for a in signer['signedAttrs'])
    digest_oid = str(signer['digestAlgorithm']['algorithm'])
    digest = {OID_SHA256: hashlib.sha256, '2.16.840.1.101.3.4.2.3': hashlib.sha512}[digest_oid](content).digest()
    assert attrs['1.2.840.113549.1.9.4'] == octets(digest)
    assert attrs['1.2.840.113549.1.9.3'] == oid('1.3.6.1.5.5.7.12.2')
    signed_attrs = der_encoder.encode(signer['signedAttrs'])
    data = b'\x31' + signed_attrs[1:]
    signature = signer['signature'].asOctets()
    alg = str(signer['signatureAlgorithm']['algorithm'])
    if isinstance(public_key, rsa.RSAPublicKey):
        assert alg == '1.2.840.113549.1.1.11'
        assert bytes(signer['signatureAlgorithm']['parameters']) == b'\x05\x00'
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        assert alg == OID_ECDSA_SHA256
        assert not signer['signatureAlgorithm']['parameters'].isValue
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        assert alg == '1.3.101.112'
        assert digest_oid == '2.16.840.1.101.3.4.2.3'
        public_key.verify(signature, data)
    return signer


# ---- requests --------------------------------------------------------------------------------

@pytest.mark.parametrize('which', ['ec', 'rsa', 'ed25519'])
def test_request_signed_with_request_key(pki, which):
    key, csr = {'ec': (pki.ec_key, pki.ec_csr), 'rsa': (pki.rsa_key, pki.rsa_csr), 'ed25519': (pki.ed_key, pki.ed_csr)}[which]
    info = cmc.build_full_pki_request_info(_pki.der(csr), key, transaction_id=4242, sender_nonce=b'N' * 16,
                                           identification='device-1')
    signed, content, pki_data = open_request(info['der'])
    assert info['transaction_id'] == 4242 and info['sender_nonce'] == b'N' * 16
    assert int(signed['version']) == 3
    assert not signed['certificates'].isValue
    signer = check_signature(signed, content, key.public_key())
    assert int(signer['version']) == 3
    assert signer['sid'].getName() == 'subjectKeyIdentifier'
    ski = signer['sid']['subjectKeyIdentifier'].asOctets()
    if which == 'rsa':
        assert ski == b'\x11' * 8    # the CSR's own SKI extension wins (RFC 5272 §3.2 c)
    else:
        assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    # One tcr per CSR, byte for byte, with bodyPartID 1.
    assert len(pki_data['reqSequence']) == 1
    tcr = pki_data['reqSequence'][0]['tcr']
    assert int(tcr['bodyPartID']) == 1
    assert der_encoder.encode(tcr['certificationRequest']) == _pki.der(csr)
    ctl = controls(pki_data)
    assert ctl['1.3.6.1.5.5.7.7.5'] == (2, integer(4242))
    assert ctl['1.3.6.1.5.5.7.7.6'] == (3, octets(b'N' * 16))
    assert ctl['1.3.6.1.5.5.7.7.2'][1] == der_encoder.encode(char.UTF8String('device-1'))
    assert len(pki_data['cmsSequence']) == 0 and len(pki_data['otherMsgSequence']) == 0


def test_request_with_signer_certificate_and_several_csrs(pki):
    other = _pki.new_key()
    csrs = [_pki.der(pki.ec_csr), _pki.der(_pki.make_csr(other, 'two.example.com'))]
    der = cmc.build_full_pki_request(csrs, pki.ra_key, signer_cert=pki.ra)
    signed, content, pki_data = open_request(der)
    signer = check_signature(signed, content, pki.ra.public_key())
    assert int(signer['version']) == 1
    ias = signer['sid']['issuerAndSerialNumber']
    assert int(ias['serialNumber']) == pki.ra.serial_number
    assert der_encoder.encode(ias['issuer']) == pki.ra.issuer.public_bytes()
    certs = [der_encoder.encode(c['certificate']) for c in signed['certificates']]
    assert certs == [pki.ra.public_bytes(Encoding.DER)]
    assert [int(r['tcr']['bodyPartID']) for r in pki_data['reqSequence']] == [1, 2]
    ctl = controls(pki_data)
    assert sorted(v[0] for v in ctl.values()) == [3, 4]
    assert '1.3.6.1.5.5.7.7.2' not in ctl


def test_request_accepts_csr_objects_and_explicit_ski(pki):
    der = cmc.build_full_pki_request([pki.ec_csr], pki.ec_key, subject_key_identifier=b'\x42' * 20)
    signed, content, _data = open_request(der)
    signer = check_signature(signed, content, pki.ec_key.public_key())
    assert signer['sid']['subjectKeyIdentifier'].asOctets() == b'\x42' * 20


def test_random_transaction_id_and_nonce(pki):
    first = cmc.build_full_pki_request_info(_pki.der(pki.ec_csr), pki.ec_key)
    second = cmc.build_full_pki_request_info(_pki.der(pki.ec_csr), pki.ec_key)
    assert len(first['sender_nonce']) == 16
    assert first['sender_nonce'] != second['sender_nonce']
    assert first['transaction_id'] > 0 and first['transaction_id'] != second['transaction_id']
    ctl = controls(open_request(first['der'])[2])
    assert ctl['1.3.6.1.5.5.7.7.5'][1] == integer(first['transaction_id'])


@pytest.mark.parametrize('raw', [True, False], ids=['raw-r-s', 'der'])
def test_callable_signer_for_pkcs11_keys(pki, raw):
    calls = []

    def sign(data):
        calls.append(data)
        signature = pki.ec_key.sign(data, ec.ECDSA(hashes.SHA256()))
        if raw:  # what a PKCS#11 CKM_ECDSA_SHA256 returns
            r, s = decode_dss_signature(signature)
            return r.to_bytes(32, 'big') + s.to_bytes(32, 'big')
        return signature

    der = cmc.build_full_pki_request(_pki.der(pki.ec_csr), sign, signer_public_key=pki.ec_key.public_key())
    signed, content, _data = open_request(der)
    check_signature(signed, content, pki.ec_key.public_key())
    assert len(calls) == 1 and calls[0][:1] == b'\x31'


def test_sign_raw(pki):
    alg, signature = cmc.sign_raw(b'data', pki.rsa_key)
    assert alg == '1.2.840.113549.1.1.11'
    pki.rsa_key.public_key().verify(signature, b'data', padding.PKCS1v15(), hashes.SHA256())
    alg, signature = cmc.sign_raw(b'data', pki.ed_key.sign, pki.ed_key.public_key())
    assert alg == '1.3.101.112'
    pki.ed_key.public_key().verify(signature, b'data')


def test_request_errors(pki):
    cases = [
        lambda: cmc.build_full_pki_request([], pki.ec_key),
        lambda: cmc.build_full_pki_request(b'not a csr', pki.ec_key),
        lambda: cmc.build_full_pki_request(_pki.der(pki.ec_csr), lambda d: b'x'),
        lambda: cmc.build_full_pki_request(_pki.der(pki.ec_csr), pki.ec_key, signer_cert=pki.ra),
        lambda: cmc.build_full_pki_request(_pki.der(pki.ec_csr), pki.ec_key, sender_nonce=b''),
        lambda: cmc.build_full_pki_request(_pki.der(pki.ec_csr), object()),
        lambda: cmc.build_full_pki_request(_pki.der(pki.ec_csr), pki.rsa_key),     # key of no CSR, no signer_cert
        lambda: cmc.build_full_pki_request(_pki.der(pki.ec_csr), pki.ec_key, subject_key_identifier=b''),
    ]
    for case in cases:
        with pytest.raises(ESTError) as err:
            case()
        assert err.value.kind == 'invalid_input'
    with pytest.raises(ESTError) as err:
        cmc.build_full_pki_request(_pki.der(pki.ec_csr), lambda d: None, signer_public_key=pki.ec_key.public_key())
    assert err.value.kind == 'key_store'


def test_content_type_constants():
    assert cmc.CMC_REQUEST_CONTENT_TYPE == 'application/pkcs7-mime; smime-type=CMC-request'
    assert cmc.CMC_RESPONSE_CONTENT_TYPE == 'application/pkcs7-mime; smime-type=CMC-response'


# ---- responses -------------------------------------------------------------------------------

def status_v2(status, body_list=(1,), status_string=None, fail_info=None, pend=None, extended=None, path=None):
    info = rfc6402.CMCStatusInfoV2()
    info['cMCStatus'] = status
    for ident in body_list:
        ref = rfc6402.BodyPartReference()
        ref['bodyPartID'] = ident
        info['bodyList'].append(ref)
    if path:
        ref = rfc6402.BodyPartReference()
        for ident in path:
            ref['bodyPartPath'].append(ident)
        info['bodyList'].append(ref)
    if status_string:
        info['statusString'] = status_string
    if fail_info is not None:
        info['otherInfo']['failInfo'] = fail_info
    if pend is not None:
        info['otherInfo']['pendInfo']['pendToken'] = pend[0]
        info['otherInfo']['pendInfo']['pendTime'] = useful.GeneralizedTime(pend[1])
    if extended is not None:
        info['otherInfo']['extendedFailInfo']['failInfoOID'] = univ.ObjectIdentifier(extended)
        info['otherInfo']['extendedFailInfo']['failInfoValue'] = der_encoder.encode(univ.Null(''))
    return '1.3.6.1.5.5.7.7.25', der_encoder.encode(info)


def status_v1(status, fail_info=None):
    info = rfc6402.CMCStatusInfo()
    info['cMCStatus'] = status
    info['bodyList'].append(1)
    if fail_info is not None:
        info['otherInfo']['failInfo'] = fail_info
    return '1.3.6.1.5.5.7.7.1', der_encoder.encode(info)


def pki_response(*controls_, **kw):
    response = rfc6402.PKIResponse()
    for index, (type_oid, value) in enumerate(controls_):
        attr = rfc6402.TaggedAttribute()
        attr['bodyPartID'] = 100 + index
        attr['attrType'] = univ.ObjectIdentifier(type_oid)
        attr['attrValues'].append(value)
        response['controlSequence'].append(attr)
    if kw.get('recipient_nonce') is not None:
        attr = rfc6402.TaggedAttribute()
        attr['bodyPartID'] = 200
        attr['attrType'] = univ.ObjectIdentifier('1.3.6.1.5.5.7.7.7')
        attr['attrValues'].append(octets(kw['recipient_nonce']))
        response['controlSequence'].append(attr)
    if kw.get('transaction_id') is not None:
        attr = rfc6402.TaggedAttribute()
        attr['bodyPartID'] = 201
        attr['attrType'] = univ.ObjectIdentifier('1.3.6.1.5.5.7.7.5')
        attr['attrValues'].append(integer(kw['transaction_id']))
        response['controlSequence'].append(attr)
    response['cmsSequence'].clear()
    response['otherMsgSequence'].clear()
    return der_encoder.encode(response)


def signed_response(content, certs=(), signer=None, swap_attrs=False, tamper=None, content_type='1.3.6.1.5.5.7.12.3'):
    """ContentInfo/SignedData around ``content``, hand-built; ``signer`` = (key, cert) signs it (ECDSA/SHA-256)."""
    signer_infos = b''
    digest_algs = b''
    if signer is not None:
        key, cert = signer
        digest_algs = seq(oid(OID_SHA256))
        attr_type = seq(oid('1.2.840.113549.1.9.3'), set_(oid(content_type)))
        attr_digest = seq(oid('1.2.840.113549.1.9.4'), set_(octets(hashlib.sha256(content).digest())))
        attrs = attr_digest + attr_type if swap_attrs else attr_type + attr_digest   # swapped = not DER order
        signature = key.sign(set_(attrs), ec.ECDSA(hashes.SHA256()))
        if tamper == 'signature':
            signature = signature[:-1] + bytes([signature[-1] ^ 1])
        sid = seq(cert.issuer.public_bytes(), integer(cert.serial_number))
        signer_infos = seq(integer(1), sid, seq(oid(OID_SHA256)), tlv(0xA0, attrs), seq(oid(OID_ECDSA_SHA256)), octets(signature))
    if tamper == 'content':
        content = content.replace(b'n' * 16, b'm' + b'n' * 15)   # still a valid PKIResponse, different bytes
    cert_set = tlv(0xA0, b''.join(c.public_bytes(Encoding.DER) for c in certs)) if certs else b''
    signed_data = seq(integer(3), set_(digest_algs), seq(oid(content_type), tlv(0xA0, octets(content))), cert_set,
                      set_(signer_infos))
    return seq(oid('1.2.840.113549.1.7.2'), tlv(0xA0, signed_data))


def test_simple_pki_response(pki):
    result = cmc.parse_pki_response(_pki.pkcs7_der([pki.issued, pki.ca]), sender_nonce=b'n' * 16)
    assert result['status'] == 'success' and result['simple'] is True
    assert result['signed'] is False and result['signature_valid'] is None
    assert result['recipient_nonce_ok'] is None
    assert set(c.subject for c in result['certificates']) == {pki.issued.subject, pki.ca.subject}
    assert result['pending_token'] is None and result['fail_info'] is None and result['body_list'] == []


def test_signed_success_response(pki):
    content = pki_response(status_v2(0, status_string='issued'), recipient_nonce=b'n' * 16, transaction_id=77)
    der = signed_response(content, [pki.issued, pki.ca], (pki.ca_key, pki.ca))
    result = cmc.parse_pki_response(der, request_transaction_id=77, sender_nonce=b'n' * 16)
    assert result['status'] == 'success' and result['status_code'] == 0
    assert result['status_string'] == 'issued'
    assert result['body_list'] == [1]
    assert result['signed'] is True and result['signature_valid'] is True
    assert result['signer_certificates'] == [pki.ca]
    assert result['recipient_nonce_ok'] is True and result['transaction_id_ok'] is True
    assert result['transaction_id'] == 77 and result['recipient_nonce'] == b'n' * 16
    assert len(result['certificates']) == 2
    assert result['simple'] is False


def test_signed_attributes_in_non_der_order_still_verify(pki):
    content = pki_response(status_v2(0))
    result = cmc.parse_pki_response(signed_response(content, [pki.ca], (pki.ca_key, pki.ca), swap_attrs=True))
    assert result['signature_valid'] is True


def test_bad_signature_is_detected(pki):
    content = pki_response(status_v2(0), recipient_nonce=b'n' * 16)
    for tamper in ('signature', 'content'):
        result = cmc.parse_pki_response(signed_response(content, [pki.ca], (pki.ca_key, pki.ca), tamper=tamper))
        assert result['signed'] is True
        assert result['signature_valid'] is False, tamper
    # The signer certificate is missing from the message.
    result = cmc.parse_pki_response(signed_response(content, [pki.issued], (pki.ca_key, pki.ca)))
    assert result['signature_valid'] is False
    # Signed by a key that is not the certificate's.
    result = cmc.parse_pki_response(signed_response(content, [pki.ca], (pki.other_ca_key, pki.ca)))
    assert result['signature_valid'] is False


def test_verify_signer_trust(pki):
    content = pki_response(status_v2(0))
    der = signed_response(content, [pki.ra, pki.ca], (pki.ra_key, pki.ra))
    trusted = cmc.parse_pki_response(der, verify_signer=[pki.ca])
    assert trusted['signature_valid'] is True and trusted['signer_trusted'] is True
    untrusted = cmc.parse_pki_response(der, verify_signer=[pki.other_ca])
    assert untrusted['signer_trusted'] is False and untrusted['signature_valid'] is False
    assert cmc.parse_pki_response(der)['signer_trusted'] is None


def test_failed_with_fail_info(pki):
    content = pki_response(status_v2(2, status_string='no', fail_info=2))
    result = cmc.parse_pki_response(signed_response(content, [pki.ca], (pki.ca_key, pki.ca)))
    assert result['status'] == 'failed' and result['fail_info'] == 'badRequest' and result['status_string'] == 'no'
    assert result['signature_valid'] is True


def test_pending_response(pki):
    content = pki_response(status_v2(3, pend=(b'token-1', '20300101120000Z')))
    result = cmc.parse_pki_response(signed_response(content))
    assert result['status'] == 'pending'
    assert result['pending_token'] == b'token-1'
    assert result['pending_time'].startswith('2030-01-01T12:00:00')
    assert result['signed'] is False and result['signature_valid'] is None


def test_partial_and_worst_status_wins(pki):
    content = pki_response(status_v2(0, body_list=(1,)), status_v2(7, body_list=(2,), path=(3, 4)))
    result = cmc.parse_pki_response(signed_response(content, [pki.issued]))
    assert result['status'] == 'partial' and result['body_list'] == [2, [3, 4]]
    assert [s['status'] for s in result['statuses']] == ['success', 'partial']
    content = pki_response(status_v2(0), status_v2(2, fail_info=9))
    result = cmc.parse_pki_response(signed_response(content))
    assert result['status'] == 'failed' and result['fail_info'] == 'popFailed'


@pytest.mark.parametrize('code, name', [(4, 'no_support'), (5, 'confirm_required'), (6, 'pop_required'), (1, 'failed')])
def test_other_status_codes(code, name):
    result = cmc.parse_pki_response(signed_response(pki_response(status_v2(code))))
    assert result['status'] == name and result['status_code'] == code


def test_legacy_status_info_and_extended_fail_info():
    result = cmc.parse_pki_response(signed_response(pki_response(status_v1(2, fail_info=12))))
    assert result['status'] == 'failed' and result['fail_info'] == 'tryLater' and result['body_list'] == [1]
    result = cmc.parse_pki_response(signed_response(pki_response(status_v2(2, extended='1.2.3.4'))))
    assert result['fail_info'] == '1.2.3.4'


def test_nonce_and_transaction_mismatch():
    content = pki_response(status_v2(0), recipient_nonce=b'x' * 16, transaction_id=5)
    result = cmc.parse_pki_response(signed_response(content), request_transaction_id=6, sender_nonce=b'n' * 16)
    assert result['recipient_nonce_ok'] is False and result['transaction_id_ok'] is False
    result = cmc.parse_pki_response(signed_response(pki_response(status_v2(0))), sender_nonce=b'n' * 16)
    assert result['recipient_nonce_ok'] is False


def test_stored_fixtures(pki):
    pending = cmc.parse_pki_response(fixture('pending_unsigned.der'))
    assert pending['status'] == 'pending' and pending['pending_token'] == b'fixture-token'
    success = cmc.parse_pki_response(fixture('success_signed.der'), sender_nonce=bytes(range(16)))
    assert success['status'] == 'success' and success['signature_valid'] is True
    assert success['recipient_nonce_ok'] is True
    assert len(success['certificates']) == 2


@pytest.mark.parametrize('der', [
    b'', b'garbage', b'\x30\x00',
    seq(oid('1.2.840.113549.1.7.1'), tlv(0xA0, octets(b'x'))),          # not SignedData
    seq(oid('1.2.840.113549.1.7.2'), tlv(0xA0, seq(integer(1)))),       # truncated SignedData
])
def test_garbage_responses(der):
    with pytest.raises(ESTError) as err:
        cmc.parse_pki_response(der)
    assert err.value.kind == 'bad_response'


def test_response_with_wrong_content_type_or_nothing():
    with pytest.raises(ESTError):
        cmc.parse_pki_response(signed_response(b'\x30\x00', content_type='1.3.6.1.5.5.7.12.2'))
    with pytest.raises(ESTError):
        cmc.parse_pki_response(signed_response(pki_response()))      # no status, no certificates
    with pytest.raises(ESTError):
        cmc.parse_pki_response(_pki.pkcs7_in_order([]))               # certs-only without certificates


# ---- property-based: nothing but ESTError escapes ---------------------------------------------

def _valid():
    ca, ca_key = _pki.self_signed('Fuzz CMC CA')
    return [
        signed_response(pki_response(status_v2(3, pend=(b't', '20300101120000Z')), recipient_nonce=b'n'), [ca], (ca_key, ca)),
        signed_response(pki_response(status_v2(2, fail_info=2), status_v1(0))),
        _pki.pkcs7_der([ca]),
    ]


VALID = _valid()


def _check(data):
    try:
        result = cmc.parse_pki_response(data, request_transaction_id=1, sender_nonce=b'n', verify_signer=[])
    except ESTError as exc:
        assert exc.kind == 'bad_response'
        return
    assert result['status'] in cmc.STATUS_NAMES.values()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_esterror(data):
    _check(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), MUTATIONS)
def test_mutated_responses_only_raise_esterror(valid, mutations):
    _check(mutate(valid, mutations))


def test_response_time_is_iso():
    when = datetime.datetime(2031, 5, 6, 7, 8, 9)
    content = pki_response(status_v2(3, pend=(b'x', when.strftime('%Y%m%d%H%M%SZ'))))
    assert cmc.parse_pki_response(signed_response(content))['pending_time'].startswith('2031-05-06T07:08:09')


# ---- who may sign a response, and Query Pending (RFC 6402 2.10, RFC 5272 6.13) ------------------------------

CMC_RA_EKU = x509.ObjectIdentifier('1.3.6.1.5.5.7.3.28')


class _Answer:
    def __init__(self, body):
        import base64
        self.status = 200
        self.body = base64.b64encode(body)
        self.content_type = 'application/pkcs7-mime; smime-type=CMC-response'


def _responder(signer=None, certs=(), status=None, pend=None, record=None):
    """A ``post`` that answers each request with a PKIResponse echoing its transactionId and nonce."""
    def post(der):
        _signed, _content, pki_data = open_request(der)
        found = controls(pki_data)
        if record is not None:
            record.append((pki_data, found))
        txid = int(der_decoder.decode(found['1.3.6.1.5.5.7.7.5'][1], asn1Spec=univ.Integer())[0])
        nonce = der_decoder.decode(found['1.3.6.1.5.5.7.7.6'][1], asn1Spec=univ.OctetString())[0].asOctets()
        content = pki_response(status or status_v2(0), recipient_nonce=nonce, transaction_id=txid)
        if pend is not None:
            content = pki_response(status_v2(3, pend=pend), recipient_nonce=nonce, transaction_id=txid)
        return _Answer(signed_response(content, certs, signer))
    return post


def _exchange(pki, post, trusted, **kw):
    return cmc.exchange_full_pki_request([_pki.der(pki.ec_csr)], pki.ec_key, None, trusted, post, **kw)


def test_signer_found_among_the_ca_certificates_the_client_has(pki):
    post = _responder(signer=(pki.ca_key, pki.ca), certs=[pki.issued])   # the CA certificate is not in the message
    assert _exchange(pki, post, [pki.ca]) == [pki.issued]


def test_signer_must_be_the_ca_or_a_cmc_ra(pki):
    # pki.ra is an ordinary certificate the CA issued: no id-kp-cmcRA.
    post = _responder(signer=(pki.ra_key, pki.ra), certs=[pki.issued, pki.ra])
    with pytest.raises(ESTError) as info:
        _exchange(pki, post, [pki.ca])
    assert info.value.kind == 'verification' and 'id-kp-cmcRA' in info.value.message
    assert _exchange(pki, post, [pki.ca], strict=False) == [pki.issued, pki.ra]
    ra_key = _pki.new_key()
    cmc_ra = _pki.leaf_for(_pki.name('CMC RA'), ra_key.public_key(), pki.ca, pki.ca_key,
                           extensions=[(x509.ExtendedKeyUsage([CMC_RA_EKU]), False),
                                       (x509.BasicConstraints(ca=False, path_length=None), True)],
                           not_before=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1))
    post = _responder(signer=(ra_key, cmc_ra), certs=[pki.issued, cmc_ra])
    assert pki.issued in _exchange(pki, post, [pki.ca])


def test_unsigned_pki_response_is_refused_unless_lenient(pki):
    post = _responder(signer=None, certs=[pki.issued])
    with pytest.raises(ESTError) as info:
        _exchange(pki, post, [pki.ca])
    assert 'not signed' in info.value.message and 'cmc_response_check=lenient' in info.value.message
    assert _exchange(pki, post, [pki.ca], strict=False) == [pki.issued]
    # A certs-only Simple PKI Response needs no signature (RFC 7030 4.3.2).
    assert _exchange(pki, lambda der: _Answer(_pki.pkcs7_der([pki.issued])), [pki.ca]) == [pki.issued]


def test_pending_keeps_the_token_and_queries_with_it(pki):
    from ansible_collections.pki.est.plugins.module_utils.errors import ESTPending
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=90)).strftime('%Y%m%d%H%M%SZ')
    sent = []
    post = _responder(signer=(pki.ca_key, pki.ca), pend=(b'token-42', later), record=sent)
    with pytest.raises(ESTPending) as info:
        _exchange(pki, post, [pki.ca])
    assert info.value.cmc['token'] == b'token-42'
    assert 80 <= info.value.retry_after <= 90
    first_txid = info.value.cmc['transaction_id']
    # The next poll asks about the request (no reqSequence, a queryPending control) in the same transaction.
    post = _responder(signer=(pki.ca_key, pki.ca), certs=[pki.issued], record=sent)
    assert _exchange(pki, post, [pki.ca], query_pending=b'token-42', transaction_id=first_txid) == [pki.issued]
    pki_data, found = sent[-1]
    assert len(pki_data['reqSequence']) == 0
    assert der_decoder.decode(found['1.3.6.1.5.5.7.7.21'][1], asn1Spec=univ.OctetString())[0].asOctets() == b'token-42'
    assert int(der_decoder.decode(found['1.3.6.1.5.5.7.7.5'][1], asn1Spec=univ.Integer())[0]) == first_txid
