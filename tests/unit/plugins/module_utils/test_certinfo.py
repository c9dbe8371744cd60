# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate facts, fingerprints and CA roles (RFC 7030 §4.1.3)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import itertools
import random

import pytest

from ansible_collections.pki.est.plugins.module_utils import certinfo
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

HEX = 'a330c59b3881adec9350ed7c01398e92c0cb77f3153875b2e19cea2feedc03f3'


def _colons(text):
    return ':'.join(text[i:i + 2] for i in range(0, len(text), 2))


# -- normalize_fingerprint -------------------------------------------------------------------------

@pytest.mark.parametrize('value', [
    HEX,
    HEX.upper(),
    _colons(HEX),
    _colons(HEX).upper(),
    ' '.join(HEX[i:i + 2] for i in range(0, 64, 2)),
    ' '.join(HEX[i:i + 8] for i in range(0, 64, 8)),
    'sha256:' + HEX,
    'SHA256:' + _colons(HEX).upper(),
    'sha256 ' + HEX,
    'SHA256 ' + _colons(HEX),
    '  %s \n' % _colons(HEX),
    '\t' + HEX.upper() + '\r\n',
    _colons(HEX).replace(':', ': '),
])
def test_normalize_fingerprint(value):
    assert certinfo.normalize_fingerprint(value) == HEX


@pytest.mark.parametrize('value', [
    None,
    '',
    '   ',
    HEX[:-1],
    HEX + 'a',
    HEX[:40],                                  # a SHA-1 fingerprint
    hashlib.sha512(b'x').hexdigest(),
    HEX[:-1] + 'g',
    HEX.replace('a', '-'),
    'sha1:' + HEX,
    'md5:' + HEX,
    'sha256:',
    'sha256:sha256:' + HEX,
    HEX + '\x00',
    HEX[:-2] + '\u00e9\u00e9',
    'not a fingerprint at all',
    '0x' + HEX[2:],
])
def test_normalize_fingerprint_rejects(value):
    with pytest.raises(ESTError) as info:
        certinfo.normalize_fingerprint(value)
    assert info.value.kind == 'invalid_input'
    assert 'SHA-256' in info.value.message
    assert repr(value) in info.value.message


def test_fingerprint_and_colon_hex(pki):
    expected = hashlib.sha256(_pki.der(pki.root)).hexdigest()
    assert certinfo.fingerprint(pki.root) == expected
    assert certinfo.colon_hex(expected) == _colons(expected).upper()
    assert certinfo.normalize_fingerprint(certinfo.colon_hex(expected)) == expected


# -- is_self_signed --------------------------------------------------------------------------------

def test_is_self_signed(pki):
    rollover = pki.rollover
    assert certinfo.is_self_signed(pki.root)
    assert certinfo.is_self_signed(rollover.old_with_old)
    assert certinfo.is_self_signed(rollover.new_with_new)
    # Same subject and issuer name, but signed with the other key.
    assert not certinfo.is_self_signed(rollover.old_with_new)
    assert not certinfo.is_self_signed(rollover.new_with_old)
    assert not certinfo.is_self_signed(pki.intermediate)
    assert not certinfo.is_self_signed(pki.leaf)


# -- classify_ca_certs -------------------------------------------------------------------------------

def test_classify_single_root(pki):
    assert certinfo.classify_ca_certs([pki.root]) == ['root']


def test_classify_root_and_intermediate(pki):
    assert certinfo.classify_ca_certs([pki.root, pki.intermediate]) == ['root', 'intermediate']
    assert certinfo.classify_ca_certs([pki.intermediate, pki.root]) == ['intermediate', 'root']


def test_classify_no_root(pki):
    assert certinfo.classify_ca_certs([pki.intermediate, pki.leaf]) == ['intermediate', 'intermediate']
    assert certinfo.classify_ca_certs([]) == []


def test_classify_rollover_every_order(pki):
    rollover = pki.rollover
    expected = rollover.roles
    for order in itertools.permutations(rollover.certs):
        roles = certinfo.classify_ca_certs(list(order))
        assert roles == [expected[_pki.fingerprint(c)] for c in order]


def test_classify_rollover_with_intermediate_shuffled(pki):
    rollover = pki.rollover
    expected = dict(rollover.roles)
    expected[_pki.fingerprint(pki.rollover_intermediate)] = 'intermediate'
    certs = rollover.certs + [pki.rollover_intermediate]
    shuffler = random.Random(7030)
    for _round in range(20):
        shuffler.shuffle(certs)
        assert certinfo.classify_ca_certs(certs) == [expected[_pki.fingerprint(c)] for c in certs]


def test_classify_rollover_old_with_new_without_new_root(pki):
    rollover = pki.rollover
    assert certinfo.classify_ca_certs([rollover.old_with_new, rollover.old_with_old]) == ['rollover_old_with_new', 'root']


def test_classify_rfc7030_three_certificate_set(pki):
    """RFC 7030 §4.1.3: the server SHOULD include OldWithOld, OldWithNew and NewWithOld (NewWithNew is optional)."""
    rollover = pki.rollover
    certs = [rollover.new_with_old, rollover.old_with_old, rollover.old_with_new]
    assert certinfo.classify_ca_certs(certs) == ['rollover_new_with_old', 'root', 'rollover_old_with_new']


# -- cert_facts -----------------------------------------------------------------------------------------

def test_cert_facts_ca(pki):
    now = _pki.BASE_TIME + datetime.timedelta(days=10, hours=12)
    facts = certinfo.cert_facts(pki.root, now=now)
    assert facts == {
        'subject': 'CN=Test Root CA,O=pki.est tests',
        'issuer': 'CN=Test Root CA,O=pki.est tests',
        'serial': '%X' % pki.root.serial_number,
        'not_before': '2025-01-01T00:00:00Z',
        'not_after': (_pki.BASE_TIME + datetime.timedelta(days=36500)).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'sha256_fingerprint': hashlib.sha256(_pki.der(pki.root)).hexdigest(),
        'days_remaining': 36500 - 11,
        'ca': True,
    }
    assert facts['serial'] == facts['serial'].upper()


def test_cert_facts_leaf(pki):
    now = _pki.BASE_TIME + datetime.timedelta(days=100)
    facts = certinfo.cert_facts(pki.leaf, now=now)
    assert facts['subject'] == 'CN=device.example.com,O=pki.est tests'
    assert facts['issuer'] == 'CN=Test Issuing CA,O=pki.est tests'
    assert facts['ca'] is False
    assert facts['days_remaining'] == 265
    assert certinfo.cert_facts(pki.leaf_no_bc, now=now)['ca'] is False


def test_cert_facts_expired_and_default_now(pki):
    now = _pki.BASE_TIME + datetime.timedelta(days=366)
    assert certinfo.cert_facts(pki.leaf, now=now)['days_remaining'] == -1
    facts = certinfo.cert_facts(pki.root)
    today = datetime.datetime.now(datetime.timezone.utc)
    assert facts['days_remaining'] == int((certinfo.not_after(pki.root) - today).total_seconds() // 86400)


def test_validity_is_timezone_aware(pki):
    assert certinfo.not_before(pki.root) == _pki.BASE_TIME
    assert certinfo.not_before(pki.root).tzinfo is not None
    assert certinfo.not_after(pki.root) - certinfo.not_before(pki.root) == datetime.timedelta(days=36500)
