# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 5280 path validation: the attacks and mistakes a /cacerts answer or an issued certificate can carry."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import itertools
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.pki.est.plugins.module_utils import pathvalid
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
_serials = itertools.count(1000)


class Node:
    """A certificate with its key, made by :func:`make`."""

    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


def make(name, issuer=None, ca=True, key_cert_sign=True, key_usage=True, path_length=None, basic_constraints=True,
         days=(-30, 365), critical_unknown=False):
    """A certificate named ``name`` issued by ``issuer`` (a :class:`Node`; None: self-signed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject).public_key(key.public_key())
               .serial_number(next(_serials))
               .not_valid_before(NOW + datetime.timedelta(days=days[0]))
               .not_valid_after(NOW + datetime.timedelta(days=days[1])))
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    if key_usage:
        sign = ca and key_cert_sign
        builder = builder.add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False, key_cert_sign=sign,
                                                      crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
    if critical_unknown:
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier('1.3.6.1.4.1.55555.1'), b'\x05\x00'),
                                        critical=True)
    signer = issuer.key if issuer else key
    return Node(builder.sign(signer, hashes.SHA256()), key)


@pytest.fixture(scope='module')
def tree():
    root = make('Root')
    inter = make('Issuing CA', root, path_length=0)
    leaf = make('device', inter, ca=False)
    return root, inter, leaf


def test_a_good_path(tree):
    root, inter, leaf = tree
    assert pathvalid.verify_issued(leaf.cert, [inter.cert], [root.cert], NOW) == [inter.cert, root.cert]
    assert pathvalid.verify_ca(inter.cert, [], [root.cert], NOW) == [root.cert]
    # A pinned intermediate is an anchor of its own.
    assert pathvalid.verify_issued(leaf.cert, [], [inter.cert], NOW) == [inter.cert]


def test_a_ca_signed_by_an_end_entity_key_is_refused(tree):
    """The attack: [pinned root, an end-entity the root issued, a "CA" signed with that end-entity's key]."""
    root = tree[0]
    device = make('some device', root, ca=False)
    fake_ca = make('Fake CA', device)
    victim = make('victim.example', fake_ca, ca=False)
    with pytest.raises(ESTError) as info:
        pathvalid.verify_ca(fake_ca.cert, [device.cert], [root.cert], NOW)
    assert info.value.kind == 'verification' and 'basicConstraints' in info.value.message
    with pytest.raises(ESTError):
        pathvalid.verify_issued(victim.cert, [fake_ca.cert, device.cert], [root.cert], NOW)
    kept, dropped = pathvalid.keep_valid_cas([root.cert, device.cert, fake_ca.cert], [root.cert], NOW)
    assert kept == [root.cert]
    assert [cert for cert, _reason in dropped] == [device.cert, fake_ca.cert]
    assert 'not a CA certificate' in dropped[0][1]


def test_a_ca_without_keycertsign(tree):
    root = tree[0]
    lame = make('Lame CA', root, key_cert_sign=False)
    below = make('below', lame, ca=False)
    with pytest.raises(ESTError) as info:
        pathvalid.verify_ca(lame.cert, [], [root.cert], NOW)
    assert 'keyCertSign' in info.value.message
    with pytest.raises(ESTError) as info:
        pathvalid.verify_issued(below.cert, [lame.cert], [root.cert], NOW)
    assert 'keyCertSign' in info.value.message


def test_an_expired_intermediate(tree):
    root = tree[0]
    old = make('Old Issuing CA', root, days=(-400, -1))
    leaf = make('device', old, ca=False)
    with pytest.raises(ESTError) as info:
        pathvalid.verify_issued(leaf.cert, [old.cert], [root.cert], NOW)
    assert 'not valid at validation time' in info.value.message
    with pytest.raises(ESTError):
        pathvalid.verify_ca(old.cert, [], [root.cert], NOW)


def test_a_path_length_violation(tree):
    root, inter, _leaf = tree  # inter has pathLen 0
    sub = make('Sub CA', inter)
    leaf = make('device', sub, ca=False)
    with pytest.raises(ESTError) as info:
        pathvalid.verify_issued(leaf.cert, [inter.cert, sub.cert], [root.cert], NOW)
    assert 'path length' in info.value.message
    with pytest.raises(ESTError) as info:
        pathvalid.verify_ca(sub.cert, [inter.cert], [root.cert], NOW)
    assert 'path length constraint 0' in info.value.message


def test_unknown_critical_extension_in_a_ca(tree):
    root = tree[0]
    odd = make('Odd CA', root, critical_unknown=True)
    leaf = make('device', odd, ca=False)
    with pytest.raises(ESTError) as info:
        pathvalid.verify_issued(leaf.cert, [odd.cert], [root.cert], NOW)
    assert 'critical' in info.value.message


def test_no_anchor_no_trust(tree):
    with pytest.raises(ESTError):
        pathvalid.verify_issued(tree[2].cert, [tree[1].cert], [], NOW)


# -- the checks made here on a CA certificate agree with cryptography's verdict on a certificate below it

def _cryptography_accepts_below(node, pool, anchors):
    """Does cryptography validate an end-entity issued by ``node`` (so that ``node`` is an intermediate)?"""
    below = make('probe', node, ca=False)
    try:
        pathvalid.verify_issued(below.cert, [node.cert] + pool, anchors, NOW)
        return True
    except ESTError:
        return False


def test_verify_ca_agrees_with_cryptography_on_random_hierarchies():
    rng = random.Random(7030)
    checked = disagreements = 0
    for _round in range(25):
        root = make('Root %d' % _round, path_length=rng.choice([None, None, 0, 1, 2]))
        nodes = [root]
        for depth in range(rng.randint(1, 4)):
            parent = rng.choice(nodes)
            nodes.append(make('CA %d.%d' % (_round, depth), parent,
                              ca=rng.random() > 0.2, key_cert_sign=rng.random() > 0.2, key_usage=rng.random() > 0.3,
                              basic_constraints=rng.random() > 0.1, path_length=rng.choice([None, None, 0, 1]),
                              days=rng.choice([(-30, 365), (-30, 365), (-400, -1), (10, 400)])))
        pool = [n.cert for n in nodes[1:]]
        for node in nodes[1:]:
            try:
                pathvalid.verify_ca(node.cert, pool, [root.cert], NOW)
                ours = True
            except ESTError:
                ours = False
            theirs = _cryptography_accepts_below(node, pool, [root.cert])
            checked += 1
            disagreements += ours != theirs
            assert ours == theirs, (node.cert.subject, node.cert.extensions, ours, theirs)
    assert checked >= 40 and disagreements == 0
