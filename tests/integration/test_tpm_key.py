# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pki.est.tpm_key through ansible-playbook against a SoftHSM2 token in the test's directory."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os

import pytest

from support.softhsm import softhsm_available, softhsm_token

PIN = '4321-user-pin'

pytestmark = pytest.mark.skipif(not softhsm_available(), reason='softhsm2 is not installed (make test installs it)')


@pytest.fixture
def hsm(tmp_path, monkeypatch):
    pytest.importorskip('pkcs11')
    with softhsm_token(tmp_path / 'softhsm', label='device', pin=PIN) as token:
        # The runner passes this process's environment to ansible-playbook and so to the module.
        for name, value in token.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv('PKI_EST_PKCS11_PIN', raising=False)
        yield token


def _args(hsm, **extra):
    args = dict(pkcs11_module=hsm.module_path, token_label=hsm.label, pin=hsm.pin, label='device-key')
    args.update(extra)
    return args


def _token_objects(hsm):
    """The object files of SoftHSM2's file backend (one per key object)."""
    return sorted(path for path in glob.glob(os.path.join(hsm.tokendir, '*', '*.object'))
                  if os.path.basename(path) != 'token.object')


def _public_key(pem):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    return load_pem_public_key(pem.encode('ascii'))


def _assert_clean_failure(out, run, kind, secrets=(PIN,)):
    assert out.get('failed') and out['error_kind'] == kind, out
    assert not out.get('changed'), out
    assert 'Traceback' not in run.output and 'Traceback' not in out.get('exception', ''), run.output
    for secret in secrets:
        assert secret not in run.output, run.output


def test_lifecycle(runner, hsm):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    created, run = runner.call('pki.est.tpm_key', _args(hsm), diff=True)
    assert created['changed'] and not created.get('failed'), created
    assert created['algorithm'] == 'ec-p256' and created['label'] == 'device-key' and created['token_label'] == 'device'
    assert created['extractable'] is False and len(created['key_id']) == 32
    assert created['uri'] == 'pkcs11:token=device;object=device-key;id=%s;type=private' % ''.join(
        '%' + created['key_id'][i:i + 2].upper() for i in range(0, 32, 2))
    assert isinstance(_public_key(created['public_key']), ec.EllipticCurvePublicKey)
    assert 'public_key: -----BEGIN PUBLIC KEY-----' in run.stdout and PIN not in run.output
    assert len(_token_objects(hsm)) == 2  # the private and the public key object

    again = runner.call('pki.est.tpm_key', _args(hsm))[0]
    assert not again['changed'], again
    assert (again['key_id'], again['public_key'], again['uri']) == (created['key_id'], created['public_key'], created['uri'])

    # Check mode: an existing key is unchanged; a new one would be made, and is not.
    assert not runner.call('pki.est.tpm_key', _args(hsm), check=True)[0]['changed']
    would, run = runner.call('pki.est.tpm_key', _args(hsm, label='other-key', key_id='0a:0b'), check=True, diff=True)
    assert would['changed'] and would['key_id'] == '0a0b' and 'public_key' not in would, would
    assert 'label: other-key' in run.stdout and len(_token_objects(hsm)) == 2
    assert runner.call('pki.est.tpm_key', _args(hsm, label='other-key', state='absent'))[0]['changed'] is False

    # The label is taken by another algorithm: an error, nothing changed; force replaces the key.
    out, run = runner.call('pki.est.tpm_key', _args(hsm, algorithm='rsa-2048'))
    _assert_clean_failure(out, run, 'key_conflict')
    assert 'ec-p256' in out['msg'] and 'force' in out['msg']
    assert runner.call('pki.est.tpm_key', _args(hsm))[0]['public_key'] == created['public_key']
    assert runner.call('pki.est.tpm_key', _args(hsm, algorithm='rsa-2048', force=True), check=True)[0]['changed']
    replaced = runner.call('pki.est.tpm_key', _args(hsm, algorithm='rsa-2048', force=True))[0]
    assert replaced['changed'] and replaced['algorithm'] == 'rsa-2048', replaced
    assert replaced['key_id'] != created['key_id']
    assert isinstance(_public_key(replaced['public_key']), rsa.RSAPublicKey)

    # The same key named by its URI (id only), the PIN from the environment.
    by_uri = runner.call('pki.est.tpm_key', dict(uri='pkcs11:token=device;id=%s?module-path=%s' % (
        ''.join('%' + replaced['key_id'][i:i + 2] for i in range(0, 32, 2)), hsm.module_path),
        algorithm='rsa-2048', pin=PIN))[0]
    assert not by_uri['changed'] and by_uri['label'] == 'device-key' and by_uri['public_key'] == replaced['public_key']

    assert runner.call('pki.est.tpm_key', _args(hsm, state='absent'), check=True)[0]['changed']
    removed, run = runner.call('pki.est.tpm_key', _args(hsm, state='absent'), diff=True)
    assert removed['changed'] and 'label: device-key' in run.stdout, removed
    assert _token_objects(hsm) == []
    assert runner.call('pki.est.tpm_key', _args(hsm, state='absent'))[0]['changed'] is False
    assert runner.call('pki.est.tpm_key', _args(hsm), check=True)[0]['changed']


def test_pin_from_file_and_environment(runner, hsm, tmp_path, monkeypatch):
    pin_file = tmp_path / 'pin'
    pin_file.write_text(PIN + '\n')
    uri = 'pkcs11:token=device;object=file-key?module-path=%s&pin-source=file:%s' % (hsm.module_path, pin_file)
    made = runner.call('pki.est.tpm_key', dict(uri=uri, algorithm='ec-p384'))[0]
    assert made['changed'] and made['algorithm'] == 'ec-p384', made
    monkeypatch.setenv('PKI_EST_PKCS11_PIN', PIN)
    again = runner.call('pki.est.tpm_key', dict(pkcs11_module=hsm.module_path, token_label='device', label='file-key',
                                                algorithm='ec-p384'))[0]
    assert not again['changed'] and again['public_key'] == made['public_key'], again


@pytest.mark.parametrize('case, kind', [
    ('wrong_pin', 'token_login'),
    ('wrong_pin_from_env', 'token_login'),
    ('no_pin', 'token_login'),
    ('missing_token', 'token_not_found'),
    ('missing_library', 'token_library'),
    ('not_a_library', 'token_library'),
    ('uri_conflict', 'invalid_input'),
])
def test_failures_are_clean(runner, hsm, tmp_path, monkeypatch, case, kind):
    wrong = '0000-wrong-pin'
    args = _args(hsm)
    if case == 'wrong_pin':
        args['pin'] = wrong
    elif case == 'wrong_pin_from_env':
        del args['pin']
        monkeypatch.setenv('PKI_EST_PKCS11_PIN', wrong)
    elif case == 'no_pin':
        del args['pin']
    elif case == 'missing_token':
        args['token_label'] = 'no-such-token'
    elif case == 'missing_library':
        args['pkcs11_module'] = str(tmp_path / 'nowhere' / 'libp11.so')
    elif case == 'not_a_library':
        fake = tmp_path / 'libfake.so'
        fake.write_bytes(b'not a shared object')
        args['pkcs11_module'] = str(fake)
    elif case == 'uri_conflict':
        args['uri'] = 'pkcs11:token=another'
    out, run = runner.call('pki.est.tpm_key', args, verbosity=3)
    _assert_clean_failure(out, run, kind, secrets=(PIN, wrong))
    if case == 'missing_token':
        assert "'device'" in out['msg'], out
    assert _token_objects(hsm) == [], 'the failed run left objects in the token'
