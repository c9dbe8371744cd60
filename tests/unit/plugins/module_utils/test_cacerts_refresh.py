# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refreshing a stored CA bundle (RFC 7030 §4.1.2): when it may be kept, and what verifies the server otherwise."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import subprocess
import sys

import pytest

from ansible_collections.pki.est.plugins.module_utils import cacerts, codecs
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.plugins.module_utils.transport import ESTResponse
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

BASE = _pki.BASE_TIME
DAY = datetime.timedelta(days=1)
THIRTY_DAYS = ('seconds', 30 * 86400)


@pytest.fixture(scope='module')
def bundle():
    """A root valid 1000 days and an intermediate valid 100 days from BASE, as PEM bytes."""
    root, root_key = _pki.self_signed('Refresh Root CA', days=1000)
    sub, _key = _pki.issued('Refresh Issuing CA', root, root_key, days=100)
    return dict(root=root, sub=sub, pem=codecs.certs_to_pem([sub, root]).encode('ascii'))


def _pem(*certs):
    return codecs.certs_to_pem(list(certs)).encode('ascii')


# -- stored_bundle_state -------------------------------------------------------------------------------

def test_fresh_bundle_is_kept_and_due_is_the_earliest_certificate(bundle):
    state = cacerts.stored_bundle_state(bundle['pem'], THIRTY_DAYS, now=BASE + 10 * DAY)
    assert state.fresh and state.reason is None
    assert [_pki.fingerprint(c) for c in state.certs] == [_pki.fingerprint(bundle['sub']), _pki.fingerprint(bundle['root'])]
    # The intermediate ends first (day 100): due 30 days before that.
    assert state.due == BASE + 70 * DAY


def test_bundle_within_the_window_is_due(bundle):
    state = cacerts.stored_bundle_state(bundle['pem'], THIRTY_DAYS, now=BASE + 71 * DAY)
    assert not state.fresh
    assert state.due == BASE + 70 * DAY
    assert state.reason == 'due since %s' % (BASE + 70 * DAY).strftime('%Y-%m-%dT%H:%M:%SZ')
    assert len(state.certs) == 2


def test_window_edge_is_due(bundle):
    assert not cacerts.stored_bundle_state(bundle['pem'], THIRTY_DAYS, now=BASE + 70 * DAY).fresh
    assert cacerts.stored_bundle_state(bundle['pem'], THIRTY_DAYS, now=BASE + 70 * DAY - datetime.timedelta(seconds=1)).fresh


def test_only_the_root_far_from_expiry(bundle):
    root_only = _pem(bundle['root'])
    assert cacerts.stored_bundle_state(root_only, THIRTY_DAYS, now=BASE + 71 * DAY).fresh
    assert not cacerts.stored_bundle_state(root_only, ('seconds', 2000 * 86400), now=BASE).fresh  # window longer than the lifetime


@pytest.mark.parametrize('days, fresh', [(66, True), (67, False), (600, False)])
def test_share_of_the_lifetime_per_certificate(bundle, days, fresh):
    # 33% of each certificate's own lifetime: the intermediate (100 days) is due from day 67, the root (1000) from day 670.
    window = cacerts.parse_refresh_before('33%')
    state = cacerts.stored_bundle_state(bundle['pem'], window, now=BASE + days * DAY)
    assert state.fresh is fresh
    assert state.due == BASE + 67 * DAY


def test_share_follows_renewal_time(bundle):
    from ansible_collections.pki.est.plugins.module_utils.hoststate import renewal_time
    window = ('share', 0.5)
    state = cacerts.stored_bundle_state(bundle['pem'], window, now=BASE)
    assert state.due == min(renewal_time(bundle['sub'], window), renewal_time(bundle['root'], window))


def test_expired_bundle_is_due(bundle):
    state = cacerts.stored_bundle_state(bundle['pem'], ('seconds', 0), now=BASE + 2000 * DAY)
    assert not state.fresh and state.reason.startswith('due since')


@pytest.mark.parametrize('data, fragment', [
    (b'', 'holds no PEM certificate'),
    (b'\n\n', 'holds no PEM certificate'),
    (b'garbage \x00\xff not a certificate', 'holds no PEM certificate'),
    (b'-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n', 'holds no PEM certificate'),
    (b'-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n', 'unreadable certificate'),
])
def test_garbage_or_empty_file_is_never_fresh(data, fragment):
    state = cacerts.stored_bundle_state(data, THIRTY_DAYS, now=BASE)
    assert not state.fresh and state.certs == [] and state.due is None
    assert fragment in state.reason


def test_missing_file_is_never_fresh():
    state = cacerts.stored_bundle_state(None, THIRTY_DAYS, now=BASE)
    assert not state.fresh and state.reason == 'no bundle yet'


def test_pinned_certificate_must_be_in_the_bundle(bundle, pki):
    now = BASE + 10 * DAY
    pin = _pki.fingerprint(bundle['root'])
    assert cacerts.stored_bundle_state(bundle['pem'], THIRTY_DAYS, now=now, pinned=pin.upper()).fresh
    state = cacerts.stored_bundle_state(bundle['pem'], THIRTY_DAYS, now=now, pinned=_pki.fingerprint(pki.root))
    assert not state.fresh and 'expected_fingerprint' in state.reason


def test_default_now_is_the_current_time():
    root, _key = _pki.self_signed('Current CA', not_before=datetime.datetime.now(datetime.timezone.utc) - DAY, days=365)
    assert cacerts.stored_bundle_state(_pem(root), THIRTY_DAYS).fresh
    assert not cacerts.stored_bundle_state(_pem(root), ('seconds', 400 * 86400)).fresh


# -- parse_refresh_before ------------------------------------------------------------------------------

@pytest.mark.parametrize('value, window', [
    ('30d', ('seconds', 30 * 86400)), ('30', ('seconds', 30 * 86400)), (30, ('seconds', 30 * 86400)),
    ('12h', ('seconds', 12 * 3600)), ('600s', ('seconds', 600)), ('25%', ('share', 0.25)),
    (None, None), ('', None), ('  ', None),
])
def test_parse_refresh_before(value, window):
    assert cacerts.parse_refresh_before(value) == window


@pytest.mark.parametrize('value', ['soon', '30 days', '-1d', '150%'])
def test_parse_refresh_before_names_the_option(value):
    with pytest.raises(ESTError) as info:
        cacerts.parse_refresh_before(value)
    assert info.value.kind == 'invalid_input'
    assert info.value.message.startswith('refresh_before ') and 'renew_before' not in info.value.message


# -- refresh_trust ---------------------------------------------------------------------------------------

def test_trust_existing_uses_the_bundle_and_drops_pin_and_ca_path(bundle):
    trust = cacerts.refresh_trust('/etc/pki/est/ca.pem', bundle['pem'], '/etc/ssl/anchors.pem', 'ab' * 32, trust_existing=True)
    assert (trust.ca_path, trust.expected_fingerprint, trust.source, trust.note) == ('/etc/pki/est/ca.pem', None, 'dest', None)


def test_trust_existing_without_bundle_uses_ca_path_and_pin():
    trust = cacerts.refresh_trust('/x/ca.pem', None, '/etc/ssl/anchors.pem', 'ab' * 32, trust_existing=True)
    assert (trust.ca_path, trust.expected_fingerprint, trust.source) == ('/etc/ssl/anchors.pem', 'ab' * 32, 'ca_path')


def test_trust_existing_without_bundle_bootstraps_from_the_pin():
    trust = cacerts.refresh_trust('/x/ca.pem', None, None, 'ab' * 32, trust_existing=True)
    assert (trust.ca_path, trust.expected_fingerprint, trust.source) == (None, 'ab' * 32, 'expected_fingerprint')


def test_trust_existing_with_a_garbage_bundle_notes_it_and_bootstraps():
    trust = cacerts.refresh_trust('/x/ca.pem', b'garbage', None, 'ab' * 32, trust_existing=True)
    assert trust.source == 'expected_fingerprint'
    assert trust.note == 'the EST CA bundle at /x/ca.pem is not usable (the CA bundle holds no PEM certificate)'


@pytest.mark.parametrize('stored, start', [
    (None, 'No EST CA bundle at /x/ca.pem yet: '),
    (b'', 'The EST CA bundle at /x/ca.pem is not usable (the CA bundle holds no PEM certificate): '),
])
def test_trust_existing_with_nothing_to_trust_refuses(stored, start):
    with pytest.raises(ESTError) as info:
        cacerts.refresh_trust('/x/ca.pem', stored, None, None, trust_existing=True)
    assert info.value.kind == 'invalid_input'
    assert info.value.message.startswith(start)
    assert 'set expected_fingerprint' in info.value.message and 'or ca_path' in info.value.message
    assert 'never falls back to the system trust store' in info.value.message


@pytest.mark.parametrize('ca_path, pin, source', [
    ('/a.pem', None, 'ca_path'), ('/a.pem', 'ab' * 32, 'ca_path'), (None, 'ab' * 32, 'expected_fingerprint'), (None, None, None),
])
def test_without_trust_existing_everything_as_given(bundle, ca_path, pin, source):
    trust = cacerts.refresh_trust('/x/ca.pem', bundle['pem'], ca_path, pin)
    assert (trust.ca_path, trust.expected_fingerprint, trust.source) == (ca_path, pin, source)


# -- get_cacerts_with ----------------------------------------------------------------------------------

CONNECTION = dict(url='https://est.example.com', ca_label=None, ca_path='/ignored.pem', username=None, password=None,
                  client_cert_path=None, client_key_path=None, timeout=30)


class _Server:
    def __init__(self, answer):
        self.answer = answer
        self.built = []

    def transport(self, **kwargs):
        self.built.append(kwargs)
        answer = self.answer

        class _Transport:
            def get(self, operation, accept=None):
                if isinstance(answer, ESTError):
                    raise answer
                return ESTResponse(200, {'Content-Type': 'application/pkcs7-mime'}, codecs.encode_body(answer), 'https://x')

        return _Transport()


def test_get_cacerts_with_the_stored_bundle_validates_to_the_answers_roots(monkeypatch, pki):
    server = _Server(_pki.pkcs7_in_order([pki.intermediate, pki.root]))
    monkeypatch.setattr(cacerts, 'ESTTransport', server.transport)
    result = cacerts.get_cacerts_with(CONNECTION, cacerts.RefreshTrust('/x/ca.pem', None, 'dest'))
    assert [c['ca_path'] for c in server.built] == ['/x/ca.pem']
    assert result.bootstrapped is False and result.pinned is None and len(result.certs) == 2


def test_tls_failure_against_the_stored_bundle_says_so(monkeypatch):
    monkeypatch.setattr(cacerts, 'ESTTransport', _Server(ESTError('tls', 'certificate verify failed')).transport)
    with pytest.raises(ESTError) as info:
        cacerts.get_cacerts_with(CONNECTION, cacerts.RefreshTrust('/x/ca.pem', None, 'dest'))
    assert info.value.kind == 'tls'
    assert info.value.message.startswith('certificate verify failed; the server was verified against the EST CA bundle /x/ca.pem')
    assert str(info.value) == info.value.message


def test_tls_failure_against_ca_path_is_unchanged(monkeypatch):
    monkeypatch.setattr(cacerts, 'ESTTransport', _Server(ESTError('tls', 'certificate verify failed')).transport)
    with pytest.raises(ESTError) as info:
        cacerts.get_cacerts_with(CONNECTION, cacerts.RefreshTrust('/a.pem', None, 'ca_path'))
    assert info.value.message == 'certificate verify failed'


def test_the_transport_is_the_real_one_unless_replaced():
    from ansible_collections.pki.est.plugins.module_utils.transport import ESTTransport
    assert cacerts.ESTTransport is None  # imported on first use
    transport = cacerts._transport(url='https://est.example.com', ca_path=None)
    assert isinstance(transport, ESTTransport)


def test_deciding_freshness_does_not_import_requests(bundle, tmp_path):
    """A run that keeps its bundle pays for neither requests nor urllib3."""
    pem = tmp_path / 'ca.pem'
    pem.write_bytes(bundle['pem'])
    collections = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(cacerts.__file__)))))))
    code = ('import sys, datetime\n'
            'from ansible_collections.pki.est.plugins.module_utils import cacerts\n'
            'state = cacerts.stored_bundle_state(open(sys.argv[1], "rb").read(), cacerts.parse_refresh_before("30d"),\n'
            '                                    now=datetime.datetime(2025, 1, 11, tzinfo=datetime.timezone.utc))\n'
            'assert state.fresh\n'
            'print(sorted(m for m in ("requests", "urllib3") if m in sys.modules))\n')
    env = dict(os.environ, PYTHONPATH=collections)
    out = subprocess.run([sys.executable, '-c', code, str(pem)], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'
