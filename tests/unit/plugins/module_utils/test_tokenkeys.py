# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Token keys: RFC 7512 URIs and TokenRef (no token needed), then the engine against a SoftHSM2 token."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ansible_collections.pki.est.plugins.module_utils import tokenkeys
from ansible_collections.pki.est.plugins.module_utils.cmc import sign_raw
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.support.softhsm import softhsm_available, softhsm_token

PIN = '1234-user'


def _kind(excinfo):
    return excinfo.value.kind


# ---------------------------------------------------------------------------------------------
# parse_uri

def test_parse_uri_rfc7512_example():
    uri = ('pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;'
           'model=1.0;serial=0123;slot-id=7;object=my-certificate;type=private;id=%01%02%FF'
           '?pin-source=file:/etc/token&module-path=/usr/lib/libp11.so&pin-value=1%263')
    assert tokenkeys.parse_uri(uri) == {
        'token': 'The Software PKCS#11 Softtoken', 'manufacturer': 'Snake Oil, Inc.', 'model': '1.0', 'serial': '0123',
        'slot-id': 7, 'object': 'my-certificate', 'type': 'private', 'id': b'\x01\x02\xff',
        'pin-source': 'file:/etc/token', 'module-path': '/usr/lib/libp11.so', 'pin-value': '1&3',
    }


@pytest.mark.parametrize('uri, expected', [
    ('pkcs11:', {}),
    ('PKCS11:object=a', {'object': 'a'}),
    ('pkcs11:object=%E2%82%AC;x-vendor=whatever;library-version=1?x-q=1', {'object': u'\u20ac', 'library-version': '1'}),
    ('pkcs11:id=;object=', {'id': b'', 'object': ''}),
    ('pkcs11:object=a;', {'object': 'a'}),
])
def test_parse_uri_forms(uri, expected):
    assert tokenkeys.parse_uri(uri) == expected


@pytest.mark.parametrize('uri', [
    'file:/etc/key.pem', 'object=a', 'pkcs11', 'pkcs11:object', 'pkcs11:object=a;object=b', 'pkcs11:object=%4',
    'pkcs11:object=%zz', 'pkcs11:slot-id=abc', 'pkcs11:type=everything', 'pkcs11:object=a#frag', 'pkcs11:=x',
    'pkcs11:object=%FF', 'pkcs11:x-ok=%G1', 'pkcs11:?pin-value=1&pin-value=2',
])
def test_parse_uri_rejects(uri):
    with pytest.raises(ESTError) as excinfo:
        tokenkeys.parse_uri(uri)
    assert _kind(excinfo) == 'invalid_input'


def test_parse_uri_not_text():
    with pytest.raises(ESTError):
        tokenkeys.parse_uri(b'pkcs11:')


# ---------------------------------------------------------------------------------------------
# TokenRef

def test_token_ref_from_uri_and_params(monkeypatch):
    monkeypatch.delenv(tokenkeys.PIN_ENV, raising=False)
    ref = tokenkeys.TokenRef.from_params(uri='pkcs11:token=dev;object=k;id=%0a%0b?module-path=/lib/p11.so',
                                         pin='secret', slot='3')
    assert (ref.module_path, ref.token_label, ref.slot, ref.pin, ref.label, ref.key_id) == \
        ('/lib/p11.so', 'dev', 3, 'secret', 'k', b'\n\x0b')
    same = tokenkeys.TokenRef.from_params(uri='pkcs11:token=dev;id=%0a%0b', token_label='dev', key_id='0A:0B')
    assert same.key_id == b'\n\x0b' and same.pin is None


@pytest.mark.parametrize('params', [
    dict(uri='pkcs11:token=a', token_label='b'),
    dict(uri='pkcs11:object=a', label='b'),
    dict(uri='pkcs11:id=%01', key_id='02'),
    dict(uri='pkcs11:slot-id=1', slot=2),
    dict(uri='pkcs11:?module-path=/a.so', pkcs11_module='/b.so'),
    dict(uri='pkcs11:type=cert'),
    dict(key_id='xyz'),
    dict(key_id='abc'),
    dict(slot='first'),
])
def test_token_ref_conflicts(params):
    with pytest.raises(ESTError) as excinfo:
        tokenkeys.TokenRef.from_params(**params)
    assert _kind(excinfo) == 'invalid_input'


def test_token_ref_pin_conflict_hides_pins():
    with pytest.raises(ESTError) as excinfo:
        tokenkeys.TokenRef.from_params(uri='pkcs11:?pin-value=first-pin', pin='second-pin')
    assert 'first-pin' not in excinfo.value.message and 'second-pin' not in excinfo.value.message


def test_token_ref_pin_sources(tmp_path, monkeypatch):
    monkeypatch.setenv(tokenkeys.PIN_ENV, 'from-env')
    pin_file = tmp_path / 'pin'
    pin_file.write_text('from-file\n')
    assert tokenkeys.TokenRef.from_params(uri='pkcs11:?pin-source=file:%s' % pin_file).pin == 'from-file'
    assert tokenkeys.TokenRef.from_params(uri='pkcs11:?pin-source=file://%s' % pin_file).pin == 'from-file'
    assert tokenkeys.TokenRef.from_params(uri='pkcs11:?pin-source=%s' % pin_file).pin == 'from-file'
    assert tokenkeys.TokenRef.from_params(uri='pkcs11:?pin-source=%s' % pin_file, pin='explicit').pin == 'explicit'
    assert tokenkeys.TokenRef.from_params(uri='pkcs11:?pin-value=in-uri').pin == 'in-uri'
    assert tokenkeys.TokenRef.from_params(uri='pkcs11:token=t').pin == 'from-env'
    with pytest.raises(ESTError) as excinfo:
        tokenkeys.TokenRef.from_params(uri='pkcs11:?pin-source=%s' % (tmp_path / 'missing'))
    assert _kind(excinfo) == 'invalid_input'
    monkeypatch.delenv(tokenkeys.PIN_ENV)
    assert tokenkeys.TokenRef.from_params(token_label='t').pin is None


def test_token_ref_repr_hides_pin():
    ref = tokenkeys.TokenRef.from_params(pkcs11_module='/x.so', token_label='t', pin='do-not-show', key_id=b'\x01')
    assert 'do-not-show' not in repr(ref) and 'do-not-show' not in str(ref)
    assert 'pin=set' in repr(ref) and "'01'" in repr(ref)


def test_token_key_uri_round_trip():
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    key = tokenkeys.TokenKey(u'my key;with=odd/chars\u20ac', b'\x00\xab', 'ec-p256', public_key, None)
    uri = key.uri('tok en')
    assert uri.startswith('pkcs11:token=tok%20en;object=my%20key%3Bwith%3Dodd%2Fchars%E2%82%AC;id=%00%AB;type=private')
    parsed = tokenkeys.parse_uri(uri)
    assert (parsed['token'], parsed['object'], parsed['id'], parsed['type']) == ('tok en', key.label, b'\x00\xab', 'private')
    assert key.public_pem().startswith('-----BEGIN PUBLIC KEY-----')
    assert key.facts()['key_id'] == '00ab'


# ---------------------------------------------------------------------------------------------
# Libraries (no token needed)

def test_missing_library():
    pytest.importorskip('pkcs11')
    ref = tokenkeys.TokenRef(module_path='/nonexistent/libp11.so', token_label='t', pin='x')
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(ref):
            pass
    assert _kind(excinfo) == 'token_library' and '/nonexistent/libp11.so' in excinfo.value.message


def test_not_a_pkcs11_library(tmp_path):
    pytest.importorskip('pkcs11')
    fake = tmp_path / 'libfake.so'
    fake.write_bytes(b'\x7fELF not really')
    ref = tokenkeys.TokenRef(module_path=str(fake), token_label='t', pin='x')
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(ref):
            pass
    assert _kind(excinfo) == 'token_library' and 'Traceback' not in excinfo.value.message


@pytest.mark.skipif(not os.path.exists('/usr/lib/x86_64-linux-gnu/libz.so.1'), reason='no libz.so.1 at the Debian amd64 path')
def test_a_shared_library_that_is_not_pkcs11():
    pytest.importorskip('pkcs11')
    ref = tokenkeys.TokenRef(module_path='/usr/lib/x86_64-linux-gnu/libz.so.1', token_label='t', pin='x')
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(ref):
            pass
    assert _kind(excinfo) == 'token_library' and 'C_GetFunctionList' in excinfo.value.message


def test_no_library_named():
    pytest.importorskip('pkcs11')
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(tokenkeys.TokenRef(token_label='t', pin='x')):
            pass
    assert _kind(excinfo) == 'invalid_input'


# ---------------------------------------------------------------------------------------------
# Against SoftHSM2

needs_softhsm = pytest.mark.skipif(not softhsm_available(), reason='softhsm2 is not installed (make test installs it)')


@pytest.fixture(scope='module')
def token(tmp_path_factory):
    pytest.importorskip('pkcs11')
    if not softhsm_available():
        pytest.skip('softhsm2 is not installed (make test installs it)')
    with pytest.MonkeyPatch.context() as patch:
        with softhsm_token(tmp_path_factory.mktemp('softhsm'), pin=PIN) as hsm:
            for name, value in hsm.env.items():
                patch.setenv(name, value)
            patch.delenv(tokenkeys.PIN_ENV, raising=False)
            hsm.init_token('second-token', PIN, hsm.so_pin)
            yield hsm


def _ref(hsm, **changes):
    values = dict(pkcs11_module=hsm.module_path, token_label=hsm.label, pin=hsm.pin)
    values.update(changes)
    return tokenkeys.TokenRef.from_params(**values)


def _verify(public_key, signature, data):
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


@needs_softhsm
@pytest.mark.parametrize('algorithm, cls, size', [
    ('ec-p256', ec.EllipticCurvePublicKey, 256),
    ('ec-p384', ec.EllipticCurvePublicKey, 384),
    ('rsa-2048', rsa.RSAPublicKey, 2048),
])
def test_generate_find_sign(token, algorithm, cls, size):
    label = 'key-' + algorithm
    with tokenkeys.session(_ref(token), rw=True) as session:
        made = tokenkeys.generate_key(session, label, None, algorithm)
        assert made.algorithm == algorithm and len(made.key_id) == 16
        assert isinstance(made.public_key, cls) and made.public_key.key_size == size
    with tokenkeys.session(_ref(token)) as session:
        found = tokenkeys.find_key(session, label=label)
        assert found.key_id == made.key_id and found.public_pem() == made.public_pem()
        assert tokenkeys.find_key(session, key_id=made.key_id.hex()).label == label
        assert tokenkeys.find_key(session, label=label, key_id=b'\x00') is None
        assert tokenkeys.check_not_extractable(session, found) is True
        assert found.private[tokenkeys._pkcs11().Attribute.SENSITIVE] is True
        data = b'to be signed ' * 50
        raw = tokenkeys.signer(found)(data)
        _oid, signature = sign_raw(data, tokenkeys.signer(found), found.public_key)
        _verify(found.public_key, signature, data)
        if algorithm.startswith('ec'):
            assert len(raw) == 2 * ((size + 7) // 8)
        uri = tokenkeys.parse_uri(found.uri(token.label))
        assert (uri['token'], uri['object'], uri['id']) == (token.label, label, made.key_id)


@needs_softhsm
def test_rsa_signer_falls_back_to_digest_info(token):
    pkcs11 = tokenkeys._pkcs11()

    class NoCombined:
        """A private key whose token lacks CKM_SHA256_RSA_PKCS."""

        def __init__(self, inner):
            self.inner = inner
            self.mechanisms = []

        def sign(self, data, mechanism=None):
            self.mechanisms.append(mechanism)
            if mechanism == pkcs11.Mechanism.SHA256_RSA_PKCS:
                raise pkcs11.MechanismInvalid()
            return self.inner.sign(data, mechanism=mechanism)

    with tokenkeys.session(_ref(token), rw=True) as session:
        key = tokenkeys.generate_key(session, 'rsa-fallback', 'c0ffee', 'rsa-2048')
        assert key.key_id == b'\xc0\xff\xee'
        key.private = NoCombined(key.private)
        sign = tokenkeys.signer(key)
        for data in (b'one', b'two'):
            _verify(key.public_key, sign(data), data)
        assert key.private.mechanisms == [pkcs11.Mechanism.SHA256_RSA_PKCS, pkcs11.Mechanism.RSA_PKCS,
                                          pkcs11.Mechanism.RSA_PKCS]


@needs_softhsm
def test_generate_conflicts(token):
    with tokenkeys.session(_ref(token), rw=True) as session:
        key = tokenkeys.generate_key(session, 'taken', None, 'ec-p256')
        for label, key_id in (('taken', None), ('free-label', key.key_id)):
            with pytest.raises(ESTError) as excinfo:
                tokenkeys.generate_key(session, label, key_id, 'ec-p256')
            assert _kind(excinfo) == 'key_conflict'
        with pytest.raises(ESTError) as excinfo:
            tokenkeys.generate_key(session, 'x', None, 'ec-p521')
        assert _kind(excinfo) == 'invalid_input'


@needs_softhsm
def test_read_only_session_cannot_generate(token):
    with tokenkeys.session(_ref(token)) as session:
        with pytest.raises(ESTError) as excinfo:
            tokenkeys.generate_key(session, 'ro', None, 'ec-p256')
    assert _kind(excinfo) == 'key_store'


@needs_softhsm
def test_relabel_and_destroy(token):
    with tokenkeys.session(_ref(token), rw=True) as session:
        old = tokenkeys.generate_key(session, 'device', None, 'ec-p256')
        new = tokenkeys.generate_key(session, 'device.pending', None, 'ec-p256')
        with pytest.raises(ESTError) as excinfo:
            tokenkeys.relabel_key(session, new, 'device')
        assert _kind(excinfo) == 'key_conflict'
        tokenkeys.relabel_key(session, old, 'device.old')
        tokenkeys.relabel_key(session, new, 'device')
        assert new.label == 'device'
        found = tokenkeys.find_key(session, label='device')
        assert found.key_id == new.key_id and found.public_pem() == new.public_pem()
        assert found.public[tokenkeys._pkcs11().Attribute.LABEL] == 'device'
        assert tokenkeys.find_key(session, label='device.pending') is None
        tokenkeys.destroy_key(session, old)
        assert tokenkeys.find_key(session, label='device.old') is None
        assert not list(session.get_objects({tokenkeys._pkcs11().Attribute.ID: old.key_id}))


@needs_softhsm
def test_private_key_without_public_object(token):
    pkcs11 = tokenkeys._pkcs11()
    with tokenkeys.session(_ref(token), rw=True) as session:
        key = tokenkeys.generate_key(session, 'lonely', None, 'ec-p256')
        key.public.destroy()
        with pytest.raises(ESTError) as excinfo:
            tokenkeys.find_key(session, label='lonely')
        assert _kind(excinfo) == 'key_store'
        key.private.destroy()
        with pytest.raises(ESTError) as excinfo:
            tokenkeys.find_key(session)
        assert _kind(excinfo) == 'invalid_input'
        assert pkcs11 is not None


@needs_softhsm
def test_select_by_slot_and_two_sessions(token):
    tokens = tokenkeys.list_tokens(token.module_path)
    ours = [item for item in tokens if item['label'] == token.label][0]
    assert ours['initialized'] and ours['model']
    ref = _ref(token, token_label=None, slot=ours['slot'])
    with tokenkeys.session(ref) as first:
        with tokenkeys.session(_ref(token)) as second:
            assert first.token.label == second.token.label == token.label
    with tokenkeys.session(_ref(token, token_label='second-token')) as other:
        assert other.token.label == 'second-token'


@needs_softhsm
def test_wrong_pin(token):
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(_ref(token, pin='9999-wrong')):
            pass
    assert _kind(excinfo) == 'token_login' and '9999-wrong' not in excinfo.value.message
    assert token.label in excinfo.value.message


@needs_softhsm
def test_no_pin(token):
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(tokenkeys.TokenRef(module_path=token.module_path, token_label=token.label)):
            pass
    assert _kind(excinfo) == 'token_login' and tokenkeys.PIN_ENV in excinfo.value.message


@needs_softhsm
def test_missing_token_lists_the_others(token):
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(_ref(token, token_label='no-such-token')):
            pass
    assert _kind(excinfo) == 'token_not_found'
    assert "'no-such-token'" in excinfo.value.message and "'%s'" % token.label in excinfo.value.message
    assert "'second-token'" in excinfo.value.message
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(_ref(token, token_label=None, slot=987654)):
            pass
    assert _kind(excinfo) == 'token_not_found'
    with pytest.raises(ESTError) as excinfo:
        with tokenkeys.session(_ref(token, token_label=None)):
            pass
    assert _kind(excinfo) == 'invalid_input'


@needs_softhsm
def test_token_created_after_the_library_was_loaded(token):
    token.init_token('late-token', PIN, token.so_pin)
    with tokenkeys.session(_ref(token, token_label='late-token')) as session:
        assert session.token.label == 'late-token'
    assert os.environ['SOFTHSM2_CONF'] == token.conf
