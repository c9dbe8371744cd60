# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report filters: the fleet document from registered results, and its HTML (escaped, self-contained)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib
import re
from html.parser import HTMLParser

from ansible_collections.pki.est.plugins.filter.cert_report import cert_report, cert_report_html, timeline

NOW = '2030-01-10T00:00:00Z'
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def _cert(name, state, not_after=None, **extra):
    cert = {'name': name, 'path': '/etc/pki/%s.crt' % name, 'state': state, 'reasons': [] if state == 'valid' else ['why %s' % name],
            'subject': 'CN=%s' % name, 'subject_alt_name': [], 'not_before': '2030-01-01T00:00:00Z' if not_after else None,
            'not_after': not_after, 'seconds_left': None, 'key_match': True, 'chain_ok': None, 'agent': None}
    cert.update(extra)
    return cert


def _hostvars():
    return {
        'a': {'info': {'changed': False, 'certificates': [
            _cert('web', 'valid', '2030-03-01T00:00:00Z'),
            _cert('api', 'renewal_due', '2030-01-20T00:00:00Z', subject='CN=' + HOSTILE,
                  agent={'last_status': 'failed', 'last_message': HOSTILE, 'failures': 3, 'last_run': NOW})]}},
        'b': {'info': {'changed': False, 'failed_when_result': False, 'msg': 'cannot read the config /x.json', 'error_kind': 'invalid_input'}},
        'c': {'info': {'unreachable': True, 'msg': 'ssh: connect to host c port 22: Connection refused'}},
        'd': {},
        'e': {'info': {'changed': False, 'certificates': [_cert('gone', 'missing'), _cert('odd', 'brand_new_state', '2029-12-01T00:00:00Z')]}},
    }


def test_document():
    doc = cert_report(['a', 'b', 'c', 'd', 'e'], _hostvars(), 'info', now=NOW)
    assert doc['generated'] == NOW
    assert [(h['host'], h['status'], h['certificates']) for h in doc['hosts']] == [
        ('a', 'ok', 2), ('b', 'failed', 0), ('c', 'unreachable', 0), ('d', 'failed', 0), ('e', 'ok', 2)]
    assert doc['hosts'][1]['message'] == 'cannot read the config /x.json (invalid_input)'
    assert doc['counts'] == {'revoked': 0, 'expired': 0, 'invalid': 1, 'pending': 0, 'missing': 1, 'renewal_due': 1, 'valid': 1}
    assert doc['totals'] == {'hosts': 5, 'hosts_ok': 2, 'hosts_failed': 3, 'certificates': 4}
    kinds = [(f['host'], f['certificate'], f['kind']) for f in doc['failures']]
    assert kinds == [('c', None, 'unreachable'), ('b', None, 'failed'), ('d', None, 'failed'), ('e', 'odd', 'invalid'),
                     ('a', 'api', 'agent'), ('e', 'gone', 'missing'), ('a', 'api', 'renewal_due')]


def test_timeline_geometry():
    doc = cert_report(['a', 'e'], _hostvars(), 'info', now=NOW)
    geometry = timeline(doc)
    assert geometry['undated'] == 1
    assert [(d['host'], d['name']) for d in geometry['dots']] == [('e', 'odd'), ('a', 'api'), ('a', 'web')]
    xs = [d['x'] for d in geometry['dots']]
    assert xs == sorted(xs) and xs[0] < geometry['now_x'] < xs[1]
    assert geometry['ticks'][0]['x'] <= xs[0] and xs[-1] <= geometry['ticks'][-1]['x'] <= geometry['width']


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.scripts = []
        self.styles = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ('script', 'style') else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == 'script':
            self.scripts.append(data)
        elif self._in == 'style':
            self.styles.append(data)


def test_html_escapes_everything_and_needs_nothing_outside():
    page = cert_report_html(cert_report(['a', 'b', 'c', 'd', 'e'], _hostvars(), 'info', now=NOW), title='Fleet <b>')
    parsed = _Elements()
    parsed.feed(page)
    tags = [tag for tag, _attrs in parsed.tags]
    assert tags.count('script') == 1 and 'img' not in tags and 'b' in tags  # <b> only where the page itself uses it
    assert '<title>Fleet &lt;b&gt;</title>' in page
    assert 'alert(1)' not in parsed.scripts[0] and 'CN=' not in parsed.scripts[0]
    # Nothing is loaded from anywhere: no src or href attributes, no url() in the style.
    assert not any('src' in attrs or 'href' in attrs for _tag, attrs in parsed.tags)
    assert 'url(' not in parsed.styles[0] and '@import' not in parsed.styles[0]
    # The CSP allows exactly this script and this style.
    csp = [attrs['content'] for tag, attrs in parsed.tags if tag == 'meta' and attrs.get('http-equiv') == 'Content-Security-Policy'][0]

    def digest(text):
        return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')
    assert "default-src 'none'" in csp and 'script-src %s' % digest(parsed.scripts[0]) in csp
    assert 'style-src %s' % digest(parsed.styles[0]) in csp
    # Rows and counts.
    rows = [attrs for tag, attrs in parsed.tags if tag == 'tr' and 'data-state' in attrs]
    assert [(r['data-host'], r['data-name'], r['data-state']) for r in rows] == [
        ('a', 'web', 'valid'), ('a', 'api', 'renewal_due'), ('e', 'gone', 'missing'), ('e', 'odd', 'invalid')]
    assert re.search(r'data-state="valid"><b>1</b>', page) and re.search(r'data-state="hosts_failed"><b>3</b>', page)
    assert len([1 for tag, attrs in parsed.tags if tag == 'circle']) == 3


def test_empty_fleet_renders():
    page = cert_report_html(cert_report([], {}, 'info', now=NOW))
    assert 'Nothing: every host answered and every certificate is valid.' in page and '<circle' not in page
