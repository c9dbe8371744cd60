# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_cert_info's engine: one state per certificate, from the decision record when it vouches, else from X.509."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import sys
import types

import pytest

from ansible_collections.pki.est.plugins.module_utils import certreport, codecs, statecache
from ansible_collections.pki.est.plugins.module_utils.certinfo import cert_facts
from ansible_collections.pki.est.plugins.module_utils.codecs import certs_to_pem
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.plugins.module_utils.fileio import atomic_write
from ansible_collections.pki.est.plugins.module_utils.hoststate import Wanted, renewal_time
from ansible_collections.pki.est.plugins.module_utils.keys import private_key_pem
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

UTC = datetime.timezone.utc
T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
INSIDE = T0 + 10 * DAY  # the certificate runs 90 days


class Host:
    """Key, certificate (90 days from T0), chain and the record est_enroll leaves, in ``tmp_path``."""

    def __init__(self, tmp_path, pki):
        self.tmp_path = tmp_path
        self.cert_path = str(tmp_path / 'dev.crt')
        self.key_path = str(tmp_path / 'dev.key')
        self.chain_path = str(tmp_path / 'chain.pem')
        self.cert = _pki.leaf_for(_pki.name('dev.example'), pki.leaf_key.public_key(), pki.intermediate, pki.intermediate_key,
                                  not_before=T0, not_after=T0 + 90 * DAY)
        atomic_write(self.key_path, private_key_pem(pki.leaf_key), 0o600)
        atomic_write(self.cert_path, certs_to_pem([self.cert]))
        atomic_write(self.chain_path, certs_to_pem([pki.intermediate, pki.root]))
        wanted = Wanted(window=('share', 1 / 3.0))
        facts = cert_facts(self.cert, now=T0)
        facts['subject_alt_name'] = []
        atomic_write(statecache.cache_path(self.cert_path),
                     statecache.record(self.cert_path, self.key_path, self.chain_path, wanted, facts,
                                       renewal_time(self.cert, wanted.window)))

    def entry(self, **extra):
        entry = {'path': self.cert_path, 'name': 'dev', 'private_key_path': self.key_path, 'chain_path': self.chain_path}
        entry.update(extra)
        return certreport.entries_from_paths([entry])[0]


@pytest.fixture
def host(tmp_path, pki):
    return Host(tmp_path, pki)


@pytest.fixture
def no_x509(monkeypatch):
    """Any attempt to parse a certificate fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError('a certificate was parsed')
    monkeypatch.setattr(codecs, 'load_pem_certs', refuse)


def test_valid_from_the_record_without_parsing(host, no_x509):
    info = certreport.inspect_certificate(host.entry(), now=INSIDE)
    assert info['state'] == 'valid' and info['reasons'] == [], info
    assert info['checked_by'] == 'record' and info['key_match'] is True and info['chain_ok'] is True
    assert info['subject'] == host.cert.subject.rfc4514_string() and info['not_after'] == '2030-04-01T00:00:00Z'
    assert info['seconds_left'] == 80 * 86400 and info['renew_at'] == '2030-03-02T00:00:00Z'


def test_renew_before_is_the_entrys_not_the_records(host, no_x509):
    info = certreport.inspect_certificate(host.entry(renew_before='100%'), now=INSIDE)
    assert info['state'] == 'renewal_due' and info['checked_by'] == 'record'
    assert info['reasons'] == ['inside the renewal window since 2030-01-01T00:00:00Z']
    assert certreport.inspect_certificate(host.entry(renew_before='81d'), now=INSIDE)['state'] == 'renewal_due'
    assert certreport.inspect_certificate(host.entry(renew_before='79d'), now=INSIDE)['state'] == 'valid'


def test_the_same_as_parsing(host):
    """The record's answer and the certificate's answer agree field by field."""
    from_record = certreport.inspect_certificate(host.entry(), now=INSIDE)
    parsed = certreport.inspect_certificate(host.entry(), ca_path=host.chain_path, now=INSIDE)
    assert parsed['checked_by'] == 'x509'
    for key in ('state', 'subject', 'issuer', 'serial', 'sha256_fingerprint', 'not_before', 'not_after', 'seconds_left',
                'renew_at', 'key_match', 'chain_ok', 'subject_alt_name'):
        assert from_record[key] == parsed[key], key


def test_another_key_is_compared_for_real(host, pki):
    atomic_write(host.key_path, private_key_pem(pki.other_key), 0o600)
    info = certreport.inspect_certificate(host.entry(), now=INSIDE)
    assert info['checked_by'] == 'x509' and info['key_match'] is False and info['state'] == 'invalid'
    assert 'does not match the private key' in info['reasons'][0]


def test_a_changed_certificate_is_parsed(host, pki):
    atomic_write(host.cert_path, certs_to_pem([pki.other_leaf]))
    info = certreport.inspect_certificate(host.entry(), now=INSIDE)
    assert info['checked_by'] == 'x509' and info['subject'] == pki.other_leaf.subject.rfc4514_string()
    assert info['key_match'] is False


def test_chain_that_does_not_issue_it(host, pki):
    atomic_write(host.chain_path, certs_to_pem([pki.unrelated_root]))
    info = certreport.inspect_certificate(host.entry(), now=INSIDE)
    assert info['chain_ok'] is False and info['state'] == 'invalid' and 'does not validate' in info['chain_reason']


def test_expired_beats_everything_but_revoked(host, tmp_path):
    (tmp_path / 'dev.crt.pending.json').write_text(json.dumps({'operation': 'simplereenroll', 'csr': 'x', 'new_key': False,
                                                              'created': '2030-03-01T00:00:00Z', 'attempts': 2}))
    info = certreport.inspect_certificate(host.entry(), now=T0 + 100 * DAY)
    assert info['state'] == 'expired' and info['checked_by'] == 'x509' and info['seconds_left'] == -10 * 86400
    # Checked inside the certificate's validity: still issued by the CA of its chain, and its key matches.
    assert info['chain_ok'] is True and info['key_match'] is True
    assert info['pending'] == {'operation': 'simplereenroll', 'created': '2030-03-01T00:00:00Z', 'attempts': 2, 'retry_after': None}
    assert any('pending at the server' in reason for reason in info['reasons'])


def test_missing_and_pending(tmp_path):
    missing, pending = str(tmp_path / 'missing.crt'), str(tmp_path / 'first.crt')
    (tmp_path / 'first.crt.pending.json').write_text(json.dumps({'operation': 'simpleenroll', 'csr': 'PEM', 'new_key': True,
                                                                'created': '2030-01-01T00:00:00Z', 'attempts': 1}))
    result = certreport.report(certreport.entries_from_paths([missing, pending]), now=T0)
    assert [c['state'] for c in result['certificates']] == ['missing', 'pending']
    assert result['counts'] == {'valid': 0, 'renewal_due': 0, 'pending': 1, 'missing': 1, 'invalid': 0, 'expired': 0, 'revoked': 0}
    assert [c['name'] for c in result['certificates']] == ['missing.crt', 'first.crt']
    assert 'csr' not in result['certificates'][1]['pending']
    assert result['certificates'][0]['key_match'] is None and result['certificates'][0]['key_match_reason'] == 'no private_key_path given'


def test_garbage_is_invalid(tmp_path):
    (tmp_path / 'junk.crt').write_text('not a certificate')
    info = certreport.inspect_certificate(certreport.entries_from_paths([str(tmp_path / 'junk.crt')])[0], now=T0)
    assert info['state'] == 'invalid' and 'holds no PEM certificate' in info['reasons'][0]


def test_token_key_is_unknown_not_false(host):
    info = certreport.inspect_certificate(host.entry(private_key_path=None, private_key_uri='pkcs11:token=t;object=k'), now=INSIDE)
    assert info['key_match'] is None and 'PKCS#11 token' in info['key_match_reason'] and info['state'] == 'valid'


def _revocation(monkeypatch, status_for):
    module = types.ModuleType('revocation')
    module.status_for = status_for
    monkeypatch.setitem(sys.modules, 'ansible_collections.pki.est.plugins.module_utils.revocation', module)


def test_revoked(host, monkeypatch):
    seen = []

    def status_for(cert, issuers, mode='auto', timeout=10):
        seen.append((cert.serial_number, len(issuers), mode, timeout))
        return {'status': 'revoked', 'reason': 'keyCompromise', 'revocation_time': '2030-01-05T00:00:00Z', 'source': 'ocsp'}
    _revocation(monkeypatch, status_for)
    info = certreport.inspect_certificate(host.entry(), revocation='ocsp', revocation_timeout=3, now=INSIDE)
    assert seen == [(host.cert.serial_number, 2, 'ocsp', 3)]
    assert info['state'] == 'revoked' and info['checked_by'] == 'x509' and info['revocation']['source'] == 'ocsp'
    assert 'keyCompromise' in info['reasons'][-1]


def test_a_failed_check_is_not_good(host, monkeypatch):
    def status_for(*_args, **_kwargs):
        raise ESTError('connection', 'the OCSP responder did not answer')
    monkeypatch.setitem(sys.modules, 'ansible_collections.pki.est.plugins.module_utils.revocation', None)  # not installed
    info = certreport.inspect_certificate(host.entry(), revocation='auto', now=INSIDE)
    assert info['state'] == 'valid' and 'not available' in info['revocation_error']
    _revocation(monkeypatch, status_for)
    info = certreport.inspect_certificate(host.entry(renew_before='100%'), revocation='auto', now=INSIDE)
    assert info['state'] == 'renewal_due' and info['revocation'] is None
    assert info['revocation_error'] == 'the OCSP responder did not answer (connection)'
    assert info['reasons'][-1] == 'revocation could not be checked: the OCSP responder did not answer (connection)'


def test_agent_config_and_its_state(host, tmp_path):
    config = {'version': 1, 'state_dir': str(tmp_path / 'state'), 'certificates': [
        {'name': 'dev', 'url': 'https://est.example:8443', 'path': host.cert_path, 'private_key_path': host.key_path,
         'chain_path': host.chain_path, 'renew_before': '85d'}]}
    (tmp_path / 'agent.json').write_text(json.dumps(config))
    (tmp_path / 'state').mkdir()
    (tmp_path / 'state' / 'state.json').write_text(json.dumps({'dev': {'last_status': 'failed', 'last_message': 'boom',
                                                                       'failures': 2, 'secret': 'not copied'}}))
    entries, state = certreport.entries_from_agent_config(str(tmp_path / 'agent.json'))
    info = certreport.report(entries, agent_state=state, now=INSIDE)['certificates'][0]
    assert info['state'] == 'renewal_due' and info['agent']['last_status'] == 'failed' and info['agent']['failures'] == 2
    assert 'secret' not in info['agent']
    with pytest.raises(ESTError) as caught:
        certreport.entries_from_agent_config(str(tmp_path / 'none.json'))
    assert caught.value.kind == 'invalid_input' and 'none.json' in caught.value.message


@pytest.mark.parametrize('paths, message', [
    ([{'path': '/a', 'colour': 'red'}], 'unknown keys colour'),
    ([{'name': 'x'}], 'has no path'),
    ([42], 'must be a path'),
    (['/a/x.crt', '/b/x.crt'], 'used for two certificates'),
    ([{'path': '/a', 'private_key_path': '/k', 'private_key_uri': 'pkcs11:object=k'}], 'mutually exclusive'),
])
def test_bad_paths(paths, message):
    with pytest.raises(ESTError) as caught:
        certreport.entries_from_paths(paths)
    assert caught.value.kind == 'invalid_input' and message in caught.value.message


def test_bad_renew_before_names_the_certificate(host):
    with pytest.raises(ESTError) as caught:
        certreport.report([host.entry(renew_before='soon')])
    assert caught.value.kind == 'invalid_input' and caught.value.message.startswith('dev: renew_before')
