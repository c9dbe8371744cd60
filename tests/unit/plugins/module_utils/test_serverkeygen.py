# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side key generation responses: RFC 7030 §4.4.2 with the RFC 8951 clarifications."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import univ
from pyasn1_modules import rfc2986, rfc5083, rfc5084, rfc5652, rfc5958

from ansible_collections.pki.est.plugins.module_utils import serverkeygen
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki
from ansible_collections.pki.est.tests.unit.plugins.module_utils._der import read_fixture, tlv
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


# ---- encrypted keys recorded from the OpenSSL CLI (tests/unit/fixtures/make_serverkeygen_enveloped.py) ----

OID_AUTH_ENVELOPED = '1.2.840.113549.1.9.16.1.23'
OID_RSA = '1.2.840.113549.1.1.1'
OID_OAEP = '1.2.840.113549.1.1.7'

# file -> (CMS content type, rid form, key transport, content encryption): what each recorded answer holds.
OPENSSL_ENVELOPES = {
    'enveloped_keyid_aes256_cbc.der': ('1.2.840.113549.1.7.3', 'subjectKeyIdentifier', OID_RSA, '2.16.840.1.101.3.4.1.42'),
    'enveloped_keyid_aes128_cbc.der': ('1.2.840.113549.1.7.3', 'subjectKeyIdentifier', OID_RSA, '2.16.840.1.101.3.4.1.2'),
    'enveloped_keyid_aes256_gcm.der': (OID_AUTH_ENVELOPED, 'subjectKeyIdentifier', OID_RSA, '2.16.840.1.101.3.4.1.46'),
    'enveloped_issuer_aes256_cbc.der': ('1.2.840.113549.1.7.3', 'issuerAndSerialNumber', OID_RSA, '2.16.840.1.101.3.4.1.42'),
    'enveloped_issuer_aes128_gcm.der': (OID_AUTH_ENVELOPED, 'issuerAndSerialNumber', OID_RSA, '2.16.840.1.101.3.4.1.6'),
    'enveloped_keyid_aes256_cbc_oaep.der': ('1.2.840.113549.1.7.3', 'subjectKeyIdentifier', OID_OAEP, '2.16.840.1.101.3.4.1.42'),
    'enveloped_keyid_aes192_cbc_oaep_sha256.der': ('1.2.840.113549.1.7.3', 'subjectKeyIdentifier', OID_OAEP,
                                                   '2.16.840.1.101.3.4.1.22'),
    'enveloped_issuer_aes256_cbc_oaep_sha384_label.der': ('1.2.840.113549.1.7.3', 'issuerAndSerialNumber', OID_OAEP,
                                                          '2.16.840.1.101.3.4.1.42'),
}


@pytest.fixture(scope='module')
def recipient():
    """The recorded client key-transport certificate and key every ``enveloped_*.der`` is encrypted to."""
    cert = x509.load_pem_x509_certificate(fixture('enveloped_recipient.crt'))
    key = serialization.load_pem_private_key(fixture('enveloped_recipient.key'), password=None)
    return cert, key


def recorded_plaintext():
    return serialization.load_der_private_key(fixture('enveloped_plaintext.p8'), password=None)


def open_envelope(der):
    """``(ContentInfo, EnvelopedData or AuthEnvelopedData)`` of a recorded answer."""
    info, rest = der_decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
    assert not rest
    spec = rfc5083.AuthEnvelopedData() if str(info['contentType']) == OID_AUTH_ENVELOPED else rfc5652.EnvelopedData()
    envelope, rest = der_decoder.decode(bytes(info['content']), asn1Spec=spec)
    assert not rest
    return info, envelope


def encrypted_info(envelope):
    return envelope['authEncryptedContentInfo' if 'mac' in envelope else 'encryptedContentInfo']


def rewrite(der, change):
    """``der`` with ``change(envelope)`` applied to its (Auth)EnvelopedData, DER-encoded again."""
    info, envelope = open_envelope(der)
    change(envelope)
    info['content'] = der_encoder.encode(envelope)
    return der_encoder.encode(info)


def set_rid_key_id(key_id):
    def change(envelope):
        envelope['recipientInfos'][0]['ktri']['rid']['subjectKeyIdentifier'] = key_id
    return change


def content_key(der, recipient_key):
    """The content-encryption key of a recorded PKCS#1 v1.5 answer, unwrapped here (not by the module)."""
    _info, envelope = open_envelope(der)
    return recipient_key.decrypt(envelope['recipientInfos'][0]['ktri']['encryptedKey'].asOctets(), padding.PKCS1v15())


def encrypted_answer(enveloped, smime_type=True):
    key_type = 'application/pkcs7-mime; smime-type=server-generated-key' if smime_type else 'application/pkcs7-mime'
    cert = x509.load_pem_x509_certificate(fixture('enveloped_recipient.crt'))
    return multipart([part(key_type, b64lines(enveloped)), part('application/pkcs7-mime', b64lines(_pki.pkcs7_der([cert])))])


def decrypt_recorded(der, decrypt_key):
    return serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, encrypted_answer(der), decrypt_key=decrypt_key)


def decrypt_error(der, decrypt_key):
    with pytest.raises(ESTError) as err:
        decrypt_recorded(der, decrypt_key)
    return err.value


@pytest.mark.parametrize('name', sorted(OPENSSL_ENVELOPES))
def test_openssl_envelopes(recipient, name):
    der = fixture(name)
    info, envelope = open_envelope(der)
    ktri = envelope['recipientInfos'][0]['ktri']
    # The recorded file holds what its name says, so each case tests what it claims to.
    assert (str(info['contentType']), ktri['rid'].getName(), str(ktri['keyEncryptionAlgorithm']['algorithm']),
            str(encrypted_info(envelope)['contentEncryptionAlgorithm']['algorithm'])) == OPENSSL_ENVELOPES[name]
    result = decrypt_recorded(der, recipient)
    assert result['encrypted'] is True
    assert same_key(result['private_key'], recorded_plaintext())


def test_ski_recipient_is_the_key_id_the_client_sends(recipient):
    """The rid of an ``openssl cms -keyid`` answer is the id-aa-asymmDecryptKeyID that ask_for_encrypted_key puts in the CSR."""
    cert, _key = recipient
    signer = _pki.new_key()
    csr = serverkeygen.ask_for_encrypted_key(_pki.der(_pki.make_csr(signer)), signer, cert)
    request, _rest = der_decoder.decode(csr, asn1Spec=rfc2986.CertificationRequest())
    sent = [attr for attr in request['certificationRequestInfo']['attributes']
            if str(attr['type']) == serverkeygen.OID_ASYMM_DECRYPT_KEY_ID]
    assert len(sent) == 1
    key_id, _rest = der_decoder.decode(bytes(sent[0]['values'][0]), asn1Spec=univ.OctetString())
    _info, envelope = open_envelope(fixture('enveloped_keyid_aes256_cbc.der'))
    assert envelope['recipientInfos'][0]['ktri']['rid']['subjectKeyIdentifier'].asOctets() == key_id.asOctets()


def _recipient_variant(recipient, ski=None):
    """Another certificate for the recorded recipient key: without a SubjectKeyIdentifier, or with ``ski`` as its value."""
    cert, key = recipient
    builder = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(cert.not_valid_before_utc)
               .not_valid_after(cert.not_valid_after_utc))
    if ski is not None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    return builder.sign(key, hashes.SHA256()), key


@pytest.mark.parametrize('ski, rid', [
    (None, 'method1'),            # no extension: the client sends (and the server echoes) the SHA-1 of the key
    (b'\x01\x02\x03\x04\x05\x06\x07\x08', 'extension'),   # a CA-chosen identifier: the client sends the extension
    (b'\x01\x02\x03\x04\x05\x06\x07\x08', 'method1'),     # a server that derived the identifier from the key itself
], ids=['no-extension', 'custom-extension', 'custom-extension-server-hashed'])
def test_ski_recipient_matching(recipient, ski, rid):
    decrypt_key = _recipient_variant(recipient, ski)
    method1 = x509.SubjectKeyIdentifier.from_public_key(decrypt_key[1].public_key()).digest
    key_id = ski if rid == 'extension' else method1
    der = rewrite(fixture('enveloped_keyid_aes256_gcm.der'), set_rid_key_id(key_id))
    assert same_key(decrypt_recorded(der, decrypt_key)['private_key'], recorded_plaintext())
    other = rewrite(fixture('enveloped_keyid_aes256_gcm.der'), set_rid_key_id(b'\xaa' * 20))
    err = decrypt_error(other, decrypt_key)
    assert err.kind == 'bad_response' and 'no recipient' in str(err) and 'aa' * 20 in str(err)


def test_issuer_and_serial_must_match_exactly(recipient):
    cert, key = recipient

    def other_serial(envelope):
        ias = envelope['recipientInfos'][0]['ktri']['rid']['issuerAndSerialNumber']
        ias['serialNumber'] = int(ias['serialNumber']) + 1
    err = decrypt_error(rewrite(fixture('enveloped_issuer_aes256_cbc.der'), other_serial), recipient)
    assert err.kind == 'bad_response' and 'no recipient' in str(err) and 'issuerAndSerialNumber' in str(err)
    # Same serial, same key, another issuer name: not ours either.
    renamed = (x509.CertificateBuilder().subject_name(_pki.name('Someone else')).issuer_name(_pki.name('Someone else'))
               .public_key(key.public_key()).serial_number(cert.serial_number).not_valid_before(cert.not_valid_before_utc)
               .not_valid_after(cert.not_valid_after_utc).sign(key, hashes.SHA256()))
    err = decrypt_error(fixture('enveloped_issuer_aes256_cbc.der'), (renamed, key))
    assert 'no recipient' in str(err)


@pytest.mark.parametrize('name', ['enveloped_keyid_aes256_gcm.der', 'enveloped_issuer_aes128_gcm.der'])
def test_auth_enveloped_data_recognised_without_smime_type(recipient, name):
    result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, encrypted_answer(fixture(name), smime_type=False),
                                                      decrypt_key=recipient)
    assert result['encrypted'] is True and same_key(result['private_key'], recorded_plaintext())


@pytest.mark.parametrize('icv_length', [16, 12])
def test_gcm_with_authenticated_attributes(recipient, icv_length):
    """RFC 5083 §2.2: the DER of authAttrs, tagged as a SET OF, is the additional authenticated data."""
    der = fixture('enveloped_keyid_aes256_gcm.der')
    cek = content_key(der, recipient[1])
    attribute = tlv(0x30, tlv(0x06, bytes.fromhex('2a864886f70d010903')) + tlv(0x31, tlv(0x06, bytes.fromhex('2a864886f70d010701'))))
    aad = tlv(0x31, attribute)  # written by hand: SET OF { contentType = id-data }
    nonce = b'\x07' * 12
    sealed = AESGCM(cek).encrypt(nonce, fixture('enveloped_plaintext.p8'), aad)
    ciphertext, tag = sealed[:-16], sealed[-16:][:icv_length]  # a shorter ICV is the tag's leading bytes

    def with_attributes(envelope):
        content = envelope['authEncryptedContentInfo']
        params = rfc5084.GCMParameters()
        params['aes-nonce'] = nonce
        params['aes-ICVlen'] = icv_length
        content['contentEncryptionAlgorithm']['parameters'] = der_encoder.encode(params)
        content['encryptedContent'] = ciphertext
        envelope['mac'] = tag
        attrs = envelope.setComponentByName('authAttrs').getComponentByName('authAttrs')
        attrs.append(der_decoder.decode(attribute, asn1Spec=rfc5652.Attribute())[0])

    signed = rewrite(der, with_attributes)
    assert same_key(decrypt_recorded(signed, recipient)['private_key'], recorded_plaintext())

    def without_attributes(envelope):
        with_attributes(envelope)
        envelope['authAttrs'] = rfc5083.AuthEnvelopedData()['authAttrs']  # dropped: the tag no longer verifies
    stripped = rewrite(der, without_attributes)
    _info, envelope = open_envelope(stripped)
    assert not envelope['authAttrs'].isValue
    err = decrypt_error(stripped, recipient)
    assert err.kind == 'bad_response' and 'authentication tag' in str(err)


# ---- encrypted keys: failures -----------------------------------------------------------------

def test_wrong_recipient_key(kg, recipient):
    for name in ('enveloped_keyid_aes256_cbc.der', 'enveloped_issuer_aes256_cbc.der', 'enveloped_keyid_aes256_gcm.der'):
        err = decrypt_error(fixture(name), (kg.client_cert, kg.client_key))
        assert err.kind == 'bad_response'
        assert 'no recipient for our decrypt certificate' in str(err)
        assert 'client decrypt key' in str(err)  # names our certificate
    err = decrypt_error(fixture('enveloped_keyid_aes256_cbc.der'), (recipient[0], kg.client_key))
    assert err.kind == 'invalid_input' and 'not the private key of the certificate' in str(err)


def test_addressed_to_us_but_encrypted_key_does_not_unwrap(recipient):
    def corrupt_encrypted_key(envelope):
        ktri = envelope['recipientInfos'][0]['ktri']
        wrapped = bytearray(ktri['encryptedKey'].asOctets())
        wrapped[len(wrapped) // 2] ^= 0x5a
        ktri['encryptedKey'] = bytes(wrapped)
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_cbc_oaep.der'), corrupt_encrypted_key), recipient)
    assert err.kind == 'bad_response' and 'could not be unwrapped' in str(err) and 'AES-256-CBC' in str(err)
    # PKCS#1 v1.5: OpenSSL's implicit rejection hands back random bytes, then the length or the padding is wrong.
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_cbc.der'), corrupt_encrypted_key), recipient)
    assert err.kind == 'bad_response' and ('could not be unwrapped' in str(err) or 'padding' in str(err))


def test_unsupported_content_encryption(recipient):
    err = decrypt_error(fixture('enveloped_keyid_des3_cbc.der'), recipient)
    assert err.kind == 'bad_response'
    assert 'DES-EDE3-CBC (1.2.840.113549.3.7)' in str(err) and 'does not support' in str(err)

    def unknown_oid(envelope):
        encrypted_info(envelope)['contentEncryptionAlgorithm']['algorithm'] = univ.ObjectIdentifier('1.2.3.4.5.6')
    for name in ('enveloped_keyid_aes256_cbc.der', 'enveloped_keyid_aes256_gcm.der'):
        err = decrypt_error(rewrite(fixture(name), unknown_oid), recipient)
        assert err.kind == 'bad_response' and 'content-encryption algorithm 1.2.3.4.5.6' in str(err)


def test_cipher_must_fit_the_envelope(recipient):
    def gcm_in_enveloped_data(envelope):
        algorithm = envelope['encryptedContentInfo']['contentEncryptionAlgorithm']
        algorithm['algorithm'] = univ.ObjectIdentifier('2.16.840.1.101.3.4.1.46')
        params = rfc5084.GCMParameters()
        params['aes-nonce'] = b'\x00' * 12
        algorithm['parameters'] = der_encoder.encode(params)
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_cbc.der'), gcm_in_enveloped_data), recipient)
    assert err.kind == 'bad_response' and 'AES-256-GCM' in str(err) and 'AuthEnvelopedData' in str(err)

    def cbc_in_auth_enveloped_data(envelope):
        algorithm = envelope['authEncryptedContentInfo']['contentEncryptionAlgorithm']
        algorithm['algorithm'] = univ.ObjectIdentifier('2.16.840.1.101.3.4.1.42')
        algorithm['parameters'] = der_encoder.encode(univ.OctetString(b'\x00' * 16))
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_gcm.der'), cbc_in_auth_enveloped_data), recipient)
    assert err.kind == 'bad_response' and 'AES-256-CBC' in str(err) and 'not an authenticated cipher' in str(err)


def test_unsupported_key_transport(recipient):
    def pss(envelope):
        envelope['recipientInfos'][0]['ktri']['keyEncryptionAlgorithm']['algorithm'] = univ.ObjectIdentifier('1.2.840.113549.1.1.10')
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_cbc.der'), pss), recipient)
    assert err.kind == 'bad_response' and 'key-encryption algorithm 1.2.840.113549.1.1.10' in str(err)


@pytest.mark.parametrize('name', ['enveloped_keyid_aes256_gcm.der', 'enveloped_issuer_aes128_gcm.der'])
@pytest.mark.parametrize('where', ['tag', 'ciphertext'])
def test_tampered_gcm(recipient, name, where):
    def tamper(envelope):
        if where == 'tag':
            mac = bytearray(envelope['mac'].asOctets())
            mac[0] ^= 0x01
            envelope['mac'] = bytes(mac)
        else:
            content = envelope['authEncryptedContentInfo']
            data = bytearray(content['encryptedContent'].asOctets())
            data[-1] ^= 0x80
            content['encryptedContent'] = bytes(data)
    err = decrypt_error(rewrite(fixture(name), tamper), recipient)
    assert err.kind == 'bad_response' and 'authentication tag' in str(err) and 'does not verify' in str(err)


def test_truncated_gcm_tag(recipient):
    def truncate(envelope):
        envelope['mac'] = envelope['mac'].asOctets()[:12]  # the parameters still say 16
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_gcm.der'), truncate), recipient)
    assert err.kind == 'bad_response' and 'authentication tag has 12 bytes, the parameters say 16' in str(err)


def test_bad_cbc_padding(recipient):
    plaintext_length = len(fixture('enveloped_plaintext.p8'))
    pad = 16 - plaintext_length % 16

    def break_padding(envelope):
        content = envelope['encryptedContentInfo']
        data = bytearray(content['encryptedContent'].asOctets())
        data[-17] ^= pad  # CBC: the last plaintext byte becomes pad ^ pad = 0, never valid padding
        content['encryptedContent'] = bytes(data)
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes128_cbc.der'), break_padding), recipient)
    assert err.kind == 'bad_response' and 'AES-128-CBC' in str(err) and 'bad PKCS#7 padding' in str(err)

    def not_whole_blocks(envelope):
        content = envelope['encryptedContentInfo']
        content['encryptedContent'] = content['encryptedContent'].asOctets()[:-1]
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes128_cbc.der'), not_whole_blocks), recipient)
    assert err.kind == 'bad_response' and 'not a whole number of 16-byte blocks' in str(err)


def test_malformed_envelopes(recipient):
    def no_content(envelope):
        encrypted_info(envelope)['encryptedContent'] = rfc5652.EncryptedContentInfo()['encryptedContent']
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_cbc.der'), no_content), recipient)
    assert 'no encryptedContent' in str(err)

    def bad_iv(envelope):
        envelope['encryptedContentInfo']['contentEncryptionAlgorithm']['parameters'] = der_encoder.encode(univ.OctetString(b'\x00' * 8))
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_cbc.der'), bad_iv), recipient)
    assert 'IV of the encrypted key has 8 bytes' in str(err)

    def no_iv(envelope):
        envelope['encryptedContentInfo']['contentEncryptionAlgorithm']['parameters'] = der_encoder.encode(univ.Null(''))
    err = decrypt_error(rewrite(fixture('enveloped_keyid_aes256_cbc.der'), no_iv), recipient)
    assert 'AES-256-CBC parameters of the encrypted key are malformed' in str(err)
    only_signed = signed_data_around(b'\x04\x00')
    err = decrypt_error(only_signed, recipient)
    assert err.kind == 'bad_response' and 'expected a CMS EnvelopedData or AuthEnvelopedData' in str(err)


def test_error_messages_carry_no_key_material(kg, recipient):
    """Neither the content-encryption key nor the plaintext key shows up in any failure message."""
    der = fixture('enveloped_keyid_aes256_gcm.der')
    secrets = [content_key(der, recipient[1]).hex(), fixture('enveloped_plaintext.p8').hex()[-64:]]

    def tamper(envelope):
        envelope['mac'] = b'\x00' * 16
    for bad, decrypt_key in ((rewrite(der, tamper), recipient), (der, (kg.client_cert, kg.client_key))):
        message = str(decrypt_error(bad, decrypt_key)).lower()
        assert not any(secret in message for secret in secrets)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(['enveloped_keyid_aes256_cbc.der', 'enveloped_keyid_aes256_gcm.der',
                        'enveloped_issuer_aes256_cbc_oaep_sha384_label.der']), MUTATIONS)
def test_mutated_envelopes_only_raise_esterror(recipient, name, mutations):
    body = encrypted_answer(mutate(fixture(name), mutations))
    try:
        result = serverkeygen.parse_serverkeygen_response(CONTENT_TYPE, body, decrypt_key=recipient)
    except ESTError:
        return
    assert result['private_key'] is not None


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
