# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side key generation responses: RFC 7030 §4.4.2 with the RFC 8951 clarifications."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import univ
from pyasn1_modules import rfc5652, rfc5958

from ansible_collections.pki.est.plugins.module_utils import serverkeygen
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki
from ansible_collections.pki.est.tests.unit.plugins.module_utils._der import read_fixture
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fuzz import MUTATIONS, mutate

BOUNDARY = 'est-boundary-7f3a'
CONTENT_TYPE = 'multipart/mixed; boundary=%s' % BOUNDARY


def fixture(name):
    return read_fixture('serverkeygen', name)


class KeyGenPKI:
    def __init__(self):
        self.ca, self.ca_key = _pki.self_signed('Keygen CA')
        self.ec_key = _pki.new_key()
        self.ec_cert, _k = _pki.issued('ec.example.com', self.ca, self.ca_key, ca=False, key=self.ec_key)
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_cert, _k = _pki.issued('rsa.example.com', self.ca, self.ca_key, ca=False, key=self.rsa_key)
        # The client's key-transport key the server encrypts to (RFC 7030 §4.4.1.2).
        self.client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_cert, _k = _pki.issued('client decrypt key', self.ca, self.ca_key, ca=False, key=self.client_key)


@pytest.fixture(scope='module')
def kg():
    return KeyGenPKI()


def pkcs8(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def traditional(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def b64lines(der, eol=b'\r\n', width=64):
    text = base64.b64encode(der)
    return eol.join(text[i:i + width] for i in range(0, len(text), width))


def part(content_type, payload, eol=b'\r\n', cte='base64'):
    headers = [b'Content-Type: ' + content_type.encode('ascii')]
    if cte:
        headers.append(b'Content-Transfer-Encoding: ' + cte.encode('ascii'))
    return eol.join(headers) + eol + eol + payload


def multipart(parts, eol=b'\r\n', boundary=BOUNDARY):
    delimiter = b'--' + boundary.encode('ascii')
    body = b''
    for item in parts:
        body += delimiter + eol + item + eol
    return body + delimiter + b'--' + eol


def standard_body(key_der, certs, eol=b'\r\n', key_first=True, cte='base64', key_type='application/pkcs8'):
    key_part = part(key_type, b64lines(key_der, eol), eol, cte)
    cert_part = part('application/pkcs7-mime; smime-type=certs-only', b64lines(_pki.pkcs7_der(certs), eol), eol, cte)
    return multipart([key_part, cert_part] if key_first else [cert_part, key_part], eol)


def envelope(data, recipient):
    return (pkcs7.PKCS7EnvelopeBuilder().set_data(data).add_recipient(recipient)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))


def key_package(key):
    one, _rest = der_decoder.decode(pkcs8(key), asn1Spec=rfc5958.OneAsymmetricKey())
    package = rfc5958.AsymmetricKeyPackage()
    package.append(one)
    return der_encoder.encode(package)


def signed_data_around(content, content_type='2.16.840.1.101.2.1.2.78.5'):
    """A SignedData carrying ``content`` (the signature is not what these tests look at)."""
    signed = rfc5652.SignedData()
    signed['version'] = 3
    signed['digestAlgorithms'].clear()
    signed['encapContentInfo']['eContentType'] = univ.ObjectIdentifier(content_type)
    signed['encapContentInfo']['eContent'] = content
    signed['signerInfos'].clear()
    info = rfc5652.ContentInfo()
    info['contentType'] = rfc5652.id_signedData
    info['content'] = der_encoder.encode(signed)
    return der_encoder.encode(info)


def same_key(a, b):
    return pkcs8(a) == pkcs8(b)


# ---- plain keys ------------------------------------------------------------------------------

@pytest.mark.parametrize('eol', [b'\r\n', b'\n'], ids=['CRLF', 'LF'])
@pytest.mark.parametrize('key_first', [True, False], ids=['key-first', 'cert-first'])
@pytest.mark.parametrize('cte', ['base64', None], ids=['with-CTE', 'without-CTE'])
def test_pkcs8_layouts(kg, eol, key_first, cte):
    body = standard_body(pkcs8(kg.ec_key), [kg.ec_cert, kg.ca], eol, key_first, cte)
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)
    assert result['encrypted'] is False
    assert same_key(result['private_key'], kg.ec_key)
    assert len(result['certificates']) == 2
    assert serverkeygen.check_key_matches(result['private_key'], result['certificates']) == kg.ec_cert


@pytest.mark.parametrize('which', ['rsa', 'ec'])
def test_traditional_keys_pkcs1_and_sec1(kg, which):
    key, cert = (kg.rsa_key, kg.rsa_cert) if which == 'rsa' else (kg.ec_key, kg.ec_cert)
    body = standard_body(traditional(key), [cert])
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)
    assert same_key(result['private_key'], key)


def test_raw_der_and_pem_parts(kg):
    key_part = part('application/pkcs8', pkcs8(kg.ec_key), cte='binary')
    pem = kg.ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cert_part = part('application/pkcs7-mime', _pki.pkcs7_pem([kg.ec_cert]), cte=None)
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, multipart([cert_part, key_part]))
    assert same_key(result['private_key'], kg.ec_key)
    pem_part = part('application/pkcs8', pem, cte=None)
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, multipart([pem_part, cert_part]))
    assert same_key(result['private_key'], kg.ec_key)


def test_media_types_compared_on_type_and_subtype(kg):
    key_part = part('Application/PKCS8; name="key.p8"', b64lines(pkcs8(kg.ec_key)))
    cert_part = part('application/x-pkcs7-mime; smime-type="certs-only"; name=cert.p7c', b64lines(_pki.pkcs7_der([kg.ec_cert])))
    content_type = 'Multipart/Mixed; BOUNDARY="%s"; charset=utf-8' % BOUNDARY
    result = serverkeygen.parse_serverkeygen_response(content_type, multipart([key_part, cert_part]))
    assert same_key(result['private_key'], kg.ec_key)


def test_parts_without_content_type_are_recognised_by_content(kg):
    key_part = b'\r\n' + b64lines(pkcs8(kg.ec_key))
    cert_part = part('application/octet-stream', b64lines(_pki.pkcs7_der([kg.ec_cert])))
    preamble = b'This is a multipart message.\r\n'
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, preamble + multipart([key_part, cert_part]))
    assert same_key(result['private_key'], kg.ec_key)


def test_stored_fixture_body():
    content_type = fixture('multipart_crlf_pkcs8.content-type').decode('ascii').strip()
    result = serverkeygen.parse_serverkeygen_response(content_type, fixture('multipart_crlf_pkcs8.bin'))
    cert = serverkeygen.check_key_matches(result['private_key'], result['certificates'])
    assert 'CN=serverkeygen.example.com' in cert.subject.rfc4514_string()
    lf = fixture('multipart_lf_cert_first.bin')
    assert b'\r\n' not in lf
    result_lf = serverkeygen.parse_serverkeygen_response(content_type, lf)
    assert same_key(result_lf['private_key'], result['private_key'])


# ---- encrypted keys --------------------------------------------------------------------------

@pytest.mark.parametrize('wrapping', ['pkcs8', 'key_package', 'signed_key_package', 'signed_pkcs8'])
def test_encrypted_key(kg, wrapping):
    content = {
        'pkcs8': lambda: pkcs8(kg.rsa_key),
        'key_package': lambda: key_package(kg.rsa_key),
        'signed_key_package': lambda: signed_data_around(key_package(kg.rsa_key)),
        'signed_pkcs8': lambda: signed_data_around(pkcs8(kg.rsa_key), '1.2.840.113549.1.7.1'),
    }[wrapping]()
    enveloped = envelope(content, kg.client_cert)
    key_part = part('application/pkcs7-mime; smime-type=server-generated-key', b64lines(enveloped))
    cert_part = part('application/pkcs7-mime; smime-type=certs-only', b64lines(_pki.pkcs7_der([kg.rsa_cert])))
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, multipart([cert_part, key_part]),
                                                      decrypt_key=(kg.client_cert, kg.client_key))
    assert result['encrypted'] is True
    assert same_key(result['private_key'], kg.rsa_key)
    assert serverkeygen.check_key_matches(result['private_key'], result['certificates']) == kg.rsa_cert


def test_encrypted_key_recognised_without_smime_type(kg):
    enveloped = envelope(pkcs8(kg.ec_key), kg.client_cert)
    key_part = part('application/pkcs7-mime', b64lines(enveloped, b'\n'), b'\n')
    cert_part = part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert]), b'\n'), b'\n')
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, multipart([key_part, cert_part], b'\n'),
                                                      decrypt_key=(kg.client_cert, kg.client_key))
    assert same_key(result['private_key'], kg.ec_key)


def test_encrypted_key_without_decrypt_key(kg):
    enveloped = envelope(pkcs8(kg.ec_key), kg.client_cert)
    body = multipart([part('application/pkcs7-mime; smime-type=server-generated-key', b64lines(enveloped)),
                      part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert])))])
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)
    assert err.value.kind == 'invalid_input'
    assert 'decrypt_key' in str(err.value)
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body, decrypt_key=(kg.client_cert, kg.ec_key))
    assert err.value.kind == 'invalid_input'
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body, decrypt_key=kg.client_key)
    assert err.value.kind == 'invalid_input'


def test_encrypted_key_with_wrong_decrypt_key(kg):
    enveloped = envelope(pkcs8(kg.ec_key), kg.client_cert)
    body = multipart([part('application/pkcs7-mime; smime-type=server-generated-key', b64lines(enveloped)),
                      part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert])))])
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body, decrypt_key=(kg.rsa_cert, kg.rsa_key))
    assert err.value.kind == 'bad_response'


def test_encrypted_content_that_is_no_key(kg):
    enveloped = envelope(b'\x30\x03\x02\x01\x00', kg.client_cert)
    body = multipart([part('application/pkcs7-mime; smime-type=server-generated-key', b64lines(enveloped)),
                      part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert])))])
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body, decrypt_key=(kg.client_cert, kg.client_key))
    assert err.value.kind == 'bad_response'


# ---- broken responses ------------------------------------------------------------------------

def test_missing_key_part(kg):
    body = multipart([part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert])))])
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)
    assert err.value.kind == 'bad_response' and 'private key part' in str(err.value)


def test_missing_cert_part(kg):
    body = multipart([part('application/pkcs8', b64lines(pkcs8(kg.ec_key)))])
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)
    assert err.value.kind == 'bad_response' and 'certificate part' in str(err.value)


def test_duplicate_key_part(kg):
    key_part = part('application/pkcs8', b64lines(pkcs8(kg.ec_key)))
    body = multipart([key_part, key_part, part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert])))])
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)
    assert 'more than one' in str(err.value)


def test_missing_boundary(kg):
    body = standard_body(pkcs8(kg.ec_key), [kg.ec_cert])
    for content_type in ('multipart/mixed', 'multipart/mixed; boundary=other'):
        with pytest.raises(ESTError) as err:
            serverkeygen.parse_serverkeygen_response(content_type, body)
        assert err.value.kind == 'bad_response'


def test_wrong_media_type(kg):
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response('application/pkcs7-mime', standard_body(pkcs8(kg.ec_key), [kg.ec_cert]))
    assert err.value.kind == 'unexpected_content_type'


def test_undecodable_key(kg):
    body = multipart([part('application/pkcs8', b64lines(b'\x30\x03\x02\x01\x00')),
                      part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert])))])
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)
    assert err.value.kind == 'bad_response'
    body = multipart([part('application/pkcs8', b'!!! not base64 !!!'),
                      part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([kg.ec_cert])))])
    with pytest.raises(ESTError):
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body)


def test_password_encrypted_pkcs8_is_refused(kg):
    encrypted = kg.ec_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(b'secret'))
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, standard_body(encrypted, [kg.ec_cert]))
    assert 'password' in str(err.value)


def test_key_not_matching_certificate(kg):
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, standard_body(pkcs8(kg.ec_key), [kg.rsa_cert, kg.ca]))
    with pytest.raises(ESTError) as err:
        serverkeygen.check_key_matches(result['private_key'], result['certificates'])
    assert err.value.kind == 'verification'


def test_empty_body():
    with pytest.raises(ESTError) as err:
        serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, b'')
    assert err.value.kind == 'bad_response'


# ---- attributes for the CSR builder ---------------------------------------------------------

def test_asymmetric_decrypt_key_id_attribute():
    der = serverkeygen.asymmetric_decrypt_key_id_attribute(b'\x01\x02\x03')
    assert der.hex() == '3014060b2a864886f70d010910023631050403010203'
    attr, rest = der_decoder.decode(der, asn1Spec=rfc5652.Attribute())
    assert not rest
    assert str(attr['attrType']) == '1.2.840.113549.1.9.16.2.54'
    value, _rest = der_decoder.decode(bytes(attr['attrValues'][0]), asn1Spec=univ.OctetString())
    assert value.asOctets() == b'\x01\x02\x03'
    with pytest.raises(ESTError):
        serverkeygen.asymmetric_decrypt_key_id_attribute(b'')


def test_smime_capabilities_attribute():
    der = serverkeygen.smime_capabilities_attribute()
    attr, _rest = der_decoder.decode(der, asn1Spec=rfc5652.Attribute())
    assert str(attr['attrType']) == '1.2.840.113549.1.9.15'
    assert b'\x06\x09\x60\x86\x48\x01\x65\x03\x04\x01\x2a' in der  # aes256-CBC
    with pytest.raises(ESTError):
        serverkeygen.smime_capabilities_attribute(['not an oid'])


# ---- property-based: nothing but ESTError escapes ---------------------------------------------

def _valid_bodies():
    ca, ca_key = _pki.self_signed('Fuzz CA')
    key = _pki.new_key()
    cert, _k = _pki.issued('fuzz.example.com', ca, ca_key, ca=False, key=key)
    return [standard_body(pkcs8(key), [cert]), standard_body(traditional(key), [cert], b'\n', False, None),
            multipart([part('application/pkcs8', pkcs8(key), cte='binary'),
                       part('application/pkcs7-mime', _pki.pkcs7_der([cert]), cte=None)])]


VALID = _valid_bodies()


def _check(content_type, body):
    try:
        result = serverkeygen.parse_serverkeygen_response(content_type, body)
    except ESTError:
        return
    assert result['private_key'] is not None and result['certificates']


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([CONTENT_TYPE, 'multipart/mixed', 'multipart/mixed; boundary=""', 'text/plain']))
def test_random_bytes_only_raise_esterror(body, content_type):
    _check(content_type, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), MUTATIONS)
def test_mutated_bodies_only_raise_esterror(valid, mutations):
    _check(CONTENT_TYPE, mutate(valid, mutations))
