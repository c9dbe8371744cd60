# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decision record beside the certificate: trusted only while nothing it describes has changed."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import json
import os

import pytest

from ansible_collections.pki.est.plugins.module_utils import statecache
from ansible_collections.pki.est.plugins.module_utils.certinfo import cert_facts
from ansible_collections.pki.est.plugins.module_utils.codecs import certs_to_pem
from ansible_collections.pki.est.plugins.module_utils.fileio import atomic_write
from ansible_collections.pki.est.plugins.module_utils.hoststate import Wanted, renewal_time
from ansible_collections.pki.est.plugins.module_utils.keys import private_key_pem
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

UTC = datetime.timezone.utc
T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
BEFORE_WINDOW = T0 + 10 * DAY   # the certificate below runs 90 days; the last third is the window


class Host:
    """Key, certificate, chain and a fresh record in ``tmp_path``."""

    def __init__(self, tmp_path, pki):
        self.pki = pki
        self.cert_path = str(tmp_path / 'dev.crt')
        self.key_path = str(tmp_path / 'dev.key')
        self.chain_path = str(tmp_path / 'chain.pem')
        self.wanted = Wanted(subject=[('2.5.4.3', 'dev.example')], sans=['DNS:dev.example'], key_type='ec-p256')
        self.cert = _pki.leaf_for(_pki.name('dev.example'), pki.leaf_key.public_key(), pki.intermediate, pki.intermediate_key,
                                  not_before=T0, not_after=T0 + 90 * DAY)
        atomic_write(self.key_path, private_key_pem(pki.leaf_key), 0o600)
        atomic_write(self.cert_path, certs_to_pem([self.cert]))
        atomic_write(self.chain_path, certs_to_pem([pki.intermediate, pki.root]))
        self.facts = cert_facts(self.cert, now=T0)
        self.write_record()

    def write_record(self, wanted=None):
        text = statecache.record(self.cert_path, self.key_path, self.chain_path, wanted or self.wanted, self.facts,
                                 renewal_time(self.cert, (wanted or self.wanted).window))
        atomic_write(statecache.cache_path(self.cert_path), text)
        return text

    def lookup(self, now=BEFORE_WINDOW, wanted=None, chain_path=True):
        return statecache.lookup(self.cert_path, self.key_path, self.chain_path if chain_path else None, wanted or self.wanted, now=now)


@pytest.fixture
def host(tmp_path, pki):
    return Host(tmp_path, pki)


def test_record_contents(host):
    record = json.loads(host.write_record())
    assert record['renew_at'] == '2030-03-02T00:00:00Z'
    assert record['facts'] == host.facts
    snap = record['snapshot']
    assert snap['version'] == statecache.VERSION
    with open(host.cert_path, 'rb') as handle:
        assert snap['cert_sha256'] == hashlib.sha256(handle.read()).hexdigest()
    assert len(snap['cert_sha256']) == 64 and snap['chain_sha256'] != snap['cert_sha256']
    stat = os.stat(host.key_path)
    assert snap['key'] == [stat.st_ino, stat.st_size, stat.st_mtime_ns]
    assert statecache.cache_path(host.cert_path) == host.cert_path + '.est.json'
    # Public facts only: nothing of the key file.
    with open(host.key_path, 'rb') as handle:
        key_text = handle.read().decode('ascii')
    text = host.write_record()
    assert 'PRIVATE' not in text
    assert all(line not in text for line in key_text.splitlines()[1:-1])


def test_lookup_unchanged_returns_facts(host):
    facts = host.lookup()
    expected = dict(host.facts, days_remaining=80)
    assert facts == expected
    assert host.lookup(now=T0 + 60 * DAY - datetime.timedelta(seconds=1))['days_remaining'] == 30


def test_lookup_after_certificate_changes(host, pki):
    other = _pki.leaf_for(_pki.name('dev.example'), pki.leaf_key.public_key(), pki.intermediate, pki.intermediate_key,
                          not_before=T0, not_after=T0 + 90 * DAY)
    atomic_write(host.cert_path, certs_to_pem([other]))
    assert host.lookup() is None
    atomic_write(host.cert_path, certs_to_pem([host.cert]))  # back as it was: trusted again
    assert host.lookup() is not None
    os.unlink(host.cert_path)
    assert host.lookup() is None


def test_lookup_after_key_file_replaced(host, pki):
    with open(host.key_path, 'rb') as handle:
        same = handle.read()
    atomic_write(host.key_path, same, 0o600)  # identical bytes, but another file
    assert host.lookup() is None
    host.write_record()
    assert host.lookup() is not None
    atomic_write(host.key_path, private_key_pem(pki.other_key), 0o600)
    assert host.lookup() is None
    host.write_record()
    os.unlink(host.key_path)
    assert host.lookup() is None


def test_lookup_after_key_file_touched(host):
    stat = os.stat(host.key_path)
    os.utime(host.key_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    assert host.lookup() is None


def test_lookup_after_chain_changes(host, pki):
    atomic_write(host.chain_path, certs_to_pem([pki.intermediate]))
    assert host.lookup() is None
    host.write_record()
    assert host.lookup() is not None
    # The record was made with a chain file; asking without one is another wish.
    assert host.lookup(chain_path=False) is None


@pytest.mark.parametrize('change', [
    dict(sans=['DNS:dev.example', 'DNS:www.dev.example']),
    dict(subject=[('2.5.4.3', 'dev.example'), ('2.5.4.10', 'Example')]),
    dict(key_usage=['digital_signature']),
    dict(eku=['1.3.6.1.5.5.7.3.1']),
    dict(key_type='rsa-2048'),
    dict(window=('seconds', 86400.0)),
])
def test_lookup_after_wanted_changes(host, change):
    values = dict(subject=host.wanted.subject, sans=host.wanted.sans, key_type=host.wanted.key_type)
    values.update(change)
    assert host.lookup(wanted=Wanted(**values)) is None
    # The same wish in another order is the same wish.
    same = Wanted(subject=host.wanted.subject, sans=list(reversed(host.wanted.sans)), key_type='ec-p256')
    assert host.lookup(wanted=same) is not None


def test_lookup_when_window_opens(host):
    renew_at = T0 + 60 * DAY
    assert host.lookup(now=renew_at - datetime.timedelta(seconds=1)) is not None
    assert host.lookup(now=renew_at) is None
    assert host.lookup(now=T0 + 120 * DAY) is None


def test_lookup_with_pending_request(host):
    with open(host.cert_path + '.pending.json', 'w') as handle:
        handle.write('{}')
    assert host.lookup() is None
    os.unlink(host.cert_path + '.pending.json')
    assert host.lookup() is not None


@pytest.mark.parametrize('content', [
    '', 'garbage', '[]', '{}', '{"snapshot": {}, "facts": {}, "renew_at": "2030-03-02T00:00:00Z"}',
    '{"snapshot": {}, "facts": {"not_after": "2030-04-01T00:00:00Z"}, "renew_at": "soon"}',
    '{"snapshot": {}, "facts": {"not_after": "2030-04-01T00:00:00Z"}, "renew_at": "2030-03-02T00:00:00Z"}',
    '{"snapshot": {}, "facts": [], "renew_at": "2030-03-02T00:00:00Z"}',
    '{"snapshot": null, "facts": {"not_after": 5}, "renew_at": "2030-03-02T00:00:00Z"}',
])
def test_lookup_garbage_record(host, content):
    atomic_write(statecache.cache_path(host.cert_path), content)
    assert host.lookup() is None


def test_lookup_version_mismatch(host):
    path = statecache.cache_path(host.cert_path)
    with open(path) as handle:
        record = json.load(handle)
    record['snapshot']['version'] = statecache.VERSION + 1
    atomic_write(path, json.dumps(record))
    assert host.lookup() is None


def test_lookup_without_record(host):
    os.unlink(statecache.cache_path(host.cert_path))
    assert host.lookup() is None
