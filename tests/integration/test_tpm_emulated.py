# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulated TPM fixture (tests/support/tpm.py): swtpm + tpm2-abrmd + tpm2-pkcs11 through python-pkcs11."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import subprocess
import sys

import pytest

pkcs11 = pytest.importorskip('pkcs11')

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed  # noqa: E402
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass  # noqa: E402
from pkcs11.constants import DEFAULT  # noqa: E402
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature, encode_named_curve_parameters  # noqa: E402

from support.tpm import emulated_tpm, tpm_token_session  # noqa: E402,F401  pylint: disable=unused-import

DATA = b'pki.est emulated TPM smoke test'

# tpm2-pkcs11 refuses (CKR_GENERAL_ERROR, "User specified and TPM specified attr mismatch") templates
# that set ENCRYPT/DECRYPT/WRAP/UNWRAP/VERIFY differently from what the TPM object gets: leave them
# to the library (DEFAULT drops the attribute from python-pkcs11's template).
PRIVATE_TEMPLATE = {
    Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True, Attribute.DECRYPT: DEFAULT, Attribute.UNWRAP: DEFAULT, Attribute.DERIVE: DEFAULT,
}
PUBLIC_TEMPLATE = {Attribute.TOKEN: True, Attribute.VERIFY: True, Attribute.ENCRYPT: DEFAULT, Attribute.WRAP: DEFAULT}


def _mechanism_names(token):
    return sorted(m.name if isinstance(m, Mechanism) else hex(m) for m in token.slot.get_mechanisms())


def _assert_private_value_refused(private):
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    attribute = Attribute.VALUE if private.key_type is KeyType.EC else Attribute.PRIVATE_EXPONENT
    with pytest.raises((pkcs11.exceptions.AttributeSensitive, pkcs11.exceptions.AttributeTypeInvalid)):
        private[attribute]  # pylint: disable=pointless-statement


def test_token_found_and_mechanisms(tpm_token_session):
    tpm = tpm_token_session
    assert tpm.timings['total'] < 30, tpm.timings
    with tpm.pkcs11() as lib:
        token = lib.get_token(token_label=tpm.token_label)
        names = _mechanism_names(token)
        print('tpm2-pkcs11 on swtpm: %s\nstart timings: %s' % (' '.join(names), tpm.timings))
        for needed in ('EC_KEY_PAIR_GEN', 'ECDSA', 'ECDSA_SHA256', 'RSA_PKCS_KEY_PAIR_GEN', 'SHA256_RSA_PKCS'):
            assert needed in names
        with token.open(user_pin=tpm.pin):
            pass
        for _attempt in range(4):  # more than the TPM's own limit of 3: the fixture raised it
            with pytest.raises(pkcs11.exceptions.PinIncorrect):
                with token.open(user_pin='wrong-pin'):
                    pass
        with token.open(user_pin=tpm.pin):
            pass


@pytest.mark.parametrize('mechanism', ['ECDSA', 'ECDSA_SHA256'])
def test_ec_p256_sign(tpm_token_session, mechanism):
    tpm = tpm_token_session
    label = 'ec-' + mechanism.lower()
    with tpm.pkcs11() as lib:
        token = lib.get_token(token_label=tpm.token_label)
        with token.open(rw=True, user_pin=tpm.pin) as session:
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters('secp256r1')}, local=True)
            public, private = params.generate_keypair(store=True, label=label, id=label.encode(),
                                                      public_template=PUBLIC_TEMPLATE, private_template=PRIVATE_TEMPLATE)
            _assert_private_value_refused(private)
            assert private[Attribute.TOKEN] is True and private[Attribute.PRIVATE] is True
            if mechanism == 'ECDSA':  # hash in software, raw ECDSA on the token
                raw = private.sign(hashlib.sha256(DATA).digest(), mechanism=Mechanism.ECDSA)
            else:
                raw = private.sign(DATA, mechanism=Mechanism.ECDSA_SHA256)
            assert len(raw) == 64  # r || s
            verifier = serialization.load_der_public_key(encode_ec_public_key(public))
            assert isinstance(verifier, ec.EllipticCurvePublicKey) and verifier.curve.name == 'secp256r1'
            signature = encode_ecdsa_signature(raw)
            verifier.verify(signature, DATA, ec.ECDSA(hashes.SHA256()))
            verifier.verify(signature, hashlib.sha256(DATA).digest(), ec.ECDSA(Prehashed(hashes.SHA256())))
            with pytest.raises(InvalidSignature):
                verifier.verify(signature, DATA + b'x', ec.ECDSA(hashes.SHA256()))
        # stored on the token: a new session (and tpm2_ptool, another process) finds it
        with token.open(user_pin=tpm.pin) as session:
            again = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            assert again[Attribute.ID] == label.encode()
    listed = tpm.ptool('listobjects', '--label=%s' % tpm.token_label).stdout
    assert label in listed


def test_rsa_2048_sign(tpm_token_session):
    tpm = tpm_token_session
    with tpm.pkcs11() as lib:
        token = lib.get_token(token_label=tpm.token_label)
        with token.open(rw=True, user_pin=tpm.pin) as session:
            public, private = session.generate_keypair(
                KeyType.RSA, 2048, store=True, label='rsa-2048',
                public_template=PUBLIC_TEMPLATE, private_template=PRIVATE_TEMPLATE)
            _assert_private_value_refused(private)
            signature = private.sign(DATA, mechanism=Mechanism.SHA256_RSA_PKCS)
            numbers = rsa.RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], 'big'),
                                           int.from_bytes(public[Attribute.MODULUS], 'big'))
            verifier = numbers.public_key()
            assert verifier.key_size == 2048
            verifier.verify(signature, DATA, padding.PKCS1v15(), hashes.SHA256())


CHILD = r'''
import hashlib, json, sys
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.constants import DEFAULT
from pkcs11.util.ec import encode_named_curve_parameters
module, label, pin = sys.argv[1:4]
lib = pkcs11.lib(module)
token = lib.get_token(token_label=label)
with token.open(rw=True, user_pin=pin) as session:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters('secp256r1')}, local=True)
    public, private = params.generate_keypair(
        store=True, label='from-child',
        public_template={Attribute.VERIFY: True, Attribute.ENCRYPT: DEFAULT, Attribute.WRAP: DEFAULT},
        private_template={Attribute.SIGN: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                          Attribute.DECRYPT: DEFAULT, Attribute.UNWRAP: DEFAULT, Attribute.DERIVE: DEFAULT})
    raw = private.sign(hashlib.sha256(b'child').digest(), mechanism=Mechanism.ECDSA)
print(json.dumps({'signature_len': len(raw)}))
'''


def test_env_is_enough_for_another_process(tpm_token_session):
    """What a module process gets: a bare environment plus ``tpm.env`` (through full_env)."""
    tpm = tpm_token_session
    env = tpm.full_env(base={'PATH': os.environ.get('PATH', '/usr/bin:/bin')})
    proc = subprocess.run([sys.executable, '-c', CHILD, tpm.module_path, tpm.token_label, tpm.pin], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {'signature_len': 64}
    assert proc.stderr == ''  # TSS2_LOG quiets tpm2-tss on a normal run
    with tpm.pkcs11() as lib:
        with lib.get_token(token_label=tpm.token_label).open(user_pin=tpm.pin) as session:
            session.get_key(object_class=ObjectClass.PRIVATE_KEY, label='from-child')


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().split(') ', 1)[1][0] != 'Z'
    except OSError:
        return False


def test_start_stop_leaves_nothing(tmp_path):
    with emulated_tpm(tmp_path, token_label='second', pin='9876', so_pin='so-9876', da_max_tries=None) as tpm:
        pids = [proc.pid for proc in tpm._procs.values()]  # pylint: disable=protected-access
        bus_dir = tpm._dbus_dir  # pylint: disable=protected-access
        assert len(pids) == 3 and all(_alive(pid) for pid in pids)
        assert set(tpm.env) >= {'TPM2_PKCS11_STORE', 'TPM2_PKCS11_TCTI', 'DBUS_SESSION_BUS_ADDRESS', 'TSS2_LOG'}
        # a second TPM in the same process: C_Finalize/C_Initialize picks up the new store and bus
        with tpm.pkcs11() as lib:
            assert [t.label for t in lib.get_tokens(token_label='second')] == ['second']
            assert not list(lib.get_tokens(token_label='pki-est-tpm'))
            # the TPM's own dictionary-attack limit: after 3 wrong PINs the TPM is locked, right PIN too
            token = lib.get_token(token_label='second')
            for expected in (pkcs11.exceptions.PinIncorrect,) * 3 + (pkcs11.exceptions.PinLocked,):
                with pytest.raises(expected):
                    with token.open(user_pin='0000'):
                        pass
            with pytest.raises(pkcs11.exceptions.PinLocked):
                with token.open(user_pin='9876'):
                    pass
            tpm.clear_lockout()
            with token.open(user_pin='9876'):
                pass
    assert not any(_alive(pid) for pid in pids)
    assert not os.path.exists(bus_dir)
    assert not tpm.running
