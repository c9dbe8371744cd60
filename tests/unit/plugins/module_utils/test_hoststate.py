# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host state: the renewal window, reading key/certificate/chain/pending files, and the decision."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json

import pytest

from ansible_collections.pki.est.plugins.module_utils import hoststate
from ansible_collections.pki.est.plugins.module_utils.codecs import certs_to_pem
from ansible_collections.pki.est.plugins.module_utils.csr import build_csr, csr_pem, eku_oids, key_usage_names, normalize_san, subject_pairs
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.plugins.module_utils.keys import generate_private_key, private_key_pem
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

UTC = datetime.timezone.utc
T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)
LIFETIME = datetime.timedelta(days=90)
DAY = datetime.timedelta(days=1)
SANS = ['DNS:dev.example', 'IP:192.0.2.10']


class Host:
    """A CA and a certificate for ``dev.example`` valid from T0 for 90 days, made with the engine's CSR code."""

    def __init__(self):
        self.ca, self.ca_key = _pki.self_signed('Host State CA')
        self.other_ca, self.other_ca_key = _pki.self_signed('Another CA')
        self.key = generate_private_key('ec-p256')
        self.pairs = subject_pairs('dev.example', {'O': 'Example'})
        req = build_csr(self.key, self.pairs, SANS, ['digitalSignature'], ['clientAuth'])
        self.req = req
        self.cert = _pki.cert_from_csr(req, self.ca, self.ca_key, not_before=T0, not_after=T0 + LIFETIME)
        self.other_key = generate_private_key('ec-p256')

    def wanted(self, **kwargs):
        values = dict(subject=self.pairs, sans=[normalize_san(s) for s in SANS], key_usage=key_usage_names(['digitalSignature']),
                      eku=eku_oids(['clientAuth']), key_type='ec-p256', window=('share', 1 / 3.0))
        values.update(kwargs)
        return hoststate.Wanted(**values)

    def state(self, **kwargs):
        state = hoststate.HostState()
        state.key, state.cert, state.chain = self.key, self.cert, [self.ca]
        for name, value in kwargs.items():
            setattr(state, name, value)
        return state


@pytest.fixture(scope='module')
def host():
    return Host()


# -- renew_before --------------------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (None, ('share', 1 / 3.0)),
    ('', ('share', 1 / 3.0)),
    (30, ('seconds', 30 * 86400.0)),
    ('30', ('seconds', 30 * 86400.0)),
    ('30d', ('seconds', 30 * 86400.0)),
    (' 7 D ', ('seconds', 7 * 86400.0)),
    ('1.5d', ('seconds', 1.5 * 86400)),
    ('12h', ('seconds', 12 * 3600.0)),
    ('90m', ('seconds', 90 * 60.0)),
    ('600s', ('seconds', 600.0)),
    ('33%', ('share', 0.33)),
    ('100%', ('share', 1.0)),
    ('0%', ('share', 0.0)),
])
def test_parse_renew_before(value, expected):
    kind, amount = hoststate.parse_renew_before(value)
    assert kind == expected[0]
    assert amount == pytest.approx(expected[1])


@pytest.mark.parametrize('value, fragment', [
    ('150%', 'at most 100%'),
    ('100.5%', 'at most 100%'),
    ('soon', "got 'soon'"),
    ('30 days', "got '30 days'"),
    ('-5d', "got '-5d'"),
    ('5w', "got '5w'"),
    ('%', "got '%'"),
])
def test_parse_renew_before_errors(value, fragment):
    with pytest.raises(ESTError) as info:
        hoststate.parse_renew_before(value)
    assert info.value.kind == 'invalid_input'
    assert fragment in info.value.message


def test_renewal_time(host):
    end = T0 + LIFETIME
    assert hoststate.renewal_time(host.cert, ('seconds', 30 * 86400)) == end - 30 * DAY
    assert hoststate.renewal_time(host.cert, hoststate.parse_renew_before('12h')) == end - datetime.timedelta(hours=12)
    assert hoststate.renewal_time(host.cert, ('share', 1 / 3.0)) == T0 + 60 * DAY
    assert hoststate.renewal_time(host.cert, hoststate.parse_renew_before('10%')) == end - 9 * DAY
    assert hoststate.renewal_time(host.cert, ('share', 1.0)) == T0
    assert hoststate.renewal_time(host.cert, ('share', 0.0)) == end


def test_wanted_defaults():
    wanted = hoststate.Wanted()
    assert (wanted.subject, wanted.sans, wanted.key_usage, wanted.eku, wanted.key_type) == ([], [], [], [], None)
    assert wanted.window == ('share', 1 / 3.0)


# -- inspect -------------------------------------------------------------------------------------------

def _paths(tmp_path):
    return str(tmp_path / 'dev.crt'), str(tmp_path / 'dev.key'), str(tmp_path / 'chain.pem')


def _write(path, data):
    with open(path, 'wb') as handle:
        handle.write(data if isinstance(data, bytes) else data.encode('utf-8'))


def _key_bytes(key):
    return private_key_pem(key)


def test_inspect_nothing_there(tmp_path):
    cert_path, key_path, chain_path = _paths(tmp_path)
    state = hoststate.inspect(cert_path, key_path, chain_path)
    assert (state.key, state.key_error, state.cert, state.cert_error, state.chain, state.pending, state.pending_key) == \
        (None, None, None, None, [], None, None)
    empty = hoststate.inspect(None, None)
    assert (empty.key, empty.cert, empty.pending) == (None, None, None)


def test_inspect_reads_everything(tmp_path, host, pki):
    cert_path, key_path, chain_path = _paths(tmp_path)
    _write(key_path, private_key_pem(host.key))
    _write(cert_path, certs_to_pem([host.cert, host.ca]))  # a full chain in the certificate file: the first one counts
    _write(chain_path, certs_to_pem([pki.intermediate, pki.root]))
    state = hoststate.inspect(cert_path, key_path, chain_path)
    assert state.key_error is None and state.cert_error is None
    assert _key_bytes(state.key) == _key_bytes(host.key)
    assert state.cert == host.cert
    assert state.chain == [pki.intermediate, pki.root]
    assert state.pending is None


def test_inspect_reports_corrupt_files(tmp_path, host):
    cert_path, key_path, chain_path = _paths(tmp_path)
    _write(key_path, b'-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n')
    _write(cert_path, b'this is no certificate\n')
    _write(chain_path, b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    state = hoststate.inspect(cert_path, key_path, chain_path)
    assert state.key is None and state.cert is None
    assert state.key_error.startswith('cannot read the private key %s' % key_path)
    assert state.cert_error == 'the certificate %s holds no PEM certificate' % cert_path
    assert state.chain == []


def test_pending_state_round_trip():
    record = hoststate.PendingState('simplereenroll', '-----BEGIN CERTIFICATE REQUEST-----\n...', True, '2030-01-02T03:04:05Z',
                                    retry_after=120, attempts=3)
    text = record.to_json()
    assert text.endswith('\n')
    assert json.loads(text) == {'operation': 'simplereenroll', 'csr': '-----BEGIN CERTIFICATE REQUEST-----\n...', 'new_key': True,
                                'created': '2030-01-02T03:04:05Z', 'retry_after': 120, 'attempts': 3}
    again = hoststate.PendingState.from_json(text.encode('utf-8'), 'x.pending.json')
    assert (again.operation, again.csr_pem, again.new_key, again.created, again.retry_after, again.attempts) == \
        ('simplereenroll', '-----BEGIN CERTIFICATE REQUEST-----\n...', True, '2030-01-02T03:04:05Z', 120, 3)
    minimal = hoststate.PendingState.from_json(b'{"operation": "simpleenroll", "csr": "c", "new_key": 0, "created": "t"}', 'p')
    assert (minimal.new_key, minimal.retry_after, minimal.attempts) == (False, None, 1)


def test_inspect_pending_with_new_key(tmp_path, host):
    cert_path, key_path, chain_path = _paths(tmp_path)
    paths = hoststate.pending_paths(cert_path)
    assert paths == {'state': cert_path + '.pending.json', 'key': cert_path + '.pending.key', 'staged': cert_path + '.pending.pem'}
    new_key = generate_private_key('ec-p256')
    pem = csr_pem(build_csr(new_key, host.pairs)).decode('ascii')
    _write(paths['state'], hoststate.PendingState('simpleenroll', pem, True, '2030-01-01T00:00:00Z', 30).to_json())
    _write(paths['key'], private_key_pem(new_key))
    state = hoststate.inspect(cert_path, key_path, chain_path)
    assert state.pending.csr_pem == pem
    assert state.pending.retry_after == 30
    assert _key_bytes(state.pending_key) == _key_bytes(new_key)
    assert state.key is None


def test_inspect_pending_with_old_key_needs_no_key_file(tmp_path, host):
    cert_path, key_path, chain_path = _paths(tmp_path)
    _write(hoststate.pending_paths(cert_path)['state'], hoststate.PendingState('simplereenroll', 'x', False, 't').to_json())
    state = hoststate.inspect(cert_path, key_path, chain_path)
    assert state.pending.operation == 'simplereenroll'
    assert state.pending_key is None


@pytest.mark.parametrize('content', [b'{not json', b'[]', b'{"operation": "simpleenroll"}', b'\xff\xfe',
                                     b'{"operation": "x", "csr": "c", "new_key": false, "created": "t", "attempts": "many"}'])
def test_inspect_unreadable_pending_file(tmp_path, content):
    cert_path, key_path, chain_path = _paths(tmp_path)
    state_path = hoststate.pending_paths(cert_path)['state']
    _write(state_path, content)
    with pytest.raises(ESTError) as info:
        hoststate.inspect(cert_path, key_path, chain_path)
    assert info.value.kind == 'host_state'
    assert ('the pending request file %s is unreadable' % state_path) in info.value.message
    assert 'remove it to start over' in info.value.message


def test_inspect_pending_new_key_missing(tmp_path):
    cert_path, key_path, chain_path = _paths(tmp_path)
    paths = hoststate.pending_paths(cert_path)
    _write(paths['state'], hoststate.PendingState('simpleenroll', 'x', True, 't').to_json())
    with pytest.raises(ESTError) as info:
        hoststate.inspect(cert_path, key_path, chain_path)
    assert info.value.kind == 'host_state'
    assert paths['key'] in info.value.message
    assert 'missing' in info.value.message


# -- decide --------------------------------------------------------------------------------------------

INSIDE = T0 + 10 * DAY   # valid, renewal window (last third) closed


def test_decide_current_certificate_is_none(host):
    assert hoststate.decide(host.state(), host.wanted(), now=INSIDE) == ('none', [])
    # No opinion at all, and no chain file: still nothing to do.
    assert hoststate.decide(host.state(chain=[]), hoststate.Wanted(), now=INSIDE) == ('none', [])
    # Wanting less than the certificate holds is fine too.
    assert hoststate.decide(host.state(), host.wanted(sans=['DNS:dev.example'], subject=[('2.5.4.3', 'dev.example')]),
                            now=INSIDE) == ('none', [])


def test_decide_pending_resumes_before_anything_else(host):
    pending = hoststate.PendingState('simpleenroll', 'csr', True, '2030-01-05T00:00:00Z')
    state = host.state(pending=pending, key_error='cannot read the key', cert=None)
    assert hoststate.decide(state, host.wanted(), now=INSIDE, force=True) == \
        ('resume', ['a request is pending at the server since 2030-01-05T00:00:00Z'])


def test_decide_unreadable_key_is_never_replaced(host):
    state = host.state(key=None, key_error='cannot read the private key /k.pem: not a key')
    for mode in ('fail', 'replace'):
        with pytest.raises(ESTError) as info:
            hoststate.decide(state, host.wanted(), now=INSIDE, invalid_certificate=mode)
        assert info.value.kind == 'key_store'
        assert info.value.message.startswith('cannot read the private key /k.pem: not a key; ')
        assert 'never replaced silently' in info.value.message


def test_decide_unreadable_certificate(host):
    state = host.state(cert=None, cert_error='the certificate /c.pem holds no PEM certificate')
    with pytest.raises(ESTError) as info:
        hoststate.decide(state, host.wanted(), now=INSIDE)
    assert info.value.kind == 'host_state'
    assert info.value.message == 'the certificate /c.pem holds no PEM certificate; set invalid_certificate=replace to enroll anew'
    assert hoststate.decide(state, host.wanted(), now=INSIDE, invalid_certificate='replace') == \
        ('enroll', ['the certificate /c.pem holds no PEM certificate'])


def test_decide_missing_files(host):
    assert hoststate.decide(host.state(cert=None), host.wanted(), now=INSIDE) == ('enroll', ['there is no certificate'])
    assert hoststate.decide(host.state(key=None, cert=None), host.wanted(), now=INSIDE) == ('enroll', ['there is no certificate'])
    assert hoststate.decide(host.state(key=None), host.wanted(), now=INSIDE) == ('enroll', ['there is no private key'])


def test_decide_key_mismatch(host):
    assert hoststate.decide(host.state(key=host.other_key), host.wanted(), now=INSIDE) == \
        ('enroll', ['the certificate does not match the private key'])


@pytest.mark.parametrize('change, reason', [
    (dict(subject=[('2.5.4.10', 'Other Org')]), 'the subject lacks 2.5.4.10=Other Org'),
    (dict(subject=[('2.5.4.3', 'other.example')]), 'the subject lacks 2.5.4.3=other.example'),
    (dict(sans=['DNS:dev.example', 'DNS:new.example', 'IP:192.0.2.99']), 'the subjectAltName lacks DNS:new.example, IP:192.0.2.99'),
    (dict(key_usage=['digital_signature', 'key_encipherment']), 'the key usage lacks key_encipherment'),
    (dict(eku=['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']), 'the extended key usage lacks 1.3.6.1.5.5.7.3.1'),
    (dict(key_type='rsa-2048'), 'the key is ec-p256, rsa-2048 is wanted'),
])
def test_decide_content_differences(host, change, reason):
    assert hoststate.decide(host.state(), host.wanted(**change), now=INSIDE) == ('enroll', [reason])
    # A difference means a new enrollment even when force and reenroll=auto would renew.
    assert hoststate.decide(host.state(), host.wanted(**change), now=INSIDE, force=True)[0] == 'enroll'


def test_decide_collects_all_differences(host):
    wanted = host.wanted(subject=[('2.5.4.10', 'X')], sans=['DNS:x.example'], key_type='ed25519')
    action, reasons = hoststate.decide(host.state(chain=[host.other_ca]), wanted, now=INSIDE)
    assert action == 'enroll'
    assert reasons == ['the subject lacks 2.5.4.10=X', 'the subjectAltName lacks DNS:x.example', 'the key is ec-p256, ed25519 is wanted',
                       'the certificate is not issued by the CA in the chain file']


def test_decide_chain(host):
    assert hoststate.decide(host.state(chain=[host.other_ca]), host.wanted(), now=INSIDE) == \
        ('enroll', ['the certificate is not issued by the CA in the chain file'])
    assert hoststate.decide(host.state(chain=[host.other_ca, host.ca]), host.wanted(), now=INSIDE) == ('none', [])


@pytest.mark.parametrize('now', [T0 + LIFETIME, T0 + LIFETIME + DAY, T0 - DAY])
def test_decide_expired_or_not_yet_valid(host, now):
    action, reasons = hoststate.decide(host.state(), host.wanted(), now=now, force=True)
    assert action == 'enroll'
    assert reasons == ['the certificate is expired (not after %s)' % (T0 + LIFETIME).isoformat()]


def test_decide_force(host):
    assert hoststate.decide(host.state(), host.wanted(), now=INSIDE, force=True) == ('reenroll', ['force is set'])
    assert hoststate.decide(host.state(), host.wanted(), now=INSIDE, force=True, reenroll='never') == ('enroll', ['force is set'])


def test_decide_renewal_window(host):
    due = T0 + 60 * DAY
    reason = 'the certificate is inside its renewal window since 2030-03-02T00:00:00Z'
    assert hoststate.decide(host.state(), host.wanted(), now=due - datetime.timedelta(seconds=1)) == ('none', [])
    assert hoststate.decide(host.state(), host.wanted(), now=due) == ('reenroll', [reason])
    assert hoststate.decide(host.state(), host.wanted(), now=due + DAY) == ('reenroll', [reason])
    assert hoststate.decide(host.state(), host.wanted(), now=due + DAY, reenroll='never') == ('enroll', [reason])
    # Another window moves the date.
    assert hoststate.decide(host.state(), host.wanted(window=('seconds', 5 * 86400)), now=due + DAY) == ('none', [])
    assert hoststate.decide(host.state(), host.wanted(window=('share', 1.0)), now=T0 + DAY)[0] == 'reenroll'


def test_decide_from_files(tmp_path, host):
    """inspect and decide together, the way the engine calls them."""
    cert_path, key_path, chain_path = _paths(tmp_path)
    _write(key_path, private_key_pem(host.key))
    _write(cert_path, certs_to_pem([host.cert]))
    _write(chain_path, certs_to_pem([host.ca]))
    state = hoststate.inspect(cert_path, key_path, chain_path)
    assert hoststate.decide(state, host.wanted(), now=INSIDE) == ('none', [])
    _write(key_path, private_key_pem(host.other_key))
    state = hoststate.inspect(cert_path, key_path, chain_path)
    assert hoststate.decide(state, host.wanted(), now=INSIDE) == ('enroll', ['the certificate does not match the private key'])
