# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_cacerts and est_enroll against a hostile server: a "CA" signed with an end-entity's key.

The client sets VERIFY_X509_PARTIAL_CHAIN on its TLS context itself (as Python 3.13 and
urllib3 do by default), so a certificate that slipped into the trust bundle would be a trust
anchor of its own: only path validation keeps it out, whatever the Python version.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE)))

from support.rogue import RoguePKI, RogueServer  # noqa: E402  pylint: disable=wrong-import-position


def _fingerprint(cert):
    from cryptography.hazmat.primitives import hashes
    return cert.fingerprint(hashes.SHA256()).hex()


def _bundle(path):
    from cryptography import x509
    with open(path, 'rb') as handle:
        return x509.load_pem_x509_certificates(handle.read())


def test_bootstrap_keeps_only_what_validates_to_the_pin(runner, tmp_path):
    pki = RoguePKI()
    dest = str(tmp_path / 'ca.pem')
    with RogueServer(pki, tls='genuine') as rogue:
        out, run = runner.call('pki.est.est_cacerts', dict(url=rogue.url, expected_fingerprint=_fingerprint(pki.root), dest=dest))
    assert not out.get('failed') and out['bootstrapped'], out
    assert _bundle(dest) == [pki.root]
    assert sorted(out['dropped']) == ['CN=Fake Issuing CA', 'CN=some-device.example'], out
    assert 'basicConstraints cA is not set' in run.output and 'CN=Fake Issuing CA' in run.output


def test_bootstrap_refuses_a_man_in_the_middle_with_a_forged_ca(runner, tmp_path):
    pki = RoguePKI()
    dest = str(tmp_path / 'ca.pem')
    with RogueServer(pki, tls='mitm') as rogue:
        out = runner.call('pki.est.est_cacerts', dict(url=rogue.url, expected_fingerprint=_fingerprint(pki.root), dest=dest))[0]
    assert out['failed'] and out['error_kind'] == 'bootstrap_mismatch' and not out['changed'], out
    assert not os.path.exists(dest)


def test_trusted_server_answer_is_validated_too(runner, tmp_path):
    """With ca_path (the server is verified), the /cacerts extras must still validate to its root."""
    pki = RoguePKI()
    dest = str(tmp_path / 'ca.pem')
    with RogueServer(pki, tls='genuine') as rogue:
        out = runner.call('pki.est.est_cacerts', dict(url=rogue.url, ca_path=rogue.ca_path, dest=dest))[0]
    assert not out.get('failed'), out
    assert _bundle(dest) == [pki.root]
    assert sorted(out['dropped']) == ['CN=Fake Issuing CA', 'CN=some-device.example'], out


def test_enroll_refuses_a_certificate_from_a_forged_ca(runner, tmp_path):
    pki = RoguePKI()
    work = tmp_path / 'work'
    work.mkdir()
    args = dict(path=str(work / 'host.crt'), private_key_path=str(work / 'host.key'), chain_path=str(work / 'chain.pem'),
                common_name='victim.example', username='someone', password='not-checked-here')
    with RogueServer(pki, tls='genuine') as rogue:
        out = runner.call('pki.est.est_enroll', dict(args, url=rogue.url, ca_path=rogue.ca_path))[0]
        assert ('POST', '/.well-known/est/simpleenroll') in rogue.requests
    assert out['failed'] and out['error_kind'] == 'verification' and not out['changed'], out['msg']
    assert 'does not validate' in out['msg'], out
    assert os.listdir(str(work)) == []
