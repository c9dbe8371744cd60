# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Software private keys: generation per key type, loading in every common encoding, matching."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ansible_collections.pki.est.plugins.module_utils import keys
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL  # PKCS#1 for RSA, SEC1 for EC
NO_ENCRYPTION = serialization.NoEncryption()


@pytest.fixture(scope='module')
def sample_keys():
    return {
        'ec': ec.generate_private_key(ec.SECP256R1()),
        'rsa': rsa.generate_private_key(public_exponent=65537, key_size=2048),
        'ed25519': ed25519.Ed25519PrivateKey.generate(),
    }


def _private_der(key):
    return key.private_bytes(DER, PKCS8, NO_ENCRYPTION)


@pytest.mark.parametrize('key_type, cls, size, curve', [
    ('ec-p256', ec.EllipticCurvePrivateKey, 256, 'secp256r1'),
    ('ec-p384', ec.EllipticCurvePrivateKey, 384, 'secp384r1'),
    ('ec-p521', ec.EllipticCurvePrivateKey, 521, 'secp521r1'),
    ('rsa-2048', rsa.RSAPrivateKey, 2048, None),
    ('rsa-3072', rsa.RSAPrivateKey, 3072, None),
    ('rsa-4096', rsa.RSAPrivateKey, 4096, None),
    ('ed25519', ed25519.Ed25519PrivateKey, None, None),
])
def test_generate_every_key_type(key_type, cls, size, curve):
    key = keys.generate_private_key(key_type)
    assert isinstance(key, cls)
    if curve is not None:
        assert key.curve.name == curve
        assert key.curve.key_size == size
    elif size is not None:
        assert key.key_size == size
        assert key.private_numbers().public_numbers.e == 65537
    assert keys.key_type_of(key) == key_type
    assert keys.key_type_of(key.public_key()) == key_type


def test_key_types_table_is_covered():
    assert set(keys.KEY_TYPES) == {'ec-p256', 'ec-p384', 'ec-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519'}
    assert keys.DEFAULT_KEY_TYPE == 'ec-p256'
    assert keys.key_type_of(keys.generate_private_key()) == 'ec-p256'


@pytest.mark.parametrize('key_type', ['rsa-1024', 'rsa-9000', 'ec-p192', 'ec-nocurve', 'ed447', '', 'EC-P256'])
def test_generate_unknown_key_type(key_type):
    with pytest.raises(ESTError) as info:
        keys.generate_private_key(key_type)
    assert info.value.kind == 'invalid_input'
    assert repr(key_type) in info.value.message


def test_key_type_of_unlisted_curve_and_unknown_object():
    assert keys.key_type_of(ec.generate_private_key(ec.SECP256K1())) == 'ec-secp256k1'
    assert keys.key_type_of(rsa.generate_private_key(public_exponent=65537, key_size=1024)) == 'rsa-1024'
    assert keys.key_type_of(object()) == 'object'


@pytest.mark.parametrize('kind', ['ec', 'rsa', 'ed25519'])
@pytest.mark.parametrize('encoding', [PEM, DER])
def test_load_pkcs8(sample_keys, kind, encoding):
    key = sample_keys[kind]
    loaded = keys.load_private_key(key.private_bytes(encoding, PKCS8, NO_ENCRYPTION))
    assert _private_der(loaded) == _private_der(key)


@pytest.mark.parametrize('kind, marker', [('ec', b'-----BEGIN EC PRIVATE KEY-----'), ('rsa', b'-----BEGIN RSA PRIVATE KEY-----')])
@pytest.mark.parametrize('encoding', [PEM, DER])
def test_load_pkcs1_and_sec1(sample_keys, kind, marker, encoding):
    key = sample_keys[kind]
    data = key.private_bytes(encoding, TRADITIONAL, NO_ENCRYPTION)
    assert (marker in data) == (encoding == PEM)
    assert _private_der(keys.load_private_key(data)) == _private_der(key)


def test_load_pem_with_surrounding_text(sample_keys):
    data = b'# written by hand\n' + sample_keys['ec'].private_bytes(PEM, PKCS8, NO_ENCRYPTION) + b'\n\n'
    assert _private_der(keys.load_private_key(data)) == _private_der(sample_keys['ec'])


@pytest.mark.parametrize('encoding', [PEM, DER])
def test_encrypted_key_without_passphrase(sample_keys, encoding):
    data = sample_keys['ec'].private_bytes(encoding, PKCS8, serialization.BestAvailableEncryption(b'secret'))
    with pytest.raises(ESTError) as info:
        keys.load_private_key(data, source='the private key /etc/pki/device.key')
    assert info.value.kind == 'key_store'
    assert '/etc/pki/device.key' in info.value.message
    # With the passphrase the same bytes load.
    assert _private_der(keys.load_private_key(data, passphrase='secret')) == _private_der(sample_keys['ec'])
    assert _private_der(keys.load_private_key(data, passphrase=b'secret')) == _private_der(sample_keys['ec'])


def test_passphrase_for_unencrypted_key(sample_keys):
    with pytest.raises(ESTError) as info:
        keys.load_private_key(sample_keys['ec'].private_bytes(PEM, PKCS8, NO_ENCRYPTION), passphrase='secret')
    assert info.value.kind == 'key_store'


def _pieces(data, width=12):
    """Every ``width``-byte window of the base64 (or hex) text of ``data``."""
    text = data.decode('ascii', 'replace') if b'-----BEGIN' in data else base64.b64encode(data).decode('ascii')
    text = ''.join(line for line in text.splitlines() if not line.startswith('-----'))
    return [text[i:i + width] for i in range(0, len(text) - width, width)]


@pytest.mark.parametrize('mangle', ['truncated_pem', 'flipped_pem', 'truncated_der', 'random', 'empty', 'certificate'])
def test_garbage_is_key_store_without_key_material(sample_keys, pki, mangle):
    key = sample_keys['rsa']
    pem = key.private_bytes(PEM, TRADITIONAL, NO_ENCRYPTION)
    der = key.private_bytes(DER, TRADITIONAL, NO_ENCRYPTION)
    data = {
        'truncated_pem': pem[:len(pem) // 2] + b'\n-----END RSA PRIVATE KEY-----\n',
        'flipped_pem': pem.replace(pem[200:210], b'AAAAAAAAAA'),
        'truncated_der': der[:-40],
        'random': b'\x8f\x00\x11not a key at all\xff' * 3,
        'empty': b'',
        'certificate': _pki.der(pki.root),
    }[mangle]
    with pytest.raises(ESTError) as info:
        keys.load_private_key(data, source='the private key k.pem')
    message = info.value.message
    assert info.value.kind == 'key_store'
    assert message.startswith('cannot read the private key k.pem: ')
    assert 'PRIVATE KEY' not in message
    for piece in _pieces(pem) + _pieces(der):
        assert piece not in message
    assert hex(key.private_numbers().d)[2:14] not in message
    assert len(message) < 160


def test_keys_match(sample_keys, pki):
    assert keys.keys_match(pki.leaf_key, pki.leaf) is True
    assert keys.keys_match(pki.other_key, pki.leaf) is False
    assert keys.keys_match(pki.other_key, pki.other_leaf) is True
    # Same curve, another key; and another algorithm altogether.
    assert keys.keys_match(sample_keys['ec'], pki.leaf) is False
    assert keys.keys_match(sample_keys['ed25519'], pki.leaf) is False


def test_private_key_pem_is_unencrypted_pkcs8(sample_keys):
    for key in sample_keys.values():
        pem = keys.private_key_pem(key)
        assert pem.startswith(b'-----BEGIN PRIVATE KEY-----\n')
        assert _private_der(keys.load_private_key(pem)) == _private_der(key)


@pytest.mark.parametrize('kind, preferred, expected', [
    ('ec', None, 'sha256'),
    ('ec384', None, 'sha384'),
    ('ec521', None, 'sha512'),
    ('rsa', None, 'sha256'),
    ('rsa', 'sha512', 'sha512'),
    ('ec', 'sha384', 'sha384'),
])
def test_signature_hash(sample_keys, kind, preferred, expected):
    key = {'ec384': lambda: ec.generate_private_key(ec.SECP384R1()),
           'ec521': lambda: ec.generate_private_key(ec.SECP521R1())}.get(kind, lambda: sample_keys[kind])()
    algorithm = keys.signature_hash(key, preferred)
    assert isinstance(algorithm, hashes.HashAlgorithm)
    assert algorithm.name == expected


def test_signature_hash_ed25519_is_none(sample_keys):
    assert keys.signature_hash(sample_keys['ed25519']) is None
    assert keys.signature_hash(sample_keys['ed25519'], 'sha256') is None


# -- what a CA may demand in /csrattrs (RFC 7030 4.5.2) -------------------------------------------------------

@pytest.mark.parametrize('demand, expected', [
    ({'key_type': 'rsa'}, 'rsa-2048'),                          # a bare rsaEncryption
    ({'key_type': 'rsa', 'key_size': 4096}, 'rsa-4096'),
    ({'key_type': 'ec'}, 'ec-p256'),                            # a bare id-ecPublicKey
    ({'key_type': 'ec', 'curve': 'secp384r1'}, 'ec-p384'),
    ({'key_type': 'ec', 'curve': '1.3.132.0.35'}, 'ec-p521'),
    ({'key_type': 'ec', 'curve': '1.3.36.3.3.2.8.1.1.7'}, 'ec-brainpoolP256r1'),
    ({'key_type': 'ed25519'}, 'ed25519'),
    ({'key_type': 'ed448'}, 'ed448'),
    ({}, None),
])
def test_demands_that_can_be_met(demand, expected):
    key_type, problem = keys.key_type_for_demand(demand)
    assert (key_type, problem) == (expected, None)
    if expected:
        assert keys.key_type_of(keys.generate_private_key(expected)) == expected


@pytest.mark.parametrize('demand, words', [
    ({'key_type': 'ec', 'curve': '1.2.3.4'}, 'curve 1.2.3.4'),
    ({'key_type': 'rsa', 'key_size': 1024}, '1024 bits'),
    ({'key_type': 'dsa'}, 'dsa key'),
])
def test_demands_that_cannot(demand, words):
    key_type, problem = keys.key_type_for_demand(demand)
    assert key_type is None and words in problem
