# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_serverkeygen and est_fullcmc against the lab EST server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

PASSWORD = 's3cret-Pa55'


def _conn(lab):
    return dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD)


def _files(tmp_path, name='host'):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    return dict(path=str(work / (name + '.crt')), private_key_path=str(work / (name + '.key')), chain_path=str(work / (name + '-chain.pem')))


def _load_pair(args):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(open(args['private_key_path'], 'rb').read(), None)
    cert = x509.load_pem_x509_certificate(open(args['path'], 'rb').read())
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key, cert, key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def _ops(lab):
    return [r['op'] for r in lab.requests()]


# ---- est_serverkeygen -----------------------------------------------------------------------

def test_serverkeygen_check_run_idempotent(runner, lab, tmp_path):
    from cryptography.hazmat.primitives.serialization import pkcs12
    args = dict(_conn(lab), common_name='printer.example.test', subject_alt_name=['DNS:printer.example.test'], key_type='rsa-2048',
                pkcs12_path=str(tmp_path / 'work' / 'host.p12'), pkcs12_passphrase='p12-pass', **_files(tmp_path))
    out = runner.call('pki.est.est_serverkeygen', args, check=True)[0]
    assert out['changed'] and out['action'] == 'enroll' and out['requests_made'] == 0, out
    out = runner.call('pki.est.est_serverkeygen', args)[0]
    assert out['action'] == 'enrolled' and out['operation'] == 'serverkeygen' and not out['key_encrypted'], out
    key, cert, match = _load_pair(args)
    assert match and key.key_size == 2048
    assert 'CN=printer.example.test' in out['subject']
    assert oct((tmp_path / 'work' / 'host.key').stat().st_mode & 0o777) == '0o600'
    bundle = pkcs12.load_pkcs12((tmp_path / 'work' / 'host.p12').read_bytes(), b'p12-pass')
    assert bundle.cert.certificate == cert
    assert _ops(lab) == ['serverkeygen']
    lab.clear_requests()
    out = runner.call('pki.est.est_serverkeygen', args)[0]
    assert out['action'] == 'none' and not out['changed'] and _ops(lab) == [], out


def test_serverkeygen_tolerates_answer_variants(runner, lab, tmp_path):
    args = dict(_conn(lab), common_name='variants.example.test', force=True, **_files(tmp_path))
    variants = [{'serverkeygen_order': 'cert-first'}, {'serverkeygen_eol': 'lf'}, {'serverkeygen_key_format': 'sec1'},
                {'serverkeygen_cte': False}, {'serverkeygen_order': 'cert-first', 'serverkeygen_eol': 'lf', 'serverkeygen_cte': False}]
    for variant in variants:
        lab.set_config(**variant)
        out = runner.call('pki.est.est_serverkeygen', args)[0]
        assert out['changed'] and 'operation' in out and out['operation'] == 'serverkeygen', (variant, out)
        assert _load_pair(args)[2], variant
    lab.set_config(serverkeygen_key_format='pkcs1', serverkeygen_order='key-first', serverkeygen_eol='crlf', serverkeygen_cte=True)
    out = runner.call('pki.est.est_serverkeygen', dict(args, key_type='rsa-2048'))[0]
    assert out['operation'] == 'serverkeygen' and _load_pair(args)[2], out


def test_serverkeygen_encrypted_to_the_client(runner, lab, tmp_path):
    # An RSA client certificate from the lab CA is the recipient of the encrypted key.
    device = _files(tmp_path, 'device')
    out = runner.call('pki.est.est_enroll', dict(_conn(lab), common_name='device-0042', key_type='rsa-2048', **device))[0]
    assert out['action'] == 'enrolled', out
    args = dict(url=lab.url, ca_path=lab.ca_path, client_cert_path=device['path'], client_key_path=device['private_key_path'],
                decrypt_cert_path=device['path'], decrypt_key_path=device['private_key_path'], common_name='device-0042-app',
                **_files(tmp_path))
    out = runner.call('pki.est.est_serverkeygen', args)[0]
    assert out['action'] == 'enrolled' and out['key_encrypted'], out
    assert _load_pair(args)[2]


def test_serverkeygen_wrong_key_keeps_the_old_pair(runner, lab, tmp_path):
    args = dict(_conn(lab), common_name='keep.example.test', **_files(tmp_path))
    assert runner.call('pki.est.est_serverkeygen', args)[0]['action'] == 'enrolled'
    before = open(args['private_key_path'], 'rb').read(), open(args['path'], 'rb').read()
    for fault, kind in (('wrong_key', 'verification'), ('garbage', None), ('http500', 'http')):
        lab.set_fault('serverkeygen', fault, count=1)
        out = runner.call('pki.est.est_serverkeygen', dict(args, force=True))[0]
        assert out['failed'], (fault, out)
        if kind:
            assert out['error_kind'] == kind, (fault, out)
        assert 'PRIVATE KEY' not in out['msg']
        assert (open(args['private_key_path'], 'rb').read(), open(args['path'], 'rb').read()) == before, fault


# ---- est_fullcmc ----------------------------------------------------------------------------

def test_fullcmc_self_signed_check_run_idempotent(runner, lab, tmp_path):
    args = dict(_conn(lab), common_name='cmc.example.test', subject_alt_name=['DNS:cmc.example.test'], identification='asset-4711',
                **_files(tmp_path))
    out = runner.call('pki.est.est_fullcmc', args, check=True)[0]
    assert out['changed'] and out['requests_made'] == 0, out
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['action'] == 'enrolled' and out['operation'] == 'fullcmc', out
    assert _load_pair(args)[2]
    assert _ops(lab) == ['cacerts', 'fullcmc']
    lab.clear_requests()
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['action'] == 'none' and _ops(lab) == [], out


def test_fullcmc_signed_by_an_ra(runner, lab, tmp_path):
    ra = _files(tmp_path, 'ra')
    assert runner.call('pki.est.est_enroll', dict(_conn(lab), common_name='RA 1', **ra))[0]['action'] == 'enrolled'
    args = dict(url=lab.url, ca_path=lab.ca_path, client_cert_path=ra['path'], client_key_path=ra['private_key_path'],
                ra_cert_path=ra['path'], ra_key_path=ra['private_key_path'], common_name='via-ra.example.test', **_files(tmp_path))
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['action'] == 'enrolled', out
    assert _load_pair(args)[2]


def test_fullcmc_failure_is_reported_with_fail_info(runner, lab, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    # An RA certificate the CA never issued: the server answers failed / badIdentity.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'rogue RA')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    (work / 'rogue.pem').write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (work / 'rogue.key').write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    args = dict(_conn(lab), ra_cert_path=str(work / 'rogue.pem'), ra_key_path=str(work / 'rogue.key'), common_name='x.example.test',
                **_files(tmp_path))
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['failed'] and out['error_kind'] == 'bad_request', out
    assert out['cmc_status'] == 'failed' and out['cmc_fail_info'] == 'badIdentity', out
    assert not (work / 'host.crt').exists() and not (work / 'host.key').exists()


def test_fullcmc_simple_response_and_pending(runner, lab, tmp_path):
    args = dict(_conn(lab), common_name='simple.example.test', **_files(tmp_path))
    lab.set_config(fullcmc_response='certs-only')
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['action'] == 'enrolled', out
    lab.set_config(fullcmc_response='signed', pending={'after_polls': 1})
    out = runner.call('pki.est.est_fullcmc', dict(args, force=True))[0]
    assert out['pending'], out
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['action'] == 'rekeyed' or out['action'] == 'renewed' or out['action'] == 'enrolled', out
    assert _load_pair(args)[2]


def test_serverkeygen_key_package_forms(runner, lab, tmp_path):
    device = _files(tmp_path, 'device')
    runner.call('pki.est.est_enroll', dict(_conn(lab), common_name='device-7', key_type='rsa-3072', **device))
    args = dict(url=lab.url, ca_path=lab.ca_path, client_cert_path=device['path'], client_key_path=device['private_key_path'],
                decrypt_cert_path=device['path'], decrypt_key_path=device['private_key_path'], common_name='app-7', force=True,
                **_files(tmp_path))
    for form in ('key-package', 'signed-key-package', 'pkcs8'):
        lab.set_config(serverkeygen_encrypted_content=form)
        out = runner.call('pki.est.est_serverkeygen', args)[0]
        assert out['changed'] and out.get('key_encrypted'), (form, out)
        assert _load_pair(args)[2], form


def test_fullcmc_bad_response_signature_or_nonce(runner, lab, tmp_path):
    args = dict(_conn(lab), common_name='check.example.test', **_files(tmp_path))
    for fault in ('bad_signature', 'wrong_nonce'):
        lab.set_fault('fullcmc', fault, count=1)
        out = runner.call('pki.est.est_fullcmc', args)[0]
        assert out['failed'] and out['error_kind'] == 'verification', (fault, out)
        assert not (tmp_path / 'work' / 'host.crt').exists()


def test_fullcmc_failure_in_an_http_error(runner, lab, tmp_path):
    lab.set_config(fullcmc_fail_status=400)
    test_fullcmc_failure_is_reported_with_fail_info(runner, lab, tmp_path)


def test_fullcmc_several_requests_in_one_pkidata(runner, lab, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    others = []
    for name in ('extra-1.example.test', 'extra-2.example.test'):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(key, hashes.SHA256())
        others.append((key, csr.public_bytes(serialization.Encoding.PEM).decode()))
    ra = _files(tmp_path, 'ra')
    assert runner.call('pki.est.est_enroll', dict(_conn(lab), common_name='RA 2', **ra))[0]['action'] == 'enrolled'
    args = dict(url=lab.url, ca_path=lab.ca_path, client_cert_path=ra['path'], client_key_path=ra['private_key_path'],
                ra_cert_path=ra['path'], ra_key_path=ra['private_key_path'], common_name='main.example.test',
                extra_csrs=[pair[1] for pair in others], **_files(tmp_path))
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['action'] == 'enrolled' and len(out['extra_certificates']) == 2, out
    for pair, cert_pem in zip(others, out["extra_certificates"]):
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        assert cert.public_key().public_numbers() == pair[0].public_key().public_numbers()
    assert _load_pair(args)[2]


# ---- who may sign a PKIResponse, and Query Pending (RFC 6402 2.10, RFC 5272 6.13) ------------------------

def test_fullcmc_response_signer_must_be_the_ca_or_a_cmc_ra(runner, lab, tmp_path):
    args = dict(_conn(lab), common_name='signer.example.test', **_files(tmp_path))
    # An ordinary end-entity certificate of the CA signs the response: refused, nothing written.
    lab.set_config(fullcmc_signer='ee')
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['failed'] and out['error_kind'] == 'verification' and not out['changed'], out
    assert 'id-kp-cmcRA' in out['msg'], out['msg']
    assert not (tmp_path / 'work' / 'host.crt').exists()
    # An unsigned PKIResponse: refused too; lenient accepts both.
    lab.set_config(fullcmc_signer='none')
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['failed'] and 'not signed' in out['msg'], out
    out = runner.call('pki.est.est_fullcmc', dict(args, cmc_response_check='lenient'))[0]
    assert out['action'] == 'enrolled', out
    # A CMC RA (id-kp-cmcRA), and the CA without its certificate in the response (found among the CA certificates).
    for signer, omit in (('cmc_ra', False), ('ca', True)):
        lab.set_config(fullcmc_signer=signer, fullcmc_omit_signer_cert=omit)
        out = runner.call('pki.est.est_fullcmc', dict(args, force=True))[0]
        assert out['changed'] and out['action'] in ('renewed', 'rekeyed', 'enrolled'), (signer, omit, out)
        assert _load_pair(args)[2]


def test_fullcmc_pending_is_asked_about_with_its_token(runner, lab, tmp_path):
    import json
    args = dict(_conn(lab), common_name='query.example.test', **_files(tmp_path))
    lab.set_config(pending={'after_polls': 2})
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['pending'], out
    state = json.loads((tmp_path / 'work' / 'host.crt.pending.json').read_text())
    assert state['cmc_token'] and state['transaction_id'], state
    # The next runs send Query Pending (no request, the token, the same transaction) until the CA approves.
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['pending'], out
    assert json.loads((tmp_path / 'work' / 'host.crt.pending.json').read_text())['cmc_token'] == state['cmc_token']
    out = runner.call('pki.est.est_fullcmc', args)[0]
    assert out['action'] == 'enrolled', out
    assert _load_pair(args)[2]
    assert not (tmp_path / 'work' / 'host.crt.pending.json').exists()
    assert lab.pending() in ({}, [], None) or not lab.pending()
