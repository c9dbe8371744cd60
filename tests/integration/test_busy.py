# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Busy answers (503 / 429) on the paths test_busy_server.py does not take: the GETs of est_cacerts and
est_csrattrs, est_serverkeygen, est_fullcmc, a linked request (RFC 7030 3.5), and a Retry-After longer
than what is left of wait_timeout. The lab's throttle slots are held by tests/support/throttling.py, so
each test meets exactly the refusals it asks for, however fast the machine is."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from support.throttling import held_slots

PASSWORD = 's3cret-Pa55'


def _throttle(lab, **settings):
    # A held slot waits for a body that never comes: a long socket_timeout keeps the lab from dropping it first.
    lab.set_config(throttle=dict({'max_in_flight': 1, 'retry_after': 1}, **settings), socket_timeout=120)


def _enroll_args(lab, work, **extra):
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, path=str(work / 'host.crt'),
                private_key_path=str(work / 'host.key'), chain_path=str(work / 'chain.pem'),
                common_name='app.example.test', subject_alt_name=['DNS:app.example.test'])
    args.update(extra)
    return args


def _pair_matches(work):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key((work / 'host.key').read_bytes(), None)
    cert = x509.load_pem_x509_certificate((work / 'host.crt').read_bytes())
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def _log(lab):
    return [(r['op'], r['status'], r['fault']) for r in lab.requests()]


def _check_waits(out, refused):
    # Each refused request was sent again: one retry per refusal, each at least the Retry-After (1 s).
    assert refused >= 1 and out['retries'] == refused, (out, refused)
    assert refused * 1.0 <= out['waited_seconds'] < 60, out


def test_the_gets_wait_for_a_busy_server(runner, lab, tmp_path):
    _throttle(lab)
    lab.clear_requests()
    with held_slots(lab, 1, release_after_refusals=2):
        out = runner.call('pki.est.est_cacerts', dict(url=lab.url, ca_path=lab.ca_path, dest=str(tmp_path / 'ca.pem'),
                                                      wait_timeout=30))[0]
    _check_waits(out, lab.throttle_stats()['refused'])
    assert out['changed'] and (tmp_path / 'ca.pem').read_text().startswith('-----BEGIN CERTIFICATE-----'), out
    assert _log(lab) == [('cacerts', 503, 'throttled')] * out['retries'] + [('cacerts', 200, None)]
    lab.clear_throttle_stats()
    with held_slots(lab, 1, release_after_refusals=1):
        out = runner.call('pki.est.est_csrattrs', dict(url=lab.url, ca_path=lab.ca_path, wait_timeout=30))[0]
    _check_waits(out, lab.throttle_stats()['refused'])
    assert not out.get('failed') and out['attributes'] == [], out


@pytest.mark.parametrize('module, extra', [
    ('pki.est.est_serverkeygen', {}),
    # RFC 7030 3.5: each attempt is a new TLS connection whose tls-unique the new CSR carries; the lab checks it.
    ('pki.est.est_enroll', {'pop_linking': 'always'}),
])
def test_serverkeygen_and_a_linked_request_wait_for_a_busy_server(runner, lab, tmp_path, module, extra):
    work = tmp_path / 'work'
    operation = 'serverkeygen' if module.endswith('serverkeygen') else 'simpleenroll'
    if extra.get('pop_linking'):
        lab.set_config(require_tls_unique=True)
    _throttle(lab, status=429)
    lab.clear_requests()
    with held_slots(lab, 1, release_after_refusals=2):
        out = runner.call(module, _enroll_args(lab, work, wait_timeout=60, **extra))[0]
    assert out.get('action') == 'enrolled', out
    _check_waits(out, lab.throttle_stats()['refused'])
    assert _log(lab) == [(operation, 429, 'throttled')] * out['retries'] + [(operation, 200, None)]
    assert _pair_matches(work)


def test_fullcmc_waits_for_a_busy_server(runner, lab, tmp_path):
    work = tmp_path / 'work'
    # One request every 5 s: the /cacerts full CMC asks first takes the token, the PKIData posted right after
    # (a key and a signature later, well within 5 s even on a loaded machine) is refused until the next one.
    _throttle(lab, max_in_flight=None, per_second=0.2, burst=1)
    lab.clear_requests()
    out = runner.call('pki.est.est_fullcmc', _enroll_args(lab, work, wait_timeout=60))[0]
    assert out.get('action') == 'enrolled' and out['operation'] == 'fullcmc', out
    _check_waits(out, lab.throttle_stats()['refused'])
    assert _log(lab) == [('cacerts', 200, None)] + [('fullcmc', 503, 'throttled')] * out['retries'] + [('fullcmc', 200, None)]
    assert _pair_matches(work)


def test_a_retry_after_beyond_the_budget_fails_at_once(runner, lab, tmp_path):
    work = tmp_path / 'work'
    _throttle(lab, retry_after=120, status=429)
    with held_slots(lab, 1):
        out = runner.call('pki.est.est_enroll', _enroll_args(lab, work, wait_timeout=30))[0]
    # Failed on the first answer without sleeping: every sleep would be counted in waited_seconds.
    assert out.get('failed') and out['error_kind'] == 'busy' and out['http_status'] == 429, out
    assert out['retry_after'] == 120 and out['retries'] == 0 and out['waited_seconds'] == 0, out
    assert '120' in out['msg'] and 'wait_timeout' in out['msg'], out['msg']
    assert out['changed'] is False and not work.exists(), out
    assert lab.throttle_stats()['refused'] == 1
