# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The renewal agent (plugins/module_utils/agent.py) against the lab server, as its own process, without Ansible."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), '.build', 'collections')
PASSWORD = 's3cret-Pa55'
AGENT = 'ansible_collections.pki.est.plugins.module_utils.agent'


def _agent(config_path, *args):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run([sys.executable, '-m', AGENT, '--config', str(config_path)] + list(args), env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _pair(entry):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(open(entry['private_key_path'], 'rb').read(), None)
    cert = x509.load_pem_x509_certificate(open(entry['path'], 'rb').read())
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    return cert


def _setup(runner, lab, tmp_path, names=('web',)):
    """Enroll the certificates with the module (as the est_enroll role does); the agent config for them."""
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    entries = []
    for name in names:
        entry = dict(name=name, url=lab.url, ca_path=lab.ca_path, path=str(work / (name + '.crt')),
                     private_key_path=str(work / (name + '.key')), chain_path=str(work / (name + '-chain.pem')),
                     fullchain_path=str(work / (name + '-full.pem')), common_name='%s.example.test' % name,
                     subject_alt_name=['DNS:%s.example.test' % name], renew_before='33%')
        args = dict((k, v) for k, v in entry.items() if k != 'name')
        out = runner.call('pki.est.est_enroll', dict(args, username='alice', password=PASSWORD))[0]
        assert out['action'] == 'enrolled', out
        entry['post_renew'] = [['/bin/sh', '-c', 'echo %s >> %s' % (name, work / 'reloaded.log')]]
        entries.append(entry)
    config = dict(version=1, state_dir=str(tmp_path / 'state'), metrics_path=str(tmp_path / 'pki_est.prom'),
                  certificates=entries)
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(config))
    return path, config


def test_nothing_due_is_quick_and_needs_no_library(runner, lab, tmp_path):
    path, _config = _setup(runner, lab, tmp_path, names=('a', 'b'))
    lab.clear_requests()
    probe = ('import sys; from %s import main; rc = main(["--config", %r]); '
             'print("LOADED", sorted(m for m in ("cryptography", "requests") if m in sys.modules)); sys.exit(rc)') % (AGENT, str(path))
    proc = subprocess.run([sys.executable, '-c', probe], env=dict(os.environ, PYTHONPATH=COLLECTIONS), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'a: ok: nothing to do' in proc.stdout and 'b: ok: nothing to do' in proc.stdout
    assert 'LOADED []' in proc.stdout, proc.stdout
    assert lab.requests() == []
    metrics = (tmp_path / 'pki_est.prom').read_text()
    assert 'pki_est_certificate_expiry_seconds{name="a"}' in metrics and 'pki_est_failures_in_a_row{name="b"} 0' in metrics


def test_renews_inside_the_window_with_only_its_certificate(runner, lab, tmp_path):
    path, config = _setup(runner, lab, tmp_path)
    entry = config['certificates'][0]
    before = _pair(entry)
    key_before = open(entry['private_key_path'], 'rb').read()
    # The window now covers the whole lifetime: due.
    entry['renew_before'] = '100%'
    path.write_text(json.dumps(config))
    rc, out, err = _agent(path, '--check')
    assert rc == 0 and 'web: due: would renew' in out, (out, err)
    assert _pair(entry) == before
    lab.clear_requests()
    rc, out, err = _agent(path)
    assert rc == 0, (out, err)
    assert 'web: renewed: CN=web.example.test, serial ' in out, out
    after = _pair(entry)
    assert after != before and after.subject == before.subject
    assert open(entry['private_key_path'], 'rb').read() == key_before
    # Renewed with /simplereenroll over mutual TLS: the config has no password at all.
    assert [r['op'] for r in lab.requests()] == ['simplereenroll'], lab.requests()
    assert (tmp_path / 'work' / 'reloaded.log').read_text() == 'web\n'
    state = json.loads((tmp_path / 'state' / 'state.json').read_text())
    assert state['web']['last_status'] == 'renewed' and state['web']['failures'] == 0


def test_force_and_failures(runner, lab, tmp_path):
    path, config = _setup(runner, lab, tmp_path)
    entry = config['certificates'][0]
    rc, out, _err = _agent(path, '--force', 'web')
    assert rc == 0 and 'web: renewed' in out, out
    before = _pair(entry)
    # The server is gone: a clear line, exit 1, the pair untouched, the failure counted.
    lab.stop()
    rc, out, err = _agent(path, '--force', 'web')
    assert rc == 1 and 'web: failed:' in err and '(connection)' in err, (out, err)
    assert _pair(entry) == before
    rc, out, err = _agent(path, '--force', 'web')
    assert 'pki_est_failures_in_a_row{name="web"} 2' in (tmp_path / 'pki_est.prom').read_text()
    # An unknown --force name and a broken config are config errors (exit 2).
    assert _agent(path, '--force', 'nope')[0] == 2
    (tmp_path / 'bad.json').write_text(json.dumps({'version': 1, 'certificates': [{'name': 'x', 'url': 'https://e', 'paht': '/x'}]}))
    rc, _out, err = _agent(tmp_path / 'bad.json')
    assert rc == 2 and "unknown key 'paht'" in err, err


def test_a_missing_certificate_needs_the_playbook(runner, lab, tmp_path):
    path, config = _setup(runner, lab, tmp_path)
    os.unlink(config['certificates'][0]['path'])
    rc, _out, err = _agent(path)
    assert rc == 1 and 'run the playbook' in err, err
