# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Servers that break the RFCs in ways users meet (docs/operations.md, "Interoperability")."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

PASSWORD = 's3cret-Pa55'


def _args(lab, tmp_path, **extra):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD, path=str(work / 'host.crt'),
                private_key_path=str(work / 'host.key'), chain_path=str(work / 'chain.pem'),
                fullchain_path=str(work / 'full.pem'), common_name='interop.example.test',
                subject_alt_name=['DNS:interop.example.test'])
    args.update(extra)
    return args


def _ops(lab):
    return [r['op'] for r in lab.requests()]


def test_cacerts_without_the_issuing_ca_needs_intermediates_path(runner, lab, tmp_path):
    from cryptography import x509
    lab.set_config(issuing_ca='intermediate', cacerts_omit_intermediate=True)
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path))[0]
    assert out['failed'] and out['error_kind'] == 'verification' and not out['changed'], out
    assert 'intermediates_path' in out['msg'], out['msg']
    assert os.listdir(str(tmp_path / 'work')) == []
    # The operator hands over the issuing CA; it validates to the root in ca_path and completes the chain.
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path, intermediates_path=lab.intermediate_path))[0]
    assert out['action'] == 'enrolled', out
    chain = x509.load_pem_x509_certificates((tmp_path / 'work' / 'chain.pem').read_bytes())
    intermediate = x509.load_pem_x509_certificate(open(lab.intermediate_path, 'rb').read())
    root = x509.load_pem_x509_certificate(open(lab.ca_path, 'rb').read())
    assert chain == [intermediate, root]
    full = x509.load_pem_x509_certificates((tmp_path / 'work' / 'full.pem').read_bytes())
    assert full[1:] == [intermediate, root]
    full[0].verify_directly_issued_by(intermediate)
    # A certificate that does not validate to the anchors is no help, even in intermediates_path.
    stray = tmp_path / 'stray.pem'
    stray.write_bytes(open(lab.ca_path, 'rb').read())
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path, path=str(tmp_path / 'work' / 'b.crt'),
                                                  private_key_path=str(tmp_path / 'work' / 'b.key'),
                                                  chain_path=str(tmp_path / 'work' / 'b-chain.pem'),
                                                  fullchain_path=None, intermediates_path=str(stray)))[0]
    assert out['failed'] and out['error_kind'] == 'verification', out


def test_a_ca_that_drops_sans_is_asked_once_per_request(runner, lab, tmp_path):
    lab.set_config(copy_sans=False)
    args = _args(lab, tmp_path)
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['failed'] and out['error_kind'] == 'verification' and not out['changed'], out
    assert out['missing_subject_alt_name'] == ['DNS:interop.example.test'], out
    assert _ops(lab) == ['simpleenroll']
    lab.clear_requests()
    # The same task again: the refusal is remembered, no new certificate is issued.
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['failed'] and 'none was sent' in out['msg'] and not out['changed'], out
    assert _ops(lab) == []
    # san_policy=warn installs what the CA gives, with a warning, and forgets the refusal.
    out, run = runner.call('pki.est.est_enroll', dict(args, san_policy='warn'))
    assert out['action'] == 'enrolled', out
    assert 'lacks the requested subjectAltName' in run.output
    assert not os.path.exists(args['path'] + '.refused.json')
