# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for playbooks/report.yml: the fleet's est_cert_info results as one report, and that report as HTML.

``cert_report`` turns each host's registered est_cert_info result (or its failure, or its
unreachability) into one document: hosts, certificates, counts by state, and what fails and
why. ``cert_report_html`` renders that document as one self-contained page - inline CSS, an
inline SVG timeline of expiries and a small inline script that sorts the table - that opens
from disk on a machine without network.

Certificate subjects, SANs, reasons and agent messages are attacker-influenced text: every
value goes through Jinja2's autoescaping, no value is ever put into the script, and a
Content-Security-Policy allows only this page's own script and style (by their SHA-256), so
markup that slipped through anyway could not run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import hashlib

from ansible.errors import AnsibleFilterError

# The module's states, worst first (plugins/module_utils/certreport.py PRECEDENCE).
STATES = ('revoked', 'expired', 'invalid', 'pending', 'missing', 'renewal_due', 'valid')
_TIME = '%Y-%m-%dT%H:%M:%SZ'
_CERT_KEYS = ('name', 'path', 'state', 'reasons', 'checked_by', 'subject', 'subject_alt_name', 'issuer', 'serial',
              'sha256_fingerprint', 'not_before', 'not_after', 'seconds_left', 'renew_at', 'key_match', 'key_match_reason',
              'chain_ok', 'chain_reason', 'pending', 'revocation', 'revocation_error', 'agent')


def _utc(text):
    try:
        return datetime.datetime.strptime(str(text), _TIME).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def _host_result(hostvars, host, var):
    try:
        return hostvars[host][var]
    except Exception:  # pylint: disable=broad-except
        # KeyError, or Ansible's own error for an undefined variable: the host never ran the task.
        return None


def cert_report(hosts, hostvars, var='est_cert_info', now=None):
    """The report document for ``hosts`` from the registered variable ``var`` of each (see the module docs)."""
    if isinstance(hosts, str) or not hasattr(hosts, '__iter__'):
        raise AnsibleFilterError('cert_report expects the list of hosts (ansible_play_hosts_all), got %r' % (hosts,))
    now = _utc(now) if now else datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    document = {'generated': now.strftime(_TIME), 'hosts': [], 'certificates': [], 'failures': [],
                'counts': dict((state, 0) for state in STATES)}
    for host in hosts:
        host = str(host)
        result = _host_result(hostvars, host, var)
        entry = {'host': host, 'status': 'ok', 'message': None, 'certificates': 0}
        document['hosts'].append(entry)
        if not isinstance(result, dict) or result.get('skipped'):
            entry.update(status='failed', message='no est_cert_info result (the task did not run on this host)')
        elif result.get('unreachable'):
            entry.update(status='unreachable', message=str(result.get('msg') or 'unreachable'))
        elif result.get('failed') or 'certificates' not in result:
            # failed_when (the playbook keeps going) clears 'failed'; a result without certificates is a failure.
            kind = result.get('error_kind')
            entry.update(status='failed', message='%s%s' % (result.get('msg') or 'failed', ' (%s)' % kind if kind else ''))
        if entry['status'] != 'ok':
            document['failures'].append({'host': host, 'certificate': None, 'kind': entry['status'], 'message': entry['message']})
            continue
        for info in result.get('certificates') or []:
            cert = dict((key, info.get(key)) for key in _CERT_KEYS)
            cert['host'] = host
            if cert['state'] not in document['counts']:
                cert['state'] = 'invalid'  # a module of another version: never let it look valid
            document['certificates'].append(cert)
            document['counts'][cert['state']] += 1
            entry['certificates'] += 1
            if cert['state'] != 'valid':
                document['failures'].append({'host': host, 'certificate': cert['name'], 'kind': cert['state'],
                                             'message': '; '.join(cert['reasons'] or []) or cert['state']})
            agent = cert['agent'] or {}
            if agent.get('last_status') == 'failed':
                document['failures'].append({'host': host, 'certificate': cert['name'], 'kind': 'agent',
                                             'message': 'the renewal agent failed %s time(s) in a row, last at %s: %s'
                                             % (agent.get('failures'), agent.get('last_run'), agent.get('last_message'))})
    # Worst first: hosts without a result, then certificates by state (the agent's failures after the invalid ones).
    order = ('unreachable', 'failed', 'revoked', 'expired', 'invalid', 'agent', 'pending', 'missing', 'renewal_due')
    document['failures'].sort(key=lambda failure: order.index(failure['kind']))
    document['totals'] = {'hosts': len(document['hosts']),
                          'hosts_ok': sum(1 for h in document['hosts'] if h['status'] == 'ok'),
                          'hosts_failed': sum(1 for h in document['hosts'] if h['status'] != 'ok'),
                          'certificates': len(document['certificates'])}
    return document


# -- the timeline ----------------------------------------------------------------------------------------------

# SVG user units: the drawing's width, its margins, and the height of one lane of dots.
_WIDTH = 1000
_MARGIN = 20
_TOP = 24
_LANE = 16


def timeline(document):
    """Geometry of the expiry timeline: ``{'width', 'height', 'now_x', 'ticks': [...], 'dots': [...], 'undated': n}``."""
    now = _utc(document['generated'])
    dated = [(t, c) for t, c in ((_utc(c.get('not_after')), c) for c in document['certificates']) if t is not None]
    dated.sort(key=lambda pair: (pair[0], pair[1]['host'], str(pair[1]['name'])))
    start = min([now] + [t for t, _c in dated]) - datetime.timedelta(days=1)
    end = max([now + datetime.timedelta(days=7)] + [t for t, _c in dated]) + datetime.timedelta(days=1)
    span = (end - start).total_seconds()
    usable = _WIDTH - 2 * _MARGIN

    def x_of(moment):
        return round(_MARGIN + usable * (moment - start).total_seconds() / span, 1)

    lanes = max(1, min(len(dated), 12))
    height = _TOP + lanes * _LANE + 30
    dots = [{'x': x_of(t), 'y': _TOP + (i % lanes) * _LANE + _LANE // 2, 'host': c['host'], 'name': c['name'],
             'state': c['state'], 'not_after': c['not_after']} for i, (t, c) in enumerate(dated)]
    ticks = []
    for i in range(6):
        moment = start + datetime.timedelta(seconds=span * i / 5)
        ticks.append({'x': x_of(moment), 'label': moment.strftime('%Y-%m-%d'), 'anchor': ('start', 'middle', 'end')[(i > 0) + (i == 5)]})
    return {'width': _WIDTH, 'height': height, 'axis_y': height - 22, 'now_x': x_of(now), 'ticks': ticks, 'dots': dots,
            'undated': len(document['certificates']) - len(dated)}


# -- HTML ----------------------------------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#667}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}
.count{border:1px solid #ccd;border-radius:6px;padding:6px 12px;min-width:90px}
.count b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #dde;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f4f8;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.reasons{max-width:420px}td.subject{word-break:break-all}
.state{border-radius:4px;padding:1px 6px;color:#fff;white-space:nowrap}
.st-valid{background:#2e7d32;fill:#2e7d32}.st-renewal_due{background:#b7791f;fill:#b7791f}
.st-pending{background:#3b6fb6;fill:#3b6fb6}.st-missing{background:#6b6b6b;fill:#6b6b6b}
.st-invalid{background:#8e24aa;fill:#8e24aa}.st-expired{background:#c62828;fill:#c62828}
.st-revoked{background:#4a0d0d;fill:#4a0d0d}
.st-unreachable,.st-failed,.st-agent{background:#c62828}
svg text{font-size:11px;fill:#445}svg .axis{stroke:#99a}svg .now{stroke:#c62828;stroke-dasharray:4 3}
ul.failures li{margin:3px 0}
"""

# Sorts the table by the clicked column, or by the URL fragment (#sort=not_after, #sort=-state for descending).
# It reads only data-* attributes of the table; no report data is ever written into this script.
_SCRIPT = """
(function () {
  'use strict';
  var table = document.getElementById('certificates');
  if (!table) { return; }
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var rows = Array.prototype.slice.call(body.rows);
  rows.forEach(function (row, index) { row.setAttribute('data-index', String(index)); });
  function cellValue(row, key, numeric) {
    var cell = row.querySelector('td[data-key="' + key + '"]');
    var text = cell ? cell.getAttribute('data-sort') : '';
    if (!numeric) { return text === null ? '' : text.toLowerCase(); }
    return text === '' || text === null ? null : parseFloat(text);
  }
  function sortBy(key, descending) {
    var head = heads.filter(function (th) { return th.getAttribute('data-key') === key; })[0];
    if (!head) { return; }
    var numeric = head.getAttribute('data-type') === 'num';
    var sorted = Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = cellValue(a, key, numeric), y = cellValue(b, key, numeric), order = 0;
      if (x === null || y === null) {
        order = x === y ? 0 : (x === null ? 1 : -1);
      } else {
        order = x < y ? -1 : (x > y ? 1 : 0);
        if (descending) { order = -order; }
      }
      return order || (parseInt(a.getAttribute('data-index'), 10) - parseInt(b.getAttribute('data-index'), 10));
    });
    sorted.forEach(function (row) { body.appendChild(row); });
    heads.forEach(function (th) { th.removeAttribute('aria-sort'); });
    head.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    table.setAttribute('data-sorted-by', (descending ? '-' : '') + key);
  }
  function fromFragment() {
    var match = /(?:^#|&)sort=(-?)([a-z_]+)/.exec(window.location.hash);
    if (match) { sortBy(match[2], match[1] === '-'); }
  }
  heads.forEach(function (th) {
    th.addEventListener('click', function () {
      var key = th.getAttribute('data-key');
      sortBy(key, table.getAttribute('data-sorted-by') === key);
    });
  });
  window.addEventListener('hashchange', fromFragment);
  fromFragment();
}());
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; script-src '{{ script_hash }}'; style-src '{{ style_hash }}'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ style }}</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="muted">Generated {{ report.generated }} -
 {{ report.totals.hosts }} host(s), {{ report.totals.hosts_failed }} without a result, {{ report.totals.certificates }} certificate(s).</p>

<h2>Certificates by state</h2>
<div class="counts" id="counts">
{%- for state in states %}
<div class="count" data-state="{{ state }}"><b>{{ report.counts[state] }}</b><span class="state st-{{ state }}">{{ state }}</span></div>
{%- endfor %}
<div class="count" data-state="hosts_failed"><b>{{ report.totals.hosts_failed }}</b>hosts failed or unreachable</div>
</div>

<h2>Expiry timeline</h2>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {{ tl.width }} {{ tl.height }}"
 role="img" aria-label="Certificate expiry dates">
<line class="axis" x1="{{ tl.ticks[0].x }}" y1="{{ tl.axis_y }}" x2="{{ tl.ticks[-1].x }}" y2="{{ tl.axis_y }}"/>
{%- for tick in tl.ticks %}
<line class="axis" x1="{{ tick.x }}" y1="{{ tl.axis_y }}" x2="{{ tick.x }}" y2="{{ tl.axis_y + 4 }}"/>
<text x="{{ tick.x }}" y="{{ tl.axis_y + 16 }}" text-anchor="{{ tick.anchor }}">{{ tick.label }}</text>
{%- endfor %}
<line class="now" x1="{{ tl.now_x }}" y1="8" x2="{{ tl.now_x }}" y2="{{ tl.axis_y }}"/><text x="{{ tl.now_x }}" y="10" text-anchor="middle">now</text>
{%- for dot in tl.dots %}
<circle class="dot st-{{ dot.state }}" cx="{{ dot.x }}" cy="{{ dot.y }}" r="5" data-host="{{ dot.host }}" data-name="{{ dot.name }}">
<title>{{ dot.host }} / {{ dot.name }}: {{ dot.state }}, expires {{ dot.not_after }}</title></circle>
{%- endfor %}
</svg>
{%- if tl.undated %}
<p class="muted">{{ tl.undated }} certificate(s) without a certificate on disk (missing, or pending a first enrollment) are not on the timeline.</p>
{%- endif %}

<h2>What is failing and why</h2>
{%- if report.failures %}
<ul class="failures" id="failures">
{%- for failure in report.failures %}
<li data-host="{{ failure.host }}" data-kind="{{ failure.kind }}"><span class="state st-{{ failure.kind }}">{{ failure.kind }}</span>
 <b>{{ failure.host }}</b>{% if failure.certificate is not none %} / {{ failure.certificate }}{% endif %}: {{ failure.message }}</li>
{%- endfor %}
</ul>
{%- else %}
<p id="failures">Nothing: every host answered and every certificate is valid.</p>
{%- endif %}

<h2>Certificates</h2>
<p class="muted">Click a column to sort; link to a sorted view with <code>#sort=not_after</code> (<code>#sort=-not_after</code> descending).</p>
<table id="certificates">
<thead><tr>
{%- for key, label, type in columns %}
<th data-key="{{ key }}" data-type="{{ type }}">{{ label }}</th>
{%- endfor %}
</tr></thead>
<tbody>
{%- for cert in report.certificates %}
<tr data-host="{{ cert.host }}" data-name="{{ cert.name }}" data-state="{{ cert.state }}">
<td data-key="host" data-sort="{{ cert.host }}">{{ cert.host }}</td>
<td data-key="name" data-sort="{{ cert.name }}" title="{{ cert.path }}">{{ cert.name }}</td>
<td data-key="state" data-sort="{{ rank[cert.state] }}"><span class="state st-{{ cert.state }}">{{ cert.state }}</span></td>
<td data-key="subject" data-sort="{{ cert.subject or '' }}" class="subject">{{ cert.subject or '' }}
{%- if cert.subject_alt_name %}<br><span class="muted">{{ cert.subject_alt_name | join(', ') }}</span>{% endif %}</td>
<td data-key="not_after" data-sort="{{ epoch(cert.not_after) }}">{{ cert.not_after or '' }}</td>
<td data-key="seconds_left" data-sort="{{ '' if cert.seconds_left is none else cert.seconds_left }}">{{ days(cert.seconds_left) }}</td>
<td data-key="key_match" data-sort="{{ yesno(cert.key_match) }}" title="{{ cert.key_match_reason or '' }}">{{ yesno(cert.key_match) }}</td>
<td data-key="chain_ok" data-sort="{{ yesno(cert.chain_ok) }}" title="{{ cert.chain_reason or '' }}">{{ yesno(cert.chain_ok) }}</td>
{%- set agent = cert.agent or {} %}
<td data-key="agent" data-sort="{{ agent.get('last_status') or '' }}" title="{{ agent.get('last_message') or '' }}">{{ agent.get('last_status') or '' }}</td>
<td data-key="reasons" data-sort="{{ cert.reasons | join('; ') }}" class="reasons">{{ cert.reasons | join('; ') }}</td>
</tr>
{%- endfor %}
</tbody>
</table>
<script>{{ script }}</script>
</body>
</html>
"""

_COLUMNS = (('host', 'Host', 'text'), ('name', 'Certificate', 'text'), ('state', 'State', 'num'), ('subject', 'Subject', 'text'),
            ('not_after', 'Expires (UTC)', 'num'), ('seconds_left', 'Days left', 'num'), ('key_match', 'Key', 'text'),
            ('chain_ok', 'Chain', 'text'), ('agent', 'Agent', 'text'), ('reasons', 'Reasons', 'text'))


def _csp_hash(text):
    return 'sha256-' + base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')


def _epoch(text):
    moment = _utc(text) if text else None
    return '' if moment is None else str(int(moment.timestamp()))


def _days(seconds):
    if seconds is None:
        return ''
    return '%.1f' % (int(seconds) / 86400.0)


def _yesno(value):
    return {True: 'yes', False: 'no'}.get(value, '')


def cert_report_html(document, title='EST certificate report'):
    """``document`` (from :func:`cert_report`) as one self-contained HTML page."""
    import jinja2
    from markupsafe import Markup
    if not isinstance(document, dict) or 'certificates' not in document:
        raise AnsibleFilterError('cert_report_html expects the document the cert_report filter makes')
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = environment.from_string(_TEMPLATE)
    # The script and style go in as Markup: autoescaping would turn their quotes into entities.
    return page.render(report=document, title=title, states=STATES, columns=_COLUMNS, tl=timeline(document),
                       rank=dict((state, index) for index, state in enumerate(STATES)),
                       epoch=_epoch, days=_days, yesno=_yesno,
                       style=Markup(_STYLE), script=Markup(_SCRIPT),
                       style_hash=_csp_hash(_STYLE), script_hash=_csp_hash(_SCRIPT))


class FilterModule(object):
    def filters(self):
        return {'cert_report': cert_report, 'cert_report_html': cert_report_html}
