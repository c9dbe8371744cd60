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


def _rollover_roles(rollover):
    """The roles of the four RFC 4210 §4.4 certificates: NewWithNew (latest notAfter) is the root.

    (``_pki.Rollover.roles`` still holds the roles from before, with OldWithOld as the root.)
    """
    return {
        _pki.fingerprint(rollover.new_with_new): 'root',
        _pki.fingerprint(rollover.old_with_old): 'rollover_old_with_old',
        _pki.fingerprint(rollover.old_with_new): 'rollover_old_with_new',
        _pki.fingerprint(rollover.new_with_old): 'rollover_new_with_old',
    }


def test_classify_rollover_every_order(pki):
    rollover = pki.rollover
    expected = _rollover_roles(rollover)
    assert certinfo.not_after(rollover.new_with_new) > certinfo.not_after(rollover.old_with_old)
    for order in itertools.permutations(rollover.certs):
        roles = certinfo.classify_ca_certs(list(order))
        assert roles == [expected[_pki.fingerprint(c)] for c in order]


def test_classify_rollover_with_intermediate_shuffled(pki):
    rollover = pki.rollover
    expected = _rollover_roles(rollover)
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


def _root_of(certs):
    roles = certinfo.classify_ca_certs(certs)
    roots = set(_pki.fingerprint(c) for c, role in zip(certs, roles) if role == 'root')
    assert len(roots) == 1, roles
    return roots.pop()


def _every_order(certs):
    """All orders of a few certificates, or 50 shuffles of more."""
    if len(certs) <= 5:
        return [list(order) for order in itertools.permutations(certs)]
    shuffler = random.Random(4210)
    orders = []
    for _round in range(50):
        certs = list(certs)
        shuffler.shuffle(certs)
        orders.append(certs)
    return orders


def test_classify_root_is_the_latest_not_after(pki):
    """RFC 7030 §4.1.3: the most recent self-signed certificate has the latest notAfter; not the oldest notBefore."""
    name = _pki.name('Dated Root CA')
    old_key, new_key = _pki.new_key(), _pki.new_key()
    later = _pki.BASE_TIME + datetime.timedelta(days=365)
    older = _pki.make_cert(name, old_key.public_key(), name, old_key, not_before=_pki.BASE_TIME, days=3650)
    newer = _pki.make_cert(name, new_key.public_key(), name, new_key, not_before=later, days=3650)
    for order in _every_order([older, newer]):
        assert _root_of(order) == _pki.fingerprint(newer)
        assert certinfo.classify_ca_certs(order) == ['root' if c is newer else 'rollover_old_with_old' for c in order]
    # A younger certificate that ends earlier is not the root.
    short = _pki.make_cert(name, new_key.public_key(), name, new_key, not_before=later, days=30)
    for order in _every_order([older, short]):
        assert _root_of(order) == _pki.fingerprint(older)


def test_classify_ties_on_not_after_go_to_the_latest_not_before(pki):
    name = _pki.name('Tied Root CA')
    key_a, key_b = _pki.new_key(), _pki.new_key()
    end = _pki.BASE_TIME + datetime.timedelta(days=3650)
    early = _pki.make_cert(name, key_a.public_key(), name, key_a, not_before=_pki.BASE_TIME, days=3650)
    late = _pki.make_cert(name, key_b.public_key(), name, key_b, not_before=_pki.BASE_TIME + datetime.timedelta(days=1),
                          days=3649)
    assert certinfo.not_after(early) == certinfo.not_after(late) == end
    for order in _every_order([early, late]):
        assert _root_of(order) == _pki.fingerprint(late)


def test_classify_full_ties_go_to_the_larger_fingerprint(pki):
    """Same dates and name, three keys: the answer's order never decides (the larger fingerprint does)."""
    name = _pki.name('Twin Root CA')
    twins = []
    for _i in range(3):
        key = _pki.new_key()
        twins.append(_pki.make_cert(name, key.public_key(), name, key))
    expected = max(_pki.fingerprint(c) for c in twins)
    for order in _every_order(twins + [pki.intermediate]):
        assert _root_of(order) == expected
        roles = certinfo.classify_ca_certs(order)
        assert sorted(roles) == ['intermediate', 'rollover_old_with_old', 'rollover_old_with_old', 'root']


def test_classify_same_root_sent_twice(pki):
    rollover = pki.rollover
    certs = rollover.certs + [rollover.new_with_new]
    for order in _every_order(certs):
        roles = certinfo.classify_ca_certs(order)
        assert [r for c, r in zip(order, roles) if c is rollover.new_with_new] == ['root', 'root']
        assert roles.count('root') == 2 and _root_of(order) == _pki.fingerprint(rollover.new_with_new)


def test_classify_unrelated_self_signed_certificate(pki):
    other, _key = _pki.self_signed('Unrelated CA', days=365)
    for order in _every_order([pki.root, pki.intermediate, other]):
        assert certinfo.classify_ca_certs(order) == [{id(pki.root): 'root', id(pki.intermediate): 'intermediate',
                                                      id(other): 'other_root'}[id(c)] for c in order]
    # The latest notAfter wins even against the CA the rest of the answer chains to.
    longer, _key = _pki.self_signed('Unrelated CA', days=40000)
    for order in _every_order([pki.root, pki.intermediate, longer]):
        assert _root_of(order) == _pki.fingerprint(longer)
        assert sorted(certinfo.classify_ca_certs(order)) == ['intermediate', 'other_root', 'root']


class RenamedRollover:
    """A root key update where the new key got a new name (as the lab server makes it): only cross certificates link them."""

    def __init__(self):
        self.old_name, self.new_name = _pki.name('Lab CA'), _pki.name('Lab CA (new key)')
        self.old_key, self.new_key = _pki.new_key(), _pki.new_key()
        old_pub, new_pub = self.old_key.public_key(), self.new_key.public_key()
        later = _pki.BASE_TIME + datetime.timedelta(days=365)
        self.old_with_old = _pki.make_cert(self.old_name, old_pub, self.old_name, self.old_key, days=3650)
        self.new_with_new = _pki.make_cert(self.new_name, new_pub, self.new_name, self.new_key, not_before=later, days=3650)
        self.old_with_new = _pki.make_cert(self.old_name, old_pub, self.new_name, self.new_key, not_before=later, days=3285)
        self.new_with_old = _pki.make_cert(self.new_name, new_pub, self.old_name, self.old_key, not_before=later, days=3285)


def test_classify_renamed_rollover_every_order():
    rollover = RenamedRollover()
    expected = {id(rollover.new_with_new): 'root', id(rollover.old_with_old): 'rollover_old_with_old',
                id(rollover.old_with_new): 'rollover_old_with_new', id(rollover.new_with_old): 'rollover_new_with_old'}
    certs = [rollover.old_with_old, rollover.new_with_new, rollover.old_with_new, rollover.new_with_old]
    for order in _every_order(certs):
        assert certinfo.classify_ca_certs(order) == [expected[id(c)] for c in order]


def test_classify_renamed_rollover_without_new_with_new():
    """The RFC 7030 §4.1.3 set (OldWithOld, OldWithNew, NewWithOld): NewWithOld is known by the root key it certified."""
    rollover = RenamedRollover()
    expected = {id(rollover.old_with_old): 'root', id(rollover.old_with_new): 'rollover_old_with_new',
                id(rollover.new_with_old): 'rollover_new_with_old'}
    for order in _every_order([rollover.old_with_old, rollover.old_with_new, rollover.new_with_old]):
        assert certinfo.classify_ca_certs(order) == [expected[id(c)] for c in order]
    # Without OldWithNew nothing ties the renamed new key to the root: it is an intermediate the root signed.
    assert certinfo.classify_ca_certs([rollover.old_with_old, rollover.new_with_old]) == ['root', 'intermediate']


def test_classify_renamed_rollover_without_cross_certificates():
    """Two self-signed certificates with different names and no certificate between them are two CAs."""
    rollover = RenamedRollover()
    certs = [rollover.old_with_old, rollover.new_with_new]
    for order in _every_order(certs):
        assert certinfo.classify_ca_certs(order) == ['root' if c is rollover.new_with_new else 'other_root' for c in order]


def test_classify_two_key_updates_in_a_row():
    """Three generations linked pairwise: the first is still the same CA (through the second)."""
    names = [_pki.name('Gen %d CA' % n) for n in (1, 2, 3)]
    keys = [_pki.new_key() for _n in range(3)]
    starts = [_pki.BASE_TIME + datetime.timedelta(days=365 * n) for n in range(3)]
    roots = [_pki.make_cert(names[n], keys[n].public_key(), names[n], keys[n], not_before=starts[n], days=3650) for n in range(3)]
    # Gen 2's key signed by gen 1 (NewWithOld of the first update), gen 2's by gen 3 (OldWithNew of the second).
    g2_by_g1 = _pki.make_cert(names[1], keys[1].public_key(), names[0], keys[0], not_before=starts[1], days=3000)
    g2_by_g3 = _pki.make_cert(names[1], keys[1].public_key(), names[2], keys[2], not_before=starts[2], days=3000)
    expected = {id(roots[2]): 'root', id(roots[1]): 'rollover_old_with_old', id(roots[0]): 'rollover_old_with_old',
                id(g2_by_g3): 'rollover_old_with_new', id(g2_by_g1): 'intermediate'}
    for order in _every_order(roots + [g2_by_g1, g2_by_g3]):
        assert certinfo.classify_ca_certs(order) == [expected[id(c)] for c in order]


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
