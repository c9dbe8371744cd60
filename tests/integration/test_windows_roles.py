# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows branch of est_trust and est_enroll, on the controller (there is no Windows host here).

pki.est.win_certstore is replaced by a test double (windows_stub/win_certstore.py, a Python module with the
real one's options and results that keeps "the store" in a JSON file) in a copy of the collections path made of
symlinks; the roles, est_cacerts, est_enroll and the lab EST server are real. Proven: the order query ->
request -> EST from the controller -> accept, the CA bundle into Root, no request and no EST call while the
certificates are valid, a renewal when the window opens, a pending request answered later for the same key,
and check mode that changes nothing."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from conftest import ROOT, Runner

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = 's3cret-Pa55'
STUBS = ('win_certstore.py', 'win_renewal_task.py')


def _stub_collections(base):
    """A collections path whose pki.est is this checkout, except the Windows modules, which are the test doubles."""
    est = base / 'ansible_collections' / 'pki' / 'est'
    (est / 'plugins' / 'modules').mkdir(parents=True)
    for name in os.listdir(ROOT):
        if name not in ('plugins', '.git'):
            os.symlink(os.path.join(ROOT, name), str(est / name))
    for name in os.listdir(os.path.join(ROOT, 'plugins')):
        if name != 'modules':
            os.symlink(os.path.join(ROOT, 'plugins', name), str(est / 'plugins' / name))
    for name in os.listdir(os.path.join(ROOT, 'plugins', 'modules')):
        if name.endswith('.ps1') and name[:-4] + '.py' in STUBS:
            continue  # the PowerShell module would be chosen over its test double
        source = os.path.join(HERE, 'windows_stub', name) if name in STUBS else os.path.join(ROOT, 'plugins', 'modules', name)
        os.symlink(source, str(est / 'plugins' / 'modules' / name))
    return base


class WindowsRunner(Runner):
    def __init__(self, tmp_path):
        super(WindowsRunner, self).__init__(tmp_path)
        self.collections = _stub_collections(tmp_path / 'collections')
        self.store = tmp_path / 'winstore.json'

    def env(self):
        env = super(WindowsRunner, self).env()
        env.update(ANSIBLE_COLLECTIONS_PATH=str(self.collections), PKI_EST_FAKE_WINSTORE=str(self.store))
        return env

    def state(self):
        return json.loads(self.store.read_text())


@pytest.fixture
def windows(tmp_path):
    return WindowsRunner(tmp_path)


def _vars(lab, tmp_path, **extra):
    entries = [dict(name='web', common_name='web.example.test', key_type='rsa-2048', extended_key_usage=['serverAuth']),
               dict(name='device', common_name='device.example.test', key_type='ec-p256')]
    variables = dict(est_trust_url=lab.url, est_trust_ca_path=lab.ca_path, est_trust_controller_dir=str(tmp_path / 'controller'),
                     est_enroll_url=lab.url, est_enroll_username='alice', est_enroll_password=PASSWORD,
                     est_enroll_controller_ca_path=lab.ca_path, est_enroll_certificates=entries)
    variables.update(extra)
    return variables


def _fingerprints(pem):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    return set(cert.fingerprint(hashes.SHA256()) for cert in x509.load_pem_x509_certificates(pem.encode('ascii')))


def _enrollments(lab):
    return [r['op'] for r in lab.requests() if r['op'] != 'cacerts']


def _my(state):
    return state['stores'].get('LocalMachine/My', {})


def test_windows_branch_enrolls_through_the_controller_and_is_idempotent(windows, lab, tmp_path):
    variables = _vars(lab, tmp_path)
    # Check mode first: the store is asked, nothing is made, no request goes to the EST server.
    lab.clear_requests()
    run = windows.run('windows_roles.yml', variables, check=True)
    assert run.rc == 0, str(run)
    assert 'web: would enroll (check mode)' in run.stdout and _enrollments(lab) == []
    assert windows.state()['keys'] == {} and _my(windows.state()) == {}
    checked = len(windows.state()['calls'])

    run = windows.run('windows_roles.yml', variables)
    assert run.rc == 0, str(run)
    assert PASSWORD not in run.output
    state = windows.state()
    # The CA went into Root; each entry got a key, a request, a certificate from the lab, and the certificate went
    # onto that key, in that order.
    root = state['stores']['LocalMachine/Root']
    assert len(root) == 1 and not state['stores'].get('LocalMachine/CA')
    calls = [call for call in state['calls'][checked:] if call[0] != 'present']
    assert calls[:2] == [['query', 'My'], ['query', 'My']], calls
    assert calls[2:] == [['request', 'web'], ['request', 'device'], ['accept', 'web'], ['accept', 'device']], calls
    assert _enrollments(lab) == ['simpleenroll', 'simpleenroll']
    my = _my(state)
    assert sorted(record['key'] for record in my.values()) == ['device', 'web']
    assert all(state['keys'][name]['certificate'] in my for name in ('web', 'device'))
    assert 'web: enrolled, thumbprint' in run.stdout

    # A rerun: the certificates are valid and outside their window. No request, no EST call, nothing changed.
    lab.clear_requests()
    before = windows.state()
    run = windows.run('windows_roles.yml', variables)
    assert run.rc == 0 and run.recap()['changed'] == 0, str(run)
    assert lab.requests() == [] and _my(windows.state()) == _my(before)
    assert 'web: nothing to do: CN=web.example.test' in run.stdout
    assert [call[0] for call in windows.state()['calls'][len(before['calls']):]] == ['present', 'query', 'query']

    # The renewal window opens for one entry: a new key, a new certificate for it, the other entry untouched.
    lab.clear_requests()
    entries = [dict(variables['est_enroll_certificates'][0], renew_before='100%'), variables['est_enroll_certificates'][1]]
    run = windows.run('windows_roles.yml', dict(variables, est_enroll_certificates=entries))
    assert run.rc == 0, str(run)
    assert _enrollments(lab) == ['simpleenroll']
    state = windows.state()
    assert len([r for r in _my(state).values() if r['key'] == 'web']) == 2  # the old certificate stays until it expires
    assert len([r for r in _my(state).values() if r['key'] == 'device']) == 1


def test_a_pending_request_is_answered_later_for_the_same_key(windows, lab, tmp_path):
    variables = _vars(lab, tmp_path, est_enroll_certificates=[dict(name='web', common_name='web.example.test',
                                                                   key_type='rsa-2048')])
    lab.set_config(pending={'after_polls': 1})
    run = windows.run('windows_roles.yml', variables)
    assert run.rc == 0, str(run)
    assert 'web: request pending at the server' in run.stdout
    state = windows.state()
    assert list(state['keys']) == ['web'] and state['keys']['web']['certificate'] is None and _my(state) == {}
    key = state['keys']['web']['pem']
    # The next run finds no certificate, makes the request again for the same key (reused), and installs the answer.
    run = windows.run('windows_roles.yml', variables)
    assert run.rc == 0, str(run)
    state = windows.state()
    assert state['keys']['web']['pem'] == key and state['keys']['web']['certificate'] in _my(state)
    assert 'web: enrolled, thumbprint' in run.stdout


def test_an_est_failure_changes_nothing_on_the_host(windows, lab, tmp_path):
    variables = _vars(lab, tmp_path, est_enroll_password='wrong-password')
    run = windows.run('windows_roles.yml', variables)
    assert run.rc != 0 and 'est_enroll failed for web, device' in run.stdout, str(run)
    assert 'wrong-password' not in run.output
    state = windows.state()
    assert _my(state) == {} and all(record['certificate'] is None for record in state['keys'].values())


def test_windows_renewal_client_is_installed_once_and_configured_per_certificate(windows, lab, tmp_path):
    """est_renewal on Windows: the action plugin sends the C# sources only when the host lacks that version; one
    config per certificate, for the certificates est_enroll put in the store, and the CA bundle est_trust fetched."""
    variables = _vars(lab, tmp_path)
    playbook = tmp_path / 'renewal.yml'
    playbook.write_text(json.dumps([{'name': 'Trust, enroll and schedule renewal on a Windows host', 'hosts': 'all',
                                     'gather_facts': False,
                                     'vars': {'est_trust_windows': True, 'est_enroll_windows': True, 'est_renewal_windows': True},
                                     'roles': ['pki.est.est_trust', 'pki.est.est_enroll', 'pki.est.est_renewal']}]))
    run = windows.run(str(playbook), variables)
    assert run.rc == 0, str(run)
    renewal = windows.state()['renewal']
    assert renewal['sources'] == ['EstWin.cs', 'EstWinPlatform.cs', 'PkiEstRenew.cs']
    assert _fingerprints(open(lab.ca_path).read()) <= _fingerprints(renewal['ca_bundle'])
    web = renewal['configs']['renewal-web.json']
    assert web['certificate'] == 'CN=web.example.test' and web['friendly_name'] == 'pki.est web'
    assert web['url'] == lab.url and web['key_provider'] == 'Microsoft Software Key Storage Provider'
    assert sorted(renewal['configs']) == ['renewal-device.json', 'renewal-web.json']
    # Rerun: nothing changes, the sources are not sent again (one module execution, no rebuild), no EST request.
    lab.clear_requests()
    calls = len(windows.state()['calls'])
    run = windows.run(str(playbook), variables)
    assert run.rc == 0 and run.recap()['changed'] == 0, str(run)
    assert [c for c in windows.state()['calls'][calls:] if c[0] == 'renewal_task'] == [['renewal_task', 'present']]
    assert lab.requests() == []
    # Removal.
    run = windows.run(str(playbook), dict(variables, est_renewal_state='absent'))
    assert run.rc == 0 and windows.state()['renewal'] == {}, str(run)
