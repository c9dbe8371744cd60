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
    assert snap['key']['identity'] == [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    with open(host.key_path, 'rb') as handle:
        key_bytes = handle.read()
    assert snap['key']['sha256'] == hashlib.sha256(b'pki.est statecache key file v2\x00' + key_bytes).hexdigest()
    assert snap['key']['sha256'] != hashlib.sha256(key_bytes).hexdigest()  # not the key file's sha256sum
    assert snap['outputs'] is None  # made without outputs: their content is not part of the record
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


def test_lookup_ignores_a_version_1_record(host):
    """The layout of version 1 (key identity without ctime or digest) is not used at all."""
    path = statecache.cache_path(host.cert_path)
    with open(path) as handle:
        record = json.load(handle)
    stat = os.stat(host.key_path)
    record['snapshot'] = {'version': 1, 'cert_sha256': record['snapshot']['cert_sha256'],
                          'chain_sha256': record['snapshot']['chain_sha256'],
                          'key': [stat.st_ino, stat.st_size, stat.st_mtime_ns], 'wanted': record['snapshot']['wanted']}
    atomic_write(path, json.dumps(record))
    assert host.lookup() is None


# -- the key file: content, not only metadata ---------------------------------------------------------------

def _rewrite_in_place(path, change):
    """Change bytes of ``path`` in place (same inode, same size) and put its atime and mtime back."""
    before = os.stat(path)
    with open(path, 'rb') as handle:
        data = handle.read()
    changed = change(data)
    assert len(changed) == len(data)
    with open(path, 'r+b') as handle:
        handle.write(changed)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    return before


def _other_base64_letter(data):
    """The key PEM with one base64 letter of its body replaced: same size, other content."""
    lines = data.split(b'\n')
    body = bytearray(lines[1])
    body[10] = ord('B') if body[10] != ord('B') else ord('C')
    lines[1] = bytes(body)
    return b'\n'.join(lines)


def test_lookup_after_key_rewritten_in_place_with_old_mtime(host):
    """A same-size key written in place with its old mtime restored is a changed key (the issue's case)."""
    _rewrite_in_place(host.key_path, _other_base64_letter)
    assert host.lookup() is None


def test_lookup_after_key_rewritten_with_identity_and_ctime_restored(host, monkeypatch):
    """Even when inode, size, mtime and ctime all look as recorded (root, coarse clocks), the digest decides."""
    with open(host.key_path, 'rb') as handle:
        original = handle.read()
    before = _rewrite_in_place(host.key_path, _other_base64_letter)
    real_fstat = os.fstat

    class Stat:
        def __init__(self, fd):
            real = real_fstat(fd)
            self.st_ino, self.st_size = real.st_ino, real.st_size
            self.st_mtime_ns, self.st_ctime_ns = before.st_mtime_ns, before.st_ctime_ns

    monkeypatch.setattr(statecache.os, 'fstat', Stat)
    assert host.lookup() is None
    # The recorded bytes again: the record is trusted again.
    _rewrite_in_place(host.key_path, lambda _data: original)
    assert host.lookup() is not None


def test_lookup_after_key_mode_changes(host):
    """chmod changes no byte but moves ctime: the full check looks at the key once more."""
    os.chmod(host.key_path, 0o640)
    assert host.lookup() is None
    host.write_record()
    assert host.lookup() is not None


def test_lookup_when_key_cannot_be_read(host):
    os.unlink(host.key_path)
    os.mkdir(host.key_path)  # open() fails (as it would for a key the module may not read)
    assert host.lookup() is None
    assert json.loads(host.write_record())['snapshot'] is None  # a record of an unreadable key is never used
    assert host.lookup() is None


def test_record_reads_no_private_key_into_its_text(host):
    text = host.write_record()
    with open(host.key_path, 'rb') as handle:
        data = handle.read()
    assert hashlib.sha256(data).hexdigest() not in text


# -- full chain and PKCS#12: content, not only existence ------------------------------------------------------

class Outputs:
    """A host with full chain and PKCS#12 files, recorded with ``outputs``."""

    def __init__(self, host, tmp_path):
        self.host = host
        self.fullchain = str(tmp_path / 'fullchain.pem')
        self.pkcs12 = str(tmp_path / 'dev.p12')
        atomic_write(self.fullchain, certs_to_pem([host.cert, host.pki.intermediate, host.pki.root]))
        atomic_write(self.pkcs12, b'\x30\x82\x01\x00' + os.urandom(256), 0o600)
        self.paths = (self.fullchain, self.pkcs12)
        self.write_record()

    def write_record(self, outputs=None):
        host = self.host
        text = statecache.record(host.cert_path, host.key_path, host.chain_path, host.wanted, host.facts,
                                 renewal_time(host.cert, host.wanted.window), outputs=self.paths if outputs is None else outputs)
        atomic_write(statecache.cache_path(host.cert_path), text)
        return text

    def unchanged(self, outputs=None):
        host = self.host
        return statecache.unchanged(host.cert_path, host.key_path, host.chain_path, host.wanted,
                                    self.paths if outputs is None else outputs)


@pytest.fixture
def outputs(host, tmp_path):
    return Outputs(host, tmp_path)


def test_outputs_recorded_by_content(outputs):
    snap = json.loads(outputs.write_record())['snapshot']
    expected = []
    for path in outputs.paths:
        with open(path, 'rb') as handle:
            expected.append([path, hashlib.sha256(handle.read()).hexdigest()])
    assert snap['outputs'] == sorted(expected)
    assert outputs.unchanged() is not None
    # None entries (a file not asked for) are skipped, and the order does not matter.
    assert outputs.unchanged((None, outputs.pkcs12, outputs.fullchain)) is not None


@pytest.mark.parametrize('which', ['fullchain', 'pkcs12'])
def test_unchanged_after_output_content_changes(outputs, which):
    """A changed full chain or PKCS#12 file (same size, old mtime) sends the run through the full check."""
    path = getattr(outputs, which)
    _rewrite_in_place(path, lambda data: data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])
    assert outputs.unchanged() is None
    _rewrite_in_place(path, lambda data: data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])  # back as it was
    assert outputs.unchanged() is not None


def test_unchanged_after_output_replaced_or_missing(outputs, pki):
    atomic_write(outputs.fullchain, certs_to_pem([outputs.host.cert]))
    assert outputs.unchanged() is None
    outputs.write_record()
    assert outputs.unchanged() is not None
    os.unlink(outputs.pkcs12)
    assert outputs.unchanged() is None


def test_unchanged_when_outputs_asked_for_differ_from_the_record(outputs):
    # Recorded with both files; a run that asks for only one (or another one) is another wish.
    assert outputs.unchanged((outputs.fullchain,)) is None
    assert outputs.unchanged(()) is None
    outputs.write_record(outputs=(outputs.fullchain,))
    assert outputs.unchanged() is None  # the PKCS#12 file was not recorded
    assert outputs.unchanged((outputs.fullchain,)) is not None


def test_unchanged_when_an_output_cannot_be_read(outputs):
    os.unlink(outputs.pkcs12)
    os.mkdir(outputs.pkcs12)
    assert outputs.unchanged() is None
    assert json.loads(outputs.write_record())['snapshot'] is None


def test_record_without_outputs_checks_only_their_existence(outputs):
    """A caller that does not pass ``outputs`` to record() gets the version 1 behaviour for those files."""
    text = outputs.write_record(outputs=())
    assert json.loads(text)['snapshot']['outputs'] == []
    assert outputs.unchanged() is None  # recorded with no outputs, asked with two: another wish
    host = outputs.host
    text = statecache.record(host.cert_path, host.key_path, host.chain_path, host.wanted, host.facts,
                             renewal_time(host.cert, host.wanted.window))
    atomic_write(statecache.cache_path(host.cert_path), text)
    assert json.loads(text)['snapshot']['outputs'] is None
    assert outputs.unchanged() is not None
    atomic_write(outputs.fullchain, 'other content')
    assert outputs.unchanged() is not None
    os.unlink(outputs.fullchain)
    assert outputs.unchanged() is None
