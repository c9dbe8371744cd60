# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 7030 3.5 linking (pop_linking) against the lab server that requires and verifies tls-unique."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

PASSWORD = 's3cret-Pa55'
CHALLENGE = '1.2.840.113549.1.9.7'


def _args(lab, tmp_path, **extra):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, path=str(work / 'host.crt'),
                private_key_path=str(work / 'host.key'), common_name='linked.example.test', csr_attributes='apply')
    args.update(extra)
    return args


def test_a_server_that_requires_linking(runner, lab, tmp_path):
    lab.set_config(require_tls_unique=True)
    # Not linked: the server refuses, and nothing changed on the host.
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path, pop_linking='never'))[0]
    assert out['failed'] and out['error_kind'] == 'bad_request' and not out['changed'], out
    assert 'tls-unique' in out['msg'], out['msg']
    # auto: /csrattrs lists challengePassword, so the request is linked to its TLS 1.2 session.
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path))[0]
    assert out['action'] == 'enrolled', out
    assert not any('challengePassword' in w for w in out.get('warnings', [])), out
    # The renewal (mutual TLS with the certificate) is linked too with pop_linking=always.
    out = runner.call('pki.est.est_reenroll', dict(url=lab.url, ca_path=lab.ca_path, path=str(tmp_path / 'work' / 'host.crt'),
                                                   private_key_path=str(tmp_path / 'work' / 'host.key'), force=True,
                                                   pop_linking='always'))[0]
    assert out['action'] == 'renewed', out


def test_a_tls13_only_server_gets_an_unlinked_request_and_a_plain_warning(runner, lab, tmp_path):
    lab.set_config(tls_min_version='1.3', csrattrs=[{'oid': CHALLENGE}])
    out, run = runner.call('pki.est.est_enroll', _args(lab, tmp_path))
    assert out['action'] == 'enrolled', out
    assert 'unlinked over TLS 1.3' in run.output and 'Allow TLS 1.2' in run.output
    # always: no silent downgrade.
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path, pop_linking='always', force=True))[0]
    assert out['failed'] and out['error_kind'] == 'tls' and 'TLS 1.2' in out['msg'], out
