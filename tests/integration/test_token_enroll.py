# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_enroll with a key that never leaves a PKCS#11 token (SoftHSM2, and a TPM through tpm2-pkcs11), against the
lab server over real TLS: tpm_key makes the key, est_enroll signs the request in the token, the certificate carries
the token's public key, renewal keeps the key, a server fault changes nothing, and nothing about the key is on disk."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import tempfile

import pytest

from support.softhsm import softhsm_available, softhsm_token
from support.tpm import tpm_token  # noqa: F401  pylint: disable=unused-import

PASSWORD = 's3cret-Pa55'
PIN = '1234-user'


def _public_der(pem):
    from cryptography.hazmat.primitives import serialization
    from cryptography import x509
    if b'CERTIFICATE' in pem:
        key = x509.load_pem_x509_certificate(pem).public_key()
    else:
        key = serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _renewals(lab):
    """(operation, auth) of the enrollment requests the lab saw."""
    return [(r['op'], r['auth']) for r in lab.requests() if r['op'] != 'cacerts']


def _lifecycle(runner, lab, work, module_path, token_label, pin, algorithm, renewal=('simpleenroll', 'basic')):
    """``renewal``: the (operation, auth) a renewal is sent as: HTTP Basic /simpleenroll for a key the TLS stack
    cannot use, /simplereenroll with the certificate (mutual TLS with the token key) for a TPM key."""
    spec = dict(pkcs11_module=module_path, token_label=token_label, pin=pin, label='web', algorithm=algorithm)
    key, _run = runner.call('pki.est.tpm_key', spec)
    assert key['changed'] and not key.get('failed'), key
    enroll = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, private_key_uri=key['uri'],
                  pkcs11_module=module_path, pin=pin, common_name='web.example.test',
                  subject_alt_name=['DNS:web.example.test'], path=str(work / 'web.crt'), chain_path=str(work / 'chain.pem'))
    # Check mode: would enroll, sends nothing but the token look-up.
    result, _run = runner.call('pki.est.est_enroll', enroll, check=True)
    assert result['changed'] and result['action'] == 'enroll' and not (work / 'web.crt').exists(), result
    lab.clear_requests()
    result, run = runner.call('pki.est.est_enroll', enroll)
    assert result['action'] == 'enrolled' and result['changed'], result
    assert pin not in run.stdout
    cert_pem = (work / 'web.crt').read_bytes()
    assert _public_der(cert_pem) == _public_der(key['public_key'].encode('ascii'))
    # Nothing about the key on disk: no key file, no pending key, no PEM private key anywhere under work.
    for name in os.listdir(str(work)):
        assert b'PRIVATE KEY' not in (work / name).read_bytes(), name
    assert [r['op'] for r in lab.requests() if r['op'] != 'cacerts'] == ['simpleenroll']
    # A rerun: the token is opened, the certificate is current, no request.
    lab.clear_requests()
    result, _run = runner.call('pki.est.est_enroll', enroll)
    assert result['action'] == 'none' and not result['changed'] and lab.requests() == [], result
    # Server faults during a renewal (an error, a certificate from another CA): nothing changes, the key stays.
    for fault in ('http500', 'other_ca'):
        lab.set_fault(renewal[0], fault, 1)
        result, _run = runner.call('pki.est.est_enroll', dict(enroll, force=True))
        assert result['failed'] and not result['changed'], (fault, result)
        assert (work / 'web.crt').read_bytes() == cert_pem
    lab.clear_faults()
    # Renewal (forced), for the same token key.
    lab.clear_requests()
    result, _run = runner.call('pki.est.est_enroll', dict(enroll, force=True))
    assert result['action'] == 'renewed' and result['changed'], result
    renewed = (work / 'web.crt').read_bytes()
    assert renewed != cert_pem and _public_der(renewed) == _public_der(cert_pem)
    assert _renewals(lab) == [renewal], lab.requests()
    # Rekey (another key type): a new key in the token under <label>.pending; the label moves to it, and the old
    # key goes, only once the certificate verified.
    other = 'ec-p384' if algorithm != 'ec-p384' else 'ec-p256'
    lab.clear_requests()
    result, _run = runner.call('pki.est.est_enroll', dict(enroll, key_type=other))
    assert result['action'] == 'rekeyed' and result['changed'], result
    rekeyed = (work / 'web.crt').read_bytes()
    assert _public_der(rekeyed) != _public_der(renewed)
    # Another key type is a new enrollment (hoststate.decide), with HTTP Basic, whatever the token.
    assert _renewals(lab) == [('simpleenroll', 'basic')], lab.requests()
    after, _run = runner.call('pki.est.tpm_key', dict(pkcs11_module=module_path, token_label=token_label, pin=pin,
                                                      label='web', algorithm=other))
    assert not after['changed'] and _public_der(after['public_key'].encode('ascii')) == _public_der(rekeyed), after
    gone, _run = runner.call('pki.est.tpm_key', dict(pkcs11_module=module_path, token_label=token_label, pin=pin,
                                                     label='web.pending', state='absent'))
    assert not gone['changed'], 'the pending label is gone after the rekey'
    result, _run = runner.call('pki.est.est_enroll', dict(enroll, key_type=other))
    assert result['action'] == 'none', result
    for name in os.listdir(str(work)):
        assert b'PRIVATE KEY' not in (work / name).read_bytes(), name
    # The private value cannot be read from the token.
    assert key['extractable'] is False
    return key


@pytest.mark.skipif(not softhsm_available(), reason='softhsm2 is not installed (make test installs it)')
@pytest.mark.parametrize('algorithm', ['ec-p256', 'rsa-2048'])
def test_enroll_and_renew_with_a_softhsm_key(runner, lab, tmp_path, monkeypatch, algorithm):
    with softhsm_token(tmp_path / 'softhsm', label='host', pin=PIN) as token:
        for name, value in token.env.items():
            monkeypatch.setenv(name, value)
        work = tmp_path / 'work'
        work.mkdir()
        _lifecycle(runner, lab, work, token.module_path, 'host', PIN, algorithm)
        _remove(runner, token.module_path, 'host', PIN)


def test_enroll_and_renew_with_a_tpm_key(runner, lab, tmp_path, monkeypatch, tpm_token):  # noqa: F811
    for name, value in tpm_token.full_env(os.environ).items():
        monkeypatch.setenv(name, value)
    exports = os.path.join(tempfile.gettempdir(), 'pki-est-tpmtls-*')
    leftovers = set(glob.glob(exports))
    work = tmp_path / 'work'
    work.mkdir()
    key = _lifecycle(runner, lab, work, tpm_token.module_path, tpm_token.token_label, tpm_token.pin, 'ec-p256',
                     renewal=('simplereenroll', 'cert'))
    # est_reenroll with the TPM key: mutual TLS 1.3, then linked to a TLS 1.2 session (RFC 7030 3.5) when the
    # server requires it: the CSR carries that session's tls-unique and the handshake used the TPM key.
    reenroll = dict(url=lab.url, ca_path=lab.ca_path, private_key_uri=key['uri'], pkcs11_module=tpm_token.module_path,
                    pin=tpm_token.pin, path=str(work / 'web.crt'), chain_path=str(work / 'chain.pem'))
    result, _run = runner.call('pki.est.est_reenroll', reenroll)
    assert result['action'] == 'none' and not result['changed'], result
    for linked in (False, True):
        lab.set_config(require_tls_unique=linked)
        before = (work / 'web.crt').read_bytes()
        lab.clear_requests()
        result, run = runner.call('pki.est.est_reenroll', dict(reenroll, force=True, pop_linking='always' if linked else 'auto'))
        assert result['action'] == 'renewed' and result['changed'], (linked, result)
        after = (work / 'web.crt').read_bytes()
        assert after != before and _public_der(after) == _public_der(before)
        assert _renewals(lab) == [('simplereenroll', 'cert')], lab.requests()
        assert tpm_token.pin not in run.stdout
    lab.set_config(require_tls_unique=False)
    # Rekey over mutual TLS: the TLS client key is the current TPM key, the CSR is signed by a new one (of the current
    # key's type, P-384 since the lifecycle's rekey) made under web.pending, which takes the label once the
    # certificate verified.
    before = (work / 'web.crt').read_bytes()
    lab.clear_requests()
    result, _run = runner.call('pki.est.est_reenroll', dict(reenroll, force=True, rekey=True))
    assert result['action'] == 'rekeyed' and result['changed'], result
    assert _renewals(lab) == [('simplereenroll', 'cert')], lab.requests()
    after = (work / 'web.crt').read_bytes()
    current, _run = runner.call('pki.est.tpm_key', dict(pkcs11_module=tpm_token.module_path, token_label=tpm_token.token_label,
                                                        pin=tpm_token.pin, label='web', algorithm='ec-p384'))
    assert not current['changed'] and _public_der(current['public_key'].encode('ascii')) == _public_der(after) != _public_der(before)
    # The renewal agent (no Ansible) renews the TPM key the same way, with only the PIN in its credentials.
    _agent_renews_over_mtls(lab, tmp_path, work, key['uri'], tpm_token)
    # Nothing of the export is left behind: the TPM-wrapped PEM lived in a temporary directory of its own.
    assert set(glob.glob(exports)) == leftovers
    for name in os.listdir(str(work)):
        assert b'PRIVATE KEY' not in (work / name).read_bytes(), name
    _remove(runner, tpm_token.module_path, tpm_token.token_label, tpm_token.pin)


def _remove(runner, module_path, token_label, pin):
    """tpm_key state=absent takes the key out of the token; a second time changes nothing."""
    spec = dict(pkcs11_module=module_path, token_label=token_label, pin=pin, label='web', state='absent')
    removed, _run = runner.call('pki.est.tpm_key', spec)
    assert removed['changed'] and not removed.get('failed'), removed
    assert not runner.call('pki.est.tpm_key', spec)[0]['changed']


def _agent_renews_over_mtls(lab, tmp_path, work, uri, tpm_token):  # noqa: F811
    import json
    import subprocess
    import sys
    etc = tmp_path / 'agent'
    etc.mkdir()
    credentials = etc / 'credentials.json'
    credentials.write_text(json.dumps({'web': {'pin': tpm_token.pin}}))
    credentials.chmod(0o600)
    (etc / 'config.json').write_text(json.dumps({
        'version': 1, 'state_dir': str(etc), 'credentials_path': str(credentials),
        'certificates': [dict(name='web', url=lab.url, ca_path=lab.ca_path, path=str(work / 'web.crt'),
                              chain_path=str(work / 'chain.pem'), private_key_uri=uri, pkcs11_module=tpm_token.module_path)]}))
    collections = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), '.build', 'collections')
    agent = [sys.executable, '-c', 'import sys; from ansible_collections.pki.est.plugins.module_utils.agent import main; '
             'sys.exit(main())', '--config', str(etc / 'config.json')]
    env = dict(os.environ, PYTHONPATH=collections)
    before = (work / 'web.crt').read_bytes()
    lab.clear_requests()
    proc = subprocess.run(agent, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0 and 'web: ok: nothing to do' in proc.stdout, proc.stdout + proc.stderr
    assert lab.requests() == []
    proc = subprocess.run(agent + ['--force', 'web'], capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0 and 'web: renewed' in proc.stdout, proc.stdout + proc.stderr
    after = (work / 'web.crt').read_bytes()
    assert after != before and _public_der(after) == _public_der(before)
    assert _renewals(lab) == [('simplereenroll', 'cert')], lab.requests()


def test_token_errors_are_clean(runner, lab, tmp_path, monkeypatch):
    if not softhsm_available():
        pytest.skip('softhsm2 is not installed (make test installs it)')
    with softhsm_token(tmp_path / 'softhsm', label='host', pin=PIN) as token:
        for name, value in token.env.items():
            monkeypatch.setenv(name, value)
        base = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, pkcs11_module=token.module_path,
                    pin=PIN, common_name='web.example.test', path=str(tmp_path / 'web.crt'))
        cases = [
            (dict(private_key_uri='pkcs11:token=host;id=%01'), 'invalid_input', 'object='),
            (dict(private_key_uri='pkcs11:token=host;object=web', key_type='ed25519'), 'invalid_input', 'algorithm'),
            (dict(private_key_uri='pkcs11:token=host;object=web', pin='wrong-pin'), 'token_login', ''),
            (dict(private_key_uri='pkcs11:token=elsewhere;object=web'), 'token_not_found', ''),
            (dict(private_key_uri='pkcs11:token=host;object=web', pkcs11_module='/nonexistent/libnothing.so'), 'token_library', ''),
            (dict(private_key_uri='pkcs11:token=host;object=web', pkcs12_path=str(tmp_path / 'x.p12')), 'invalid_input', ''),
        ]
        lab.clear_requests()
        for extra, kind, text in cases:
            result, run = runner.call('pki.est.est_enroll', dict(base, **extra))
            assert result['failed'] and result['error_kind'] == kind and not result['changed'], (extra, result)
            assert text in result['msg'] and 'Traceback' not in result['msg'] and 'wrong-pin' not in run.stdout
        assert lab.requests() == [] and not (tmp_path / 'web.crt').exists()
        # est_reenroll renews over mutual TLS only, which a SoftHSM2 key cannot do here: said before anything happens.
        result, _run = runner.call('pki.est.est_reenroll', dict(url=lab.url, ca_path=lab.ca_path, pkcs11_module=token.module_path,
                                                                pin=PIN, private_key_uri='pkcs11:token=host;object=web',
                                                                path=str(tmp_path / 'web.crt'), force=True))
        assert result['failed'] and result['error_kind'] == 'not_supported' and not result['changed'], result
        assert 'not in a TPM' in result['msg'] and 'est_enroll' in result['msg'] and lab.requests() == []


@pytest.mark.skipif(not softhsm_available(), reason='softhsm2 is not installed (make test installs it)')
def test_full_cmc_with_a_softhsm_key(runner, lab, tmp_path, monkeypatch):
    """est_fullcmc: the PKCS#10 request and the CMC SignedData around it are both signed in the token."""
    with softhsm_token(tmp_path / 'softhsm', label='host', pin=PIN) as token:
        for name, value in token.env.items():
            monkeypatch.setenv(name, value)
        key, _run = runner.call('pki.est.tpm_key', dict(pkcs11_module=token.module_path, token_label='host', pin=PIN,
                                                        label='cmc', algorithm='ec-p384'))
        args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, private_key_uri=key['uri'],
                    pkcs11_module=token.module_path, pin=PIN, common_name='cmc.example.test', path=str(tmp_path / 'cmc.crt'))
        lab.clear_requests()
        result, _run = runner.call('pki.est.est_fullcmc', args)
        assert result['changed'] and result['action'] == 'enrolled', result
        assert _public_der((tmp_path / 'cmc.crt').read_bytes()) == _public_der(key['public_key'].encode('ascii'))
        assert 'fullcmc' in [r['op'] for r in lab.requests()]
        result, _run = runner.call('pki.est.est_fullcmc', args)
        assert not result['changed'] and result['action'] == 'none', result


def test_tpm_init_makes_the_token(runner, tmp_path, monkeypatch, tpm_token):  # noqa: F811
    """tpm_key with tpm_init: a token that is not there yet is made with tpm2_ptool (in the fixture's store), then used."""
    for name, value in tpm_token.full_env(os.environ).items():
        monkeypatch.setenv(name, value)
    args = dict(pkcs11_module=tpm_token.module_path, token_label='made-here', pin='4321-user', label='device',
                algorithm='ec-p256', tpm_init=True, tpm_store=str(tpm_token.store_dir), tpm_so_pin='8765-so')
    result, run = runner.call('pki.est.tpm_key', args, check=True)
    assert result['changed'] and result['token_created'] and not result.get('failed'), result
    result, run = runner.call('pki.est.tpm_key', args)
    assert result['changed'] and result['token_created'] and result['algorithm'] == 'ec-p256', result
    assert '4321-user' not in run.stdout and '8765-so' not in run.stdout
    result, _run = runner.call('pki.est.tpm_key', args)
    assert not result['changed'] and not result['token_created'], result


@pytest.mark.skipif(not softhsm_available(), reason='softhsm2 is not installed (make test installs it)')
def test_roles_and_agent_with_a_token_key(runner, lab, tmp_path, monkeypatch):
    """est_enroll's list takes a token entry; est_renewal gives the agent its URI and (root-only) PIN and Basic
    credentials; the agent, with no Ansible, finds nothing to do, then renews with the same token key."""
    import json
    import subprocess
    with softhsm_token(tmp_path / 'softhsm', label='host', pin=PIN) as token:
        for name, value in token.env.items():
            monkeypatch.setenv(name, value)
        work = tmp_path / 'work'
        (work / 'sbin').mkdir(parents=True)
        extra = dict(work_dir=str(work), est_enroll_url=lab.url, est_enroll_ca_path=lab.ca_path, est_enroll_username='alice',
                     est_enroll_password=PASSWORD, est_enroll_dir=str(work / 'certs'),
                     est_enroll_certificates=[
                         dict(name='device', common_name='device.example.test', private_key_uri='pkcs11:token=host;object=device',
                              pkcs11_module=token.module_path, pin=PIN),
                         dict(name='web', common_name='web.example.test')])
        run = runner.run('est_renewal_after_enroll.yml', extra)
        assert run.rc == 0, str(run)
        assert PIN not in run.output and PASSWORD not in run.output
        assert sorted(os.listdir(str(work / 'certs'))) == sorted([
            'device.crt', 'device.crt.est.json', 'device-chain.pem', 'device-fullchain.pem',
            'web.crt', 'web.crt.est.json', 'web.key', 'web-chain.pem', 'web-fullchain.pem']), os.listdir(str(work / 'certs'))
        config = json.loads((work / 'etc' / 'config.json').read_text())
        device = [c for c in config['certificates'] if c['name'] == 'device'][0]
        assert device['private_key_uri'] == 'pkcs11:token=host;object=device' and 'private_key_path' not in device
        assert PIN not in json.dumps(config) and PASSWORD not in json.dumps(config)
        credentials = json.loads((work / 'etc' / 'credentials.json').read_text())
        assert credentials['device'] == {'pin': PIN, 'username': 'alice', 'password': PASSWORD}
        agent = [str(work / 'sbin' / 'pki-est-agent'), '--config', str(work / 'etc' / 'config.json')]
        env = dict(os.environ, **token.env)
        lab.clear_requests()
        proc = subprocess.run(agent, capture_output=True, text=True, timeout=120, check=False, env=env)
        assert proc.returncode == 0 and 'device: ok: nothing to do' in proc.stdout, proc.stdout + proc.stderr
        assert lab.requests() == []
        before = (work / 'certs' / 'device.crt').read_bytes()
        proc = subprocess.run(agent + ['--force', 'device'], capture_output=True, text=True, timeout=120, check=False, env=env)
        assert proc.returncode == 0 and 'device: renewed' in proc.stdout, proc.stdout + proc.stderr
        after = (work / 'certs' / 'device.crt').read_bytes()
        assert after != before and _public_der(after) == _public_der(before)
        assert [r['op'] for r in lab.requests() if r['op'] != 'cacerts'] == ['simpleenroll']
        # The playbook again: nothing to do.
        run = runner.run('est_renewal_after_enroll.yml', extra)
        assert run.rc == 0 and run.recap()['changed'] == 0, str(run)
