# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped playbooks, run as a user would, against the lab EST server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from conftest import ROOT


def _extra(lab, tmp_path):
    agent = tmp_path / 'agent'
    (agent / 'sbin').mkdir(parents=True, exist_ok=True)
    return dict(est_url=lab.url, est_ca_fingerprint=lab.ca_fingerprint, est_bundle_path=str(tmp_path / 'pki' / 'ca.pem'),
                est_cert_dir=str(tmp_path / 'pki'), est_username='alice', est_password='s3cret-Pa55',
                est_renewal_install_dir=str(agent / 'lib'), est_renewal_bin_path=str(agent / 'sbin' / 'pki-est-agent'),
                est_renewal_config_path=str(agent / 'config.json'), est_renewal_credentials_path=str(agent / 'credentials.json'),
                est_renewal_state_dir=str(agent / 'state'), est_renewal_scheduler='none')


def test_enroll_playbook_bootstraps_enrolls_and_is_idempotent(runner, lab, tmp_path):
    playbook = os.path.join(ROOT, 'playbooks', 'enroll.yml')
    first = runner.run(playbook, _extra(lab, tmp_path))
    assert first.rc == 0, str(first)
    assert first.recap()['failed'] == 0
    assert 'Trusting EST CA' in first.stdout and lab.ca_fingerprint in first.stdout
    assert 'enrolled: CN=testhost' in first.stdout
    for name in ('ca.pem', 'host.crt', 'host.key', 'host-chain.pem', 'host-fullchain.pem'):
        assert (tmp_path / 'pki' / name).exists(), name
    # Renewal on the host is on by default: the agent is installed for the certificate.
    import json
    config = json.loads((tmp_path / 'agent' / 'config.json').read_text())
    assert [c['name'] for c in config['certificates']] == ['host']
    lab.clear_requests()

    second = runner.run(playbook, _extra(lab, tmp_path))
    assert second.rc == 0, str(second)
    assert second.recap()['changed'] == 0, str(second)
    # The CA bundle is far from expiry (RFC 7030 4.1.2) and nothing is due: the rerun sends nothing.
    assert lab.requests() == []
    assert 'bundle valid, not fetched (refresh due from' in second.stdout


def test_enroll_playbook_refuses_without_fingerprint(runner, lab, tmp_path):
    extra = _extra(lab, tmp_path)
    del extra['est_ca_fingerprint']
    result = runner.run(os.path.join(ROOT, 'playbooks', 'enroll.yml'), extra)
    assert result.rc != 0
    assert 'No EST CA bundle at' in result.stdout and 'expected_fingerprint' in result.stdout, str(result)
    assert lab.requests() == []


def test_ansible_doc_renders_every_module_and_role(runner):
    import subprocess
    import sys
    ansible_doc = os.path.join(os.path.dirname(sys.executable), 'ansible-doc')
    plugins = [('module', 'pki.est.' + name) for name in ('est_cacerts', 'est_csrattrs', 'est_enroll', 'est_reenroll',
                                                          'est_serverkeygen', 'est_fullcmc')]
    plugins += [('role', 'pki.est.' + name) for name in ('est_trust', 'est_enroll', 'est_renewal', 'est_lab_server')]
    for kind, name in plugins:
        proc = subprocess.run([ansible_doc, '-t', kind, name], env=runner.env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (name, proc.stderr)
        assert 'OPTIONS' in proc.stdout or 'ENTRY POINT' in proc.stdout, (name, proc.stdout[:500])
