# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A server that pushes back (503 or 429 with Retry-After, the lab server's throttle): est_enroll and the agent wait
and retry within wait_timeout; without one they fail with error_kind busy and change nothing."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), '.build', 'collections')
AGENT = 'ansible_collections.pki.est.plugins.module_utils.agent'
PASSWORD = 's3cret-Pa55'


def _args(lab, work, name='host', **extra):
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, common_name='%s.example.test' % name,
                path=str(work / (name + '.crt')), private_key_path=str(work / (name + '.key')),
                chain_path=str(work / (name + '-chain.pem')))
    args.update(extra)
    return args


def _use_up_the_token(lab):
    """One request that takes the throttle's only token, so that the next one is refused."""
    assert requests.get(lab.est_url('cacerts'), verify=lab.ca_path, timeout=10).status_code == 200


def _files(work):
    return dict((name, (work / name).read_bytes()) for name in sorted(os.listdir(work)))


def _refused(lab):
    return [r for r in lab.requests() if r['fault'] == 'throttled']


def test_est_enroll_waits_for_a_throttled_server(runner, lab, tmp_path):
    # At most one request every 2 s: /csrattrs goes through, the /simpleenroll right after it is refused.
    lab.set_config(throttle={'per_second': 0.5, 'burst': 1, 'retry_after': 1})
    result = runner.call('pki.est.est_enroll', _args(lab, tmp_path, csr_attributes='apply', wait_timeout=60))[0]
    assert result.get('action') == 'enrolled', result
    refused = _refused(lab)
    assert refused and all(r['status'] == 503 for r in refused)
    assert result['retries'] == len(refused) == lab.throttle_stats()['refused']
    # Each wait is at least the Retry-After (1 s) and at most 1 s of jitter more.
    assert result['retries'] <= result['waited_seconds'] <= 2 * result['retries'] + 0.1
    assert [r['op'] for r in lab.requests() if r['status'] == 200][-1] == 'simpleenroll'


def test_est_enroll_without_wait_timeout_fails_busy_and_changes_nothing(runner, lab, tmp_path):
    work = tmp_path / 'pki'
    work.mkdir()
    first = runner.call('pki.est.est_enroll', _args(lab, work))[0]
    assert first['action'] == 'enrolled', first
    before = _files(work)
    lab.set_config(throttle={'per_second': 0.001, 'burst': 1, 'retry_after': 120})
    _use_up_the_token(lab)
    # A renewal (force) and a first enrollment (no key yet): both refused, neither writes anything.
    for args in (_args(lab, work, force=True), _args(lab, work, name='fresh')):
        result, _run = runner.call('pki.est.est_enroll', args)
        assert result.get('failed') and result['error_kind'] == 'busy', result
        assert result['retry_after'] == 120 and result['http_status'] == 503
        assert 'retry after 120 s' in result['msg'] and 'wait_timeout' in result['msg']
        assert result['changed'] is False and result['retries'] == 0 and result['waited_seconds'] == 0
        assert _files(work) == before  # the pair as it was, no key file, no pending state
    assert len(_refused(lab)) == 2


def _agent_setup(runner, lab, tmp_path, wait_timeout):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    entry = dict(name='web', url=lab.url, ca_path=lab.ca_path, path=str(work / 'web.crt'), private_key_path=str(work / 'web.key'),
                 chain_path=str(work / 'web-chain.pem'), common_name='web.example.test')
    out = runner.call('pki.est.est_enroll', dict(dict((k, v) for k, v in entry.items() if k != 'name'),
                                                 username='alice', password=PASSWORD))[0]
    assert out['action'] == 'enrolled', out
    entry['wait_timeout'] = wait_timeout
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(dict(version=1, state_dir=str(tmp_path / 'state'), certificates=[entry])))
    return path, work


def _agent(path):
    proc = subprocess.run([sys.executable, '-m', AGENT, '--config', str(path), '--force', 'web'], env=dict(os.environ, PYTHONPATH=COLLECTIONS),
                          capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_the_agent_waits_for_a_throttled_server_and_reports_it(runner, lab, tmp_path):
    path, work = _agent_setup(runner, lab, tmp_path, wait_timeout=60)
    # The next token 5 s after this one: the agent's start-up takes less, its renewal is refused at least once.
    lab.set_config(throttle={'per_second': 0.2, 'burst': 1, 'retry_after': 1, 'status': 429})
    _use_up_the_token(lab)
    rc, out, err = _agent(path)
    assert rc == 0 and 'web: renewed: CN=web.example.test' in out, (out, err)
    assert 'the server was busy or pending: waited' in out, out
    state = json.loads((tmp_path / 'state' / 'state.json').read_text())['web']
    refused = _refused(lab)
    assert refused and all(r['status'] == 429 and r['op'] == 'simplereenroll' for r in refused)
    assert state['last_retries'] == len(refused) and state['last_waited_seconds'] >= 1
    # wait_timeout 0: one clear line, exit 1, the pair untouched.
    config = json.loads(path.read_text())
    config['certificates'][0]['wait_timeout'] = 0
    path.write_text(json.dumps(config))
    lab.set_config(throttle={'per_second': 0.001, 'burst': 1, 'retry_after': 600, 'status': 429})
    _use_up_the_token(lab)
    before = _files(work)
    rc, out, err = _agent(path)
    assert rc == 1 and 'web: failed:' in err and 'HTTP 429, retry after 600 s' in err and '(busy)' in err, (out, err)
    assert _files(work) == before
