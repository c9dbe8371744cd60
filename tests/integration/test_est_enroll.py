# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_enroll and est_reenroll against the lab EST server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os


def _vars(lab, tmp_path, **extra):
    result = dict(est_url=lab.url, est_ca_path=lab.ca_path, est_ca_fingerprint=lab.ca_fingerprint, work_dir=str(tmp_path / 'work'))
    os.makedirs(result['work_dir'], exist_ok=True)
    result.update(extra)
    return result


def test_enroll_check_mode_then_idempotent(runner, lab, tmp_path):
    result = runner.run('est_enroll.yml', _vars(lab, tmp_path))
    assert result.rc == 0, str(result)
    ops = [r['op'] for r in lab.requests()]
    # One enrollment: the issued certificate chains to ca_path (the stored EST CA), so no /cacerts
    # is needed; the idempotent runs reach no server.
    assert ops == ['simpleenroll'], ops


# ---------------------------------------------------------------------------------------------
# Single-task scenarios through runner.call
# ---------------------------------------------------------------------------------------------

PASSWORD = 's3cret-Pa55'


def _conn(lab):
    return dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD)


def _files(tmp_path):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    return dict(path=str(work / 'host.crt'), private_key_path=str(work / 'host.key'), chain_path=str(work / 'chain.pem'))


def _enroll_args(lab, tmp_path, **extra):
    args = _conn(lab)
    args.update(_files(tmp_path))
    args.update(common_name='app.example.test', subject_alt_name=['DNS:app.example.test'])
    args.update(extra)
    return args


def _pair(tmp_path):
    """(key PEM bytes, cert PEM bytes, whether they match)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    key_pem = (tmp_path / 'work' / 'host.key').read_bytes()
    cert_pem = (tmp_path / 'work' / 'host.crt').read_bytes()
    key = serialization.load_pem_private_key(key_pem, None)
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key_pem, cert_pem, key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def _ops(lab):
    return [r['op'] for r in lab.requests()]


def test_renewal_window_renew_then_rekey(runner, lab, tmp_path):
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, renew_before='1d'))[0]
    assert out['action'] == 'enrolled', out
    key1, cert1, match = _pair(tmp_path)
    assert match
    lab.clear_requests()

    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, renew_before='1d'))[0]
    assert out['action'] == 'none' and not out['changed'] and out['requests_made'] == 0, out
    assert _ops(lab) == []

    # A window longer than the lifetime puts the certificate inside it: renew with the same key.
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, renew_before='400d'))[0]
    assert out['action'] == 'renewed' and out['operation'] == 'simplereenroll', out
    assert _ops(lab) == ['simplereenroll']
    assert [r['auth'] for r in lab.requests()][-1] == 'cert'
    key2, cert2, match = _pair(tmp_path)
    assert match and key2 == key1 and cert2 != cert1

    # est_reenroll with rekey: a new key, the same subject.
    reenroll = dict(_conn(lab), **_files(tmp_path))
    out = runner.call('pki.est.est_reenroll', dict(reenroll, rekey=True, force=True, backup=True))[0]
    assert out['action'] == 'rekeyed', out
    key3, cert3, match = _pair(tmp_path)
    assert match and key3 != key2 and cert3 != cert2
    assert 'CN=app.example.test' in out['subject']
    assert len(out['backup_files']) >= 2
    assert oct((tmp_path / 'work' / 'host.key').stat().st_mode & 0o777) == '0o600'

    # Not due: est_reenroll does nothing and sends nothing.
    lab.clear_requests()
    out = runner.call('pki.est.est_reenroll', reenroll)[0]
    assert out['action'] == 'none' and out['requests_made'] == 0 and _ops(lab) == []


def test_reenroll_check_mode_and_diff(runner, lab, tmp_path):
    runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))
    lab.clear_requests()
    before = _pair(tmp_path)
    out, run = runner.call('pki.est.est_reenroll', dict(_conn(lab), force=True, **_files(tmp_path)), check=True, diff=True)
    assert out['changed'] and out['action'] == 'renew', out
    assert _ops(lab) == [] and _pair(tmp_path) == before
    assert 'sha256_fingerprint' in run.stdout


def test_reenroll_without_certificate_fails_clearly(runner, lab, tmp_path):
    out = runner.call('pki.est.est_reenroll', dict(_conn(lab), **_files(tmp_path)))[0]
    assert out['failed'] and out['error_kind'] == 'host_state', out
    assert 'enroll first' in out['msg']


def test_pending_across_two_runs(runner, lab, tmp_path):
    lab.set_config(pending={'after_polls': 1}, retry_after=7)  # the first request waits, the next is answered
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))[0]
    assert out['pending'] and out['action'] == 'pending' and out['retry_after'] == 7, out
    work = tmp_path / 'work'
    assert not (work / 'host.crt').exists() and not (work / 'host.key').exists()
    for name in ('host.crt.pending.json', 'host.crt.pending.key'):
        assert oct((work / name).stat().st_mode & 0o777) == '0o600', name
    pending_key = (work / 'host.crt.pending.key').read_bytes()

    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))[0]
    assert out['action'] == 'enrolled' and not out['pending'], out
    key, _cert, match = _pair(tmp_path)
    assert match and key == pending_key
    assert not (work / 'host.crt.pending.json').exists() and not (work / 'host.crt.pending.key').exists()
    # The same CSR went twice.
    assert _ops(lab).count('simpleenroll') == 2


def test_pending_within_one_run(runner, lab, tmp_path):
    lab.set_config(pending={'after_polls': 2}, retry_after=1)
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, wait_timeout=60))[0]
    assert out['action'] == 'enrolled', out
    assert _ops(lab).count('simpleenroll') == 3
    assert _pair(tmp_path)[2]


def test_mismatched_pair_is_reenrolled(runner, lab, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / 'work' / 'host.key').write_bytes(other)
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))[0]
    assert out['changed'] and out['action'] == 'enrolled', out
    assert 'does not match' in ' '.join(out['reasons'])
    key, _cert, match = _pair(tmp_path)
    assert match and key == other  # the key is kept; the certificate is replaced


def test_corrupt_certificate_fails_or_replaces(runner, lab, tmp_path):
    runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))
    cert = tmp_path / 'work' / 'host.crt'
    cert.write_text('-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n')
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))[0]
    assert out['failed'] and out['error_kind'] == 'host_state', out
    assert 'invalid_certificate=replace' in out['msg']
    assert 'not a certificate' in cert.read_text()
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, invalid_certificate='replace'))[0]
    assert out['action'] == 'enrolled', out
    assert _pair(tmp_path)[2]


def test_server_failures_during_rekey_keep_the_old_pair(runner, lab, tmp_path):
    runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))
    before = _pair(tmp_path)
    assert before[2]
    reenroll = dict(_conn(lab), rekey=True, force=True, **_files(tmp_path))
    cases = [('http500', 'http'), ('garbage', 'bad_response'), ('bad_pkcs7', 'bad_response'), ('empty', 'bad_response'),
             ('truncated', None), ('wrong_content_type', 'unexpected_content_type'), ('wrong_key', 'verification'),
             ('other_ca', 'verification'), ('close', 'connection')]
    for fault, kind in cases:
        lab.set_fault('simplereenroll', fault, count=1)
        out = runner.call('pki.est.est_reenroll', reenroll)[0]
        assert out['failed'], (fault, out)
        if kind:
            assert out['error_kind'] == kind, (fault, out)
        assert 'Traceback' not in out['msg'] and 'BEGIN' not in out['msg'], (fault, out)
        assert _pair(tmp_path) == before, fault
        assert not (tmp_path / 'work' / 'host.crt.pending.key').exists(), fault
    lab.stop()
    out = runner.call('pki.est.est_reenroll', dict(reenroll, timeout=5))[0]
    assert out['failed'] and out['error_kind'] == 'connection', out
    assert _pair(tmp_path) == before


def test_secrets_never_printed(runner, lab, tmp_path):
    out, run = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, challenge_password='ch4llenge-XYZ'), verbosity=3)
    assert out['action'] == 'enrolled', out
    key_pem = (tmp_path / 'work' / 'host.key').read_text()
    body = key_pem.split('\n')[1]
    assert PASSWORD not in run.output
    assert 'ch4llenge-XYZ' not in run.output
    assert body not in run.output and 'PRIVATE KEY' not in run.output


def test_external_csr(runner, lab, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'delegated.example.test')])).sign(key, hashes.SHA256())
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    out = runner.call('pki.est.est_enroll', dict(_conn(lab), csr_content=pem))[0]
    assert out['action'] == 'enrolled' and 'CN=delegated.example.test' in out['subject'], out
    assert 'BEGIN CERTIFICATE' in out['certificate_pem']
    cert = x509.load_pem_x509_certificate(out['certificate_pem'].encode())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    out = runner.call('pki.est.est_enroll', dict(_conn(lab), csr_content='garbage'))[0]
    assert out['failed'] and out['error_kind'] == 'invalid_input', out


def test_wrong_password_is_auth_required(runner, lab, tmp_path):
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, password='wrong'))[0]
    assert out['failed'] and out['error_kind'] == 'auth_required', out
    assert 'wrong' not in out['msg']
    assert not (tmp_path / 'work' / 'host.key').exists()
    assert not (tmp_path / 'work' / 'host.crt.pending.key').exists()


def test_missing_chain_files_are_written_again(runner, lab, tmp_path):
    args = _enroll_args(lab, tmp_path, fullchain_path=str(tmp_path / 'work' / 'full.pem'), pkcs12_path=str(tmp_path / 'work' / 'host.p12'),
                        pkcs12_passphrase='p12-Secret')
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'enrolled', out
    fingerprint = out['sha256_fingerprint']
    for name in ('chain.pem', 'full.pem', 'host.p12'):
        (tmp_path / 'work' / name).unlink()
    lab.clear_requests()
    out = runner.call('pki.est.est_enroll', args, check=True)[0]
    assert out['action'] == 'complete' and out['changed'], out
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'completed' and out['sha256_fingerprint'] == fingerprint, out
    # The chain is rebuilt from the stored CA database (ca_path) it validates to: no request at all.
    assert _ops(lab) == []
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import pkcs12
    bundle = pkcs12.load_pkcs12((tmp_path / 'work' / 'host.p12').read_bytes(), b'p12-Secret')
    assert bundle.cert.certificate.fingerprint(hashes.SHA256()).hex() == fingerprint
    assert oct((tmp_path / 'work' / 'host.p12').stat().st_mode & 0o777) == '0o600'
    assert 'BEGIN CERTIFICATE' in (tmp_path / 'work' / 'chain.pem').read_text()
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'none' and not out['changed'], out


def test_rejected_pending_request_is_discarded(runner, lab, tmp_path):
    lab.set_config(pending={'after_polls': 1})
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))[0]
    assert out['pending'], out
    lab.set_fault('simpleenroll', 'wrong_key', count=1)
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))[0]
    assert out['failed'] and out['error_kind'] == 'verification' and 'discarded' in out['msg'], out
    assert not (tmp_path / 'work' / 'host.crt.pending.json').exists()
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path))[0]
    assert out['pending'] or out['action'] == 'enrolled', out


def test_issued_by_a_ca_outside_ca_path_is_checked_against_cacerts(runner, lab, tmp_path):
    # The TLS certificate comes from the default CA (ca_path); the iot label's CA issues. /cacerts decides.
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, ca_label='iot'))[0]
    assert out['action'] == 'enrolled', out
    assert _ops(lab) == ['simpleenroll', 'cacerts']
    iot_ca = open(lab.label_ca_path('iot')).read().strip()
    assert open(str(tmp_path / 'work' / 'chain.pem')).read().strip() == iot_ca
    lab.set_fault('simpleenroll', 'other_ca', count=1)
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, ca_label='iot', force=True, reenroll='never'))[0]
    assert out['failed'] and out['error_kind'] == 'verification', out


def test_renewal_of_a_server_only_certificate_says_why_tls_refuses_it(runner, lab, tmp_path):
    """A certificate whose extendedKeyUsage lacks clientAuth cannot authenticate /simplereenroll over TLS."""
    out = runner.call('pki.est.est_enroll', _enroll_args(lab, tmp_path, extended_key_usage=['serverAuth']))[0]
    assert out['action'] == 'enrolled', out
    out = runner.call('pki.est.est_reenroll', dict(url=lab.url, ca_path=lab.ca_path, force=True, **_files(tmp_path)))[0]
    assert out['failed'] and out['error_kind'] == 'tls' and not out['changed'], out
    assert 'without clientAuth' in out['msg'] and 'reenroll=never' in out['msg'], out['msg']
