# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/report.yml over a small fleet, read back from the JSON and from the HTML as headless chromium renders it.

The fleet (all ansible_connection=local, each host its own directory):
- web1: an est_renewal agent config with ``web`` (valid) and ``api`` (renew_before 100%: renewal_due),
  both enrolled from the lab server, and an agent state where ``api`` failed last time;
- web2: ``est_report_paths`` with ``old`` (an expired certificate made here), ``gone`` (missing) and
  ``queued`` (a request the lab server holds: pending);
- web3: ``lost``, enrolled and then revoked at the lab server, reported with ``est_report_revocation: auto``
  (the lab's OCSP responder answers);
- broken: an agent config that does not exist (the module fails on that host);
- ghost: SSH to a port nobody listens on (unreachable).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
from html.parser import HTMLParser

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'report.yml')
PASSWORD = 's3cret-Pa55'
HOSTILE = '<img src=x onerror="document.title=1">&amp;'


def _chromium():
    path = shutil.which('chromium') or shutil.which('chromium-browser')
    if path is None:
        if os.environ.get('PKI_EST_REQUIRE_BROWSER') == '1':
            pytest.fail('chromium is not installed and PKI_EST_REQUIRE_BROWSER=1 (apt-get install -y chromium)')
        pytest.skip('chromium is not installed (apt-get install -y chromium); set PKI_EST_REQUIRE_BROWSER=1 to fail instead')
    return path


def _browser(chromium, tmp_path, *args):
    command = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
               '--user-data-dir=%s' % (tmp_path / 'chromium-profile')] + list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _expired_pair(directory):
    """A key and a self-signed certificate that expired yesterday, its subject made of markup."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (directory / 'old.key').write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    (directory / 'old.crt').write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _enroll_task(lab, directory, name, **extra):
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, common_name='%s.example.test' % name,
                path=str(directory / ('%s.crt' % name)), private_key_path=str(directory / ('%s.key' % name)),
                chain_path=str(directory / ('%s-chain.pem' % name)))
    args.update(extra)
    return {'name': 'Enroll %s' % name, 'pki.est.est_enroll': args}


def _play(tmp_path, name, tasks):
    path = tmp_path / name
    path.write_text(json.dumps([{'name': name, 'hosts': 'all', 'gather_facts': False, 'tasks': tasks}]))
    return str(path)


class _Table(HTMLParser):
    """Rows of the certificates table, the count boxes, the failure items and the timeline dots of a DOM dump."""

    def __init__(self):
        super().__init__()
        self.rows, self.counts, self.failures, self.dots, self.images, self.table = [], {}, [], [], 0, {}
        self._cell = None
        self._count = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'img':
            self.images += 1
        elif tag == 'table' and attrs.get('id') == 'certificates':
            self.table = attrs
        elif tag == 'tr' and 'data-state' in attrs:
            self.rows.append({'host': attrs['data-host'], 'name': attrs['data-name'], 'state': attrs['data-state'], 'cells': {}})
        elif tag == 'td' and self.rows and 'data-key' in attrs:
            self._cell = attrs['data-key']
            self.rows[-1]['cells'][self._cell] = {'sort': attrs.get('data-sort'), 'text': ''}
        elif tag == 'div' and 'data-state' in attrs:
            self._count = attrs['data-state']
        elif tag == 'li' and 'data-kind' in attrs:
            self.failures.append((attrs['data-host'], attrs['data-kind']))
        elif tag == 'circle':
            self.dots.append((attrs.get('data-host'), attrs.get('data-name')))

    def handle_endtag(self, tag):
        if tag == 'td':
            self._cell = None
        elif tag == 'div':
            self._count = None

    def handle_data(self, data):
        if self._cell:
            self.rows[-1]['cells'][self._cell]['text'] += data
        elif self._count and data.strip().isdigit() and self._count not in self.counts:
            self.counts[self._count] = int(data.strip())


def test_report_playbook_in_a_browser(runner, lab, tmp_path):
    chromium = _chromium()
    web1, web2, web3 = tmp_path / 'web1', tmp_path / 'web2', tmp_path / 'web3'
    for directory in (web1, web2, web3):
        directory.mkdir()
    # Enroll on the lab server: three certificates now (one is revoked at once), then one that the server holds (202).
    run = runner.run(_play(tmp_path, 'enroll.yml', [_enroll_task(lab, web1, 'web'), _enroll_task(lab, web1, 'api'),
                                                    _enroll_task(lab, web3, 'lost')]))
    assert run.rc == 0, str(run)
    from cryptography import x509
    lab.revoke(x509.load_pem_x509_certificate((web3 / 'lost.crt').read_bytes()).serial_number, 'keyCompromise')
    lab.set_config(pending={'after_polls': 5})
    run = runner.run(_play(tmp_path, 'pending.yml', [_enroll_task(lab, web2, 'queued')]))
    assert run.rc == 0 and (web2 / 'queued.crt.pending.json').exists(), str(run)
    _expired_pair(web2)

    agent_state = web1 / 'agent-state'
    agent_state.mkdir()
    config = {'version': 1, 'state_dir': str(agent_state), 'certificates': [
        {'name': 'web', 'url': lab.url, 'path': str(web1 / 'web.crt'), 'private_key_path': str(web1 / 'web.key'),
         'chain_path': str(web1 / 'web-chain.pem')},
        {'name': 'api', 'url': lab.url, 'path': str(web1 / 'api.crt'), 'private_key_path': str(web1 / 'api.key'),
         'chain_path': str(web1 / 'api-chain.pem'), 'renew_before': '100%'},
    ]}
    (web1 / 'agent.json').write_text(json.dumps(config))
    (agent_state / 'state.json').write_text(json.dumps({'api': {
        'last_run': '2026-01-02T03:04:05Z', 'last_status': 'failed', 'failures': 3,
        'last_message': 'cannot connect to the EST server ' + HOSTILE}}))

    inventory = {'all': {'vars': {'ansible_python_interpreter': sys.executable}, 'hosts': {
        'web1': {'ansible_connection': 'local', 'est_report_agent_config': str(web1 / 'agent.json')},
        'web2': {'ansible_connection': 'local', 'est_report_paths': [
            {'path': str(web2 / 'old.crt'), 'name': 'old', 'private_key_path': str(web2 / 'old.key')},
            {'path': str(web2 / 'gone.crt'), 'name': 'gone'},
            {'path': str(web2 / 'queued.crt'), 'name': 'queued', 'private_key_path': str(web2 / 'queued.key')}]},
        'web3': {'ansible_connection': 'local', 'est_report_revocation': 'auto', 'est_report_paths': [
            {'path': str(web3 / 'lost.crt'), 'name': 'lost', 'chain_path': str(web3 / 'lost-chain.pem')}]},
        'broken': {'ansible_connection': 'local', 'est_report_agent_config': str(tmp_path / 'no-such-config.json')},
        'ghost': {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': _closed_port(),
                  'ansible_ssh_common_args': '-o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=no '
                                             '-o UserKnownHostsFile=/dev/null'},
    }}}
    runner.inventory = tmp_path / 'fleet.yml'
    runner.inventory.write_text(json.dumps(inventory))
    html_path, json_path = tmp_path / 'out' / 'fleet.html', tmp_path / 'out' / 'fleet.json'
    run = runner.run(PLAYBOOK, {'est_report_html_path': str(html_path), 'est_report_json_path': str(json_path)})
    assert run.rc == 0, str(run)

    expected = {('web1', 'web'): 'valid', ('web1', 'api'): 'renewal_due', ('web2', 'old'): 'expired',
                ('web2', 'gone'): 'missing', ('web2', 'queued'): 'pending', ('web3', 'lost'): 'revoked'}

    # The JSON.
    report = json.loads(json_path.read_text())
    assert {(c['host'], c['name']): c['state'] for c in report['certificates']} == expected
    assert report['counts'] == {'valid': 1, 'renewal_due': 1, 'expired': 1, 'missing': 1, 'pending': 1, 'invalid': 0, 'revoked': 1}
    assert {h['host']: h['status'] for h in report['hosts']} == {'web1': 'ok', 'web2': 'ok', 'web3': 'ok', 'broken': 'failed',
                                                                 'ghost': 'unreachable'}
    by_name = dict((c['name'], c) for c in report['certificates'])
    # Enrolled certificates are answered from the decision record, with key and chain vouched for by it.
    for name in ('web', 'api'):
        cert = by_name[name]
        assert cert['checked_by'] == 'record' and cert['key_match'] is True and cert['chain_ok'] is True, cert
        assert cert['subject'] == 'CN=%s.example.test' % name and cert['seconds_left'] > 29 * 86400
    assert by_name['api']['agent']['last_status'] == 'failed' and by_name['web']['agent'] is None
    assert by_name['old']['checked_by'] == 'x509' and by_name['old']['key_match'] is True and by_name['old']['seconds_left'] < 0
    assert by_name['queued']['pending']['attempts'] == 1 and by_name['queued']['subject'] is None
    lost = by_name['lost']
    assert lost['checked_by'] == 'x509' and lost['chain_ok'] is True and lost['revocation_error'] is None, lost
    assert lost['revocation']['status'] == 'revoked' and lost['revocation']['reason'] == 'keyCompromise', lost
    failures = dict(((f['host'], f['certificate'], f['kind']), f['message']) for f in report['failures'])
    assert 'no-such-config.json' in failures[('broken', None, 'failed')]
    assert ('ghost', None, 'unreachable') in failures
    assert HOSTILE in failures[('web1', 'api', 'agent')]

    # The page as the browser renders it, sorted by expiry through the URL fragment: a screenshot and the DOM
    # after its script ran (one browser start: about 5 s here).
    png = tmp_path / 'report.png'
    browser = _browser(chromium, tmp_path, '--screenshot=%s' % png, '--window-size=1280,900', '--dump-dom',
                       html_path.as_uri() + '#sort=not_after')
    assert browser.returncode == 0 and '<table' in browser.stdout and png.exists(), browser.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and struct.unpack('>II', data[16:24]) == (1280, 900)
    assert len(data) > 20000, len(data)  # a blank page compresses to a few kB
    dump = browser.stdout
    page = _Table()
    page.feed(dump)
    assert page.table.get('data-sorted-by') == 'not_after', 'the sort script did not run: %r' % page.table
    assert {(r['host'], r['name']): r['state'] for r in page.rows} == expected
    for state in ('valid', 'renewal_due', 'expired', 'missing', 'pending', 'invalid', 'revoked'):
        assert page.counts[state] == report['counts'][state], (state, page.counts)
    assert page.counts['hosts_failed'] == 2
    # Sorted by notAfter: the expired one first, the three enrolled ones, then those without a certificate.
    order = [(r['host'], r['name']) for r in page.rows]
    assert order[0] == ('web2', 'old') and set(order[1:4]) == {('web1', 'web'), ('web1', 'api'), ('web3', 'lost')}, order
    assert set(order[4:]) == {('web2', 'gone'), ('web2', 'queued')}, order
    stamps = [int(r['cells']['not_after']['sort']) for r in page.rows[:4]]
    assert stamps == sorted(stamps) and [r['cells']['not_after']['sort'] for r in page.rows[4:]] == ['', '']
    assert sorted(page.dots) == sorted([('web1', 'web'), ('web1', 'api'), ('web2', 'old'), ('web3', 'lost')])
    assert ('broken', 'failed') in page.failures and ('ghost', 'unreachable') in page.failures
    assert ('web1', 'agent') in page.failures and ('web3', 'revoked') in page.failures
    # The markup in the subject and the agent's message is text on the page, never an element.
    assert page.images == 0
    old_row = [r for r in page.rows if r['name'] == 'old'][0]
    assert old_row['cells']['subject']['text'].startswith('CN=') and 'img src' in old_row['cells']['subject']['text']
    assert re.search(r'<title>EST certificate report</title>', dump)
