# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The est_renewal role: installs the agent with the engine, its config and systemd units; removes them again."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import stat
import subprocess

import pytest

PASSWORD = 's3cret-Pa55'


def test_install_run_idempotent_verify_and_remove(runner, lab, tmp_path):
    work = tmp_path / 'work'
    for name in ('sbin', 'units', 'certs'):
        (work / name).mkdir(parents=True)
    entry = dict(name='web', url=lab.url, ca_path=lab.ca_path, path=str(work / 'certs' / 'web.crt'),
                 private_key_path=str(work / 'certs' / 'web.key'), chain_path=str(work / 'certs' / 'web-chain.pem'),
                 common_name='web.example.test', subject_alt_name=['DNS:web.example.test'], renew_before='33%')
    args = dict((k, v) for k, v in entry.items() if k != 'name')
    assert runner.call('pki.est.est_enroll', dict(args, username='alice', password=PASSWORD))[0]['action'] == 'enrolled'
    entry['post_renew'] = [['/bin/true']]
    extra = dict(work_dir=str(work), renewal_certificates=[entry], renewal_credentials={'*': {'pkcs12_passphrase': 'p12-x'}})

    run = runner.run('est_renewal_role.yml', extra)
    assert run.rc == 0, str(run)
    config = json.loads((work / 'etc' / 'config.json').read_text())
    assert config['certificates'][0]['name'] == 'web' and config['credentials_path'].endswith('credentials.json')
    assert 'p12-x' not in (work / 'etc' / 'config.json').read_text()
    assert stat.S_IMODE(os.stat(str(work / 'etc' / 'credentials.json')).st_mode) == 0o600
    versions = os.listdir(str(work / 'lib'))
    assert len(versions) == 1 and versions[0].startswith('0.')
    engine = sorted(os.listdir(str(work / 'lib' / versions[0] / 'pki_est_engine')))
    assert 'agent.py' in engine and 'enroll.py' in engine and '_module.py' not in engine
    # The installed agent runs on its own: nothing due.
    proc = subprocess.run([str(work / 'sbin' / 'pki-est-agent'), '--config', str(work / 'etc' / 'config.json')],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and 'web: ok: nothing to do' in proc.stdout, (proc.stdout, proc.stderr)
    assert 'pki_est_certificate_expiry_seconds{name="web"}' in (work / 'pki_est.prom').read_text()
    # Idempotent.
    run = runner.run('est_renewal_role.yml', extra)
    assert run.rc == 0 and run.recap()['changed'] == 0, str(run)
    # The units are valid systemd units.
    timer = (work / 'units' / 'pki-est-agent.timer').read_text()
    assert 'Persistent=true' in timer and 'RandomizedDelaySec=3600' in timer and 'OnCalendar=*-*-* 00,12:00:00' in timer
    if shutil.which('systemd-analyze'):
        proc = subprocess.run(['systemd-analyze', 'verify', '--man=no', str(work / 'units' / 'pki-est-agent.service'),
                               str(work / 'units' / 'pki-est-agent.timer')], capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # Removed without a trace.
    run = runner.run('est_renewal_role.yml', dict(extra, renewal_state='absent'))
    assert run.rc == 0, str(run)
    left = [p for p in ('lib', 'etc/config.json', 'etc/credentials.json', 'state', 'sbin/pki-est-agent',
                        'units/pki-est-agent.timer', 'units/pki-est-agent.service') if os.path.lexists(str(work / p))]
    assert left == []


@pytest.mark.skipif(not shutil.which('systemd-analyze'), reason='systemd-analyze is not installed')
def test_systemd_analyze_catches_a_broken_unit(tmp_path):
    """The check above can fail: a unit with an unknown setting is refused."""
    unit = tmp_path / 'broken.service'
    unit.write_text('[Service]\nType=oneshot\nExecStart=/bin/true\nNoSuchSetting=1\n')
    proc = subprocess.run(['systemd-analyze', 'verify', '--man=no', str(unit)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert 'NoSuchSetting' in proc.stdout + proc.stderr


def test_the_agent_renews_what_est_enroll_handled(runner, lab, tmp_path):
    """est_renewal's default certificates are est_enroll's: the agent agrees with the module that nothing is due."""
    from cryptography.hazmat.primitives.serialization import pkcs12
    work = tmp_path / 'work'
    (work / 'sbin').mkdir(parents=True)
    extra = dict(work_dir=str(work), est_enroll_url=lab.url, est_enroll_ca_path=lab.ca_path, est_enroll_username='alice',
                 est_enroll_password=PASSWORD, est_enroll_dir=str(work / 'certs'),
                 est_enroll_certificates=[
                     dict(name='web', common_name='web.example.test', subject_alt_name=['DNS:web.example.test', 'DNS:www.example.test'],
                          pkcs12=True, pkcs12_passphrase='p12-Secret', commands=['touch %s' % (work / 'web.reloaded')]),
                     dict(name='mqtt', common_name='mqtt.example.test', key_type='ec-p384', mode='0640')])
    run = runner.run('est_renewal_after_enroll.yml', extra)
    assert run.rc == 0, str(run)
    assert 'p12-Secret' not in run.output
    config = json.loads((work / 'etc' / 'config.json').read_text())
    web = [c for c in config['certificates'] if c['name'] == 'web'][0]
    assert web['post_renew'] == [['touch', str(work / 'web.reloaded')]] and web['pkcs12_path'].endswith('web.p12')
    assert 'password' not in json.dumps(config) and 'p12-Secret' not in json.dumps(config)
    credentials = json.loads((work / 'etc' / 'credentials.json').read_text())
    assert credentials == {'web': {'pkcs12_passphrase': 'p12-Secret'}}
    agent = [str(work / 'sbin' / 'pki-est-agent'), '--config', str(work / 'etc' / 'config.json')]
    lab.clear_requests()
    proc = subprocess.run(agent, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The module's decision record answers the agent: same wanted state, nothing due, no request.
    assert 'web: ok: nothing to do' in proc.stdout and 'mqtt: ok: nothing to do' in proc.stdout, proc.stdout
    assert lab.requests() == []
    proc = subprocess.run(agent + ['--force', 'web'], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and 'web: renewed' in proc.stdout, proc.stdout + proc.stderr
    assert (work / 'web.reloaded').exists()
    bundle = pkcs12.load_pkcs12((work / 'certs' / 'web.p12').read_bytes(), b'p12-Secret')
    assert bundle.cert.certificate.public_bytes(__import__('cryptography').hazmat.primitives.serialization.Encoding.PEM) == \
        (work / 'certs' / 'web.crt').read_bytes()
    # The playbook again: nothing to do anywhere.
    run = runner.run('est_renewal_after_enroll.yml', extra)
    assert run.rc == 0 and run.recap()['changed'] == 0, str(run)
    # playbooks/renew.yml renews every certificate now, through the agent.
    lab.clear_requests()
    run = runner.run(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), 'playbooks', 'renew.yml'),
                     dict(est_renewal_bin_path=agent[0], est_renewal_config_path=agent[2]))
    assert run.rc == 0 and run.recap()['changed'] == 1, str(run)
    assert 'web: renewed' in run.stdout and 'mqtt: renewed' in run.stdout
    assert sorted(r['op'] for r in lab.requests()) == ['simplereenroll', 'simplereenroll']
