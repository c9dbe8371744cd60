# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revocation against the lab server's real OCSP responder and CRL (plain HTTP): est_enroll replace_revoked,
revocation.status_for in each mode, the renewal agent."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

from cryptography import x509

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), '.build', 'collections')
if COLLECTIONS not in sys.path:  # the engine itself, as the agent imports it (conftest makes the link)
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.pki.est.plugins.module_utils import revocation  # noqa: E402
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError  # noqa: E402

PASSWORD = 's3cret-Pa55'


def _args(lab, tmp_path, **extra):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, path=str(work / 'host.crt'),
                private_key_path=str(work / 'host.key'), chain_path=str(work / 'chain.pem'), common_name='rev.example.test')
    args.update(extra)
    return args


def _files(tmp_path):
    work = tmp_path / 'work'
    return {name: (work / name).read_bytes() for name in ('host.crt', 'host.key', 'chain.pem')}


def _cert(tmp_path):
    return x509.load_pem_x509_certificate((tmp_path / 'work' / 'host.crt').read_bytes())


def _ca(lab):
    return x509.load_pem_x509_certificate(open(lab.ca_path, 'rb').read())


def _ops(lab):
    return [entry['op'] for entry in lab.requests()]


def test_revoked_certificate_is_replaced(runner, lab, tmp_path):
    args = _args(lab, tmp_path, replace_revoked=True)
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'enrolled', out
    first = _cert(tmp_path)
    assert first.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0].full_name[0].value == lab.crl_url

    lab.clear_requests()
    out = runner.call('pki.est.est_enroll', args)[0]
    assert (out['changed'], out['action']) == (False, 'none'), out
    assert out['revocation']['status'] == 'good' and out['revocation']['source'] == 'ocsp', out
    assert out['revocation']['url'] == lab.ocsp_url
    assert _ops(lab) == ['ocsp']  # the decision record does not skip the check

    lab.revoke(first.serial_number, 'keyCompromise')
    before = _files(tmp_path)
    out = runner.call('pki.est.est_enroll', args, check=True)[0]
    assert (out['changed'], out['action']) == (True, 'enroll'), out
    assert 'revoked' in out['reasons'][0] and 'keyCompromise' in out['reasons'][0], out
    assert _files(tmp_path) == before

    lab.clear_requests()
    out = runner.call('pki.est.est_enroll', args)[0]
    assert (out['changed'], out['action']) == (True, 'rekeyed'), out
    assert out['revocation']['status'] == 'revoked' and out['revocation']['reason'] == 'keyCompromise', out
    assert any('revoked' in reason for reason in out['reasons']), out
    ops = _ops(lab)
    assert ops[0] == 'ocsp' and 'simpleenroll' in ops and 'simplereenroll' not in ops, ops
    after = _files(tmp_path)
    assert after['host.key'] != before['host.key'] and after['host.crt'] != before['host.crt']

    out = runner.call('pki.est.est_enroll', args)[0]
    assert (out['changed'], out['action'], out['revocation']['status']) == (False, 'none', 'good'), out
    assert out['serial'] != format(first.serial_number, 'X')


def test_check_errors_fail_and_change_nothing(runner, lab, tmp_path):
    args = _args(lab, tmp_path, replace_revoked=True)
    assert runner.call('pki.est.est_enroll', args)[0]['action'] == 'enrolled'
    before = _files(tmp_path)
    lab.clear_requests()

    lab.set_revocation_fault('ocsp', 'down')
    lab.set_revocation_fault('crl', 'down')
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out.get('failed') and out['error_kind'] == 'revocation_check' and out['changed'] is False, out
    assert 'cannot be reached' in out['msg'], out

    lab.set_revocation_fault('crl', 'stale')  # the responder still down: the CRL answers, too old
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out.get('failed') and out['error_kind'] == 'revocation_check' and 'stale' in out['msg'], out

    lab.set_revocation_fault('crl', None)
    lab.set_revocation_fault('ocsp', 'bad_signature')  # an answer that cannot be trusted: no fallback to the CRL
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out.get('failed') and out['error_kind'] == 'revocation_check', out
    assert 'signed neither by the issuer' in out['msg'] or 'does not verify' in out['msg'], out

    assert _files(tmp_path) == before
    assert not [name for name in os.listdir(str(tmp_path / 'work')) if '.pending' in name or name.startswith('.')]
    assert 'simpleenroll' not in _ops(lab) and 'simplereenroll' not in _ops(lab)

    lab.set_revocation_fault('ocsp', 'down')  # unreachable responder, good CRL: the CRL answers
    out = runner.call('pki.est.est_enroll', args)[0]
    assert (out['action'], out['revocation']['source'], out['revocation']['status']) == ('none', 'crl', 'good'), out
    assert out['revocation']['ocsp_error'], out


def test_status_for_each_mode_against_the_lab(runner, lab, tmp_path):
    assert runner.call('pki.est.est_enroll', _args(lab, tmp_path))[0]['action'] == 'enrolled'
    cert, ca = _cert(tmp_path), _ca(lab)
    for mode in ('ocsp', 'crl', 'auto'):
        result = revocation.status_for(cert, [ca], mode, timeout=5)
        assert result['status'] == 'good', (mode, result)
        assert result['source'] == ('crl' if mode == 'crl' else 'ocsp')
    lab.revoke(cert.serial_number, 'superseded')
    for mode in ('ocsp', 'crl'):  # the CRL was issued anew on revocation
        result = revocation.status_for(cert, ca, mode, timeout=5)
        assert (result['status'], result['reason'], result['source']) == ('revoked', 'superseded', mode), result
        assert result['revocation_time'].endswith('Z')
    for target, fault, words in (('ocsp', 'stale', 'stale'), ('crl', 'stale', 'stale'),
                                 ('crl', 'bad_signature', 'does not verify'), ('ocsp', 'down', 'cannot be reached')):
        lab.set_revocation_fault(target, fault, 1)
        try:
            revocation.status_for(cert, ca, target, timeout=5)
            raise AssertionError('%s %s gave an answer' % (target, fault))
        except ESTError as exc:
            assert exc.kind == 'revocation_check' and words in exc.message, (target, fault, exc.message)


def test_agent_replaces_a_revoked_certificate(runner, lab, tmp_path):
    args = _args(lab, tmp_path)
    assert runner.call('pki.est.est_enroll', args)[0]['action'] == 'enrolled'
    entry = dict(name='web', url=lab.url, ca_path=lab.ca_path, path=args['path'], private_key_path=args['private_key_path'],
                 chain_path=args['chain_path'], common_name='rev.example.test', replace_revoked=True)
    credentials = tmp_path / 'credentials.json'
    credentials.write_text(json.dumps({'*': {'username': 'alice', 'password': PASSWORD}}))
    os.chmod(str(credentials), 0o600)
    config = tmp_path / 'agent.json'
    config.write_text(json.dumps(dict(version=1, state_dir=str(tmp_path / 'state'), credentials_path=str(credentials),
                                      certificates=[entry])))

    def agent():
        proc = subprocess.run([sys.executable, '-m', 'ansible_collections.pki.est.plugins.module_utils.agent', '--config',
                               str(config)], env=dict(os.environ, PYTHONPATH=COLLECTIONS), capture_output=True, text=True,
                              timeout=120, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    lab.clear_requests()
    code, output = agent()
    assert code == 0 and 'web: ok: nothing to do' in output, output
    assert _ops(lab) == ['ocsp']
    old = _cert(tmp_path)
    lab.revoke(old.serial_number, 'keyCompromise')
    lab.set_revocation_fault('ocsp', 'down', 1)  # through the CRL this time
    code, output = agent()
    assert code == 0 and 'web: renewed: replaced the revoked certificate (keyCompromise)' in output, output
    assert 'simpleenroll' in _ops(lab) and 'simplereenroll' not in _ops(lab)
    assert _cert(tmp_path).serial_number != old.serial_number
    assert revocation.status_for(_cert(tmp_path), _ca(lab), 'crl', timeout=5)['status'] == 'good'
