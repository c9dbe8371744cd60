# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rekey with a key in a token (SoftHSM2), killed at every step: file steps and token steps (a key made under
<label>.pending, the old key destroyed, the new one relabelled). Each time the next run, with the same task, leaves
a certificate that carries the public key of the token's key <label>, no pending key, and nothing to do after it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import os
import signal

import pytest

from support.softhsm import softhsm_available, softhsm_token
from support.modrun import run_module as _module

PASSWORD = 's3cret-Pa55'
PIN = '1234-user'

pytestmark = pytest.mark.skipif(not softhsm_available(), reason='softhsm2 is not installed (make test installs it)')


def _spki(pem):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    pem = pem.encode('ascii') if isinstance(pem, str) else pem
    key = x509.load_pem_x509_certificate(pem).public_key() if b'CERTIFICATE' in pem else serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_token_rekey_killed_at_every_step(lab, tmp_path):
    with contextlib.ExitStack() as stack:
        _killed_at_every_step(lab, tmp_path, stack)


def _killed_at_every_step(lab, tmp_path, stack):
    def host(name):
        work = tmp_path / name
        work.mkdir()
        hsm = stack.enter_context(softhsm_token(work / 'softhsm', label='host', pin=PIN))
        env = dict(hsm.env)
        enroll = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD,
                      private_key_uri='pkcs11:token=host;object=web', pkcs11_module=hsm.module_path, pin=PIN,
                      common_name='web.example.test', path=str(work / 'web.crt'), chain_path=str(work / 'chain.pem'))
        # The first enrollment makes the key in the token (nothing was there).
        rc, result = _module(work, 'est_enroll', enroll, env)
        assert rc == 0 and result['action'] == 'enrolled', result
        return work, hsm, env, enroll

    def token_key(work, hsm, env, label, algorithm):
        _rc, result = _module(work, 'tpm_key', dict(pkcs11_module=hsm.module_path, token_label='host', pin=PIN,
                                                    label=label, algorithm=algorithm), env)
        return result

    def pending_left(work, hsm, env):
        rc, result = _module(work, 'tpm_key', dict(pkcs11_module=hsm.module_path, token_label='host', pin=PIN,
                                                   label='web.pending', state='absent'), env)
        assert rc == 0, result
        return result['changed']

    log = tmp_path / 'steps.log'
    work, hsm, env, enroll = host('probe')
    rekey = dict(enroll, key_type='ec-p384')
    rc, result = _module(work, 'est_enroll', rekey, dict(env, PKI_EST_CRASH_LOG=str(log)))
    assert rc == 0 and result['action'] == 'rekeyed', result
    steps = log.read_text().splitlines()
    assert any(' token ' in ' %s ' % s for s in steps) and len(steps) >= 6, steps
    for at in range(1, len(steps) + 1):
        work, hsm, env, enroll = host('kill-%02d' % at)
        rekey = dict(enroll, key_type='ec-p384')
        before = (work / 'web.crt').read_bytes()
        rc, _result = _module(work, 'est_enroll', rekey, dict(env, PKI_EST_CRASH_AT=str(at)))
        assert rc == -signal.SIGKILL, 'step %d (%s) did not stop the module' % (at, steps[at - 1])
        # The same task again repairs and finishes: the certificate and the token's key "web" belong together.
        rc, result = _module(work, 'est_enroll', rekey, env)
        assert rc == 0 and result['changed'], (at, steps[at - 1], result)
        cert = (work / 'web.crt').read_bytes()
        key = token_key(work, hsm, env, 'web', 'ec-p384')
        assert key and not key.get('failed') and not key['changed'], (at, key)
        assert _spki(cert) == _spki(key['public_key']), ('step %d: certificate and token key differ' % at, result)
        assert cert != before
        assert not pending_left(work, hsm, env), 'step %d: a pending key was left in the token' % at
        expected = ('web.crt', 'chain.pem', 'web.crt.est.json', 'softhsm', 'args.json')
        leftovers = sorted(n for n in os.listdir(str(work)) if n not in expected)
        assert leftovers == [], (at, leftovers)
        rc, result = _module(work, 'est_enroll', rekey, env)
        assert rc == 0 and result['action'] == 'none' and not result['changed'], (at, result)
