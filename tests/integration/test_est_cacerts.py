# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_cacerts against the lab EST server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os


def _vars(lab, tmp_path, **extra):
    result = dict(est_url=lab.url, est_ca_path=lab.ca_path, est_ca_fingerprint=lab.ca_fingerprint, work_dir=str(tmp_path / 'work'))
    os.makedirs(result['work_dir'], exist_ok=True)
    result.update(extra)
    return result


def _fail_run(runner, lab, tmp_path, **args):
    extra = _vars(lab, tmp_path)
    est_args = dict(url=lab.url)
    est_args.update(args)
    result = runner.run('est_cacerts_fail.yml', dict(extra, est_args=est_args))
    assert result.rc == 0, str(result)
    with open(os.path.join(extra['work_dir'], 'result.json')) as handle:
        return json.load(handle), result


def test_bootstrap_check_then_write_then_idempotent(runner, lab, tmp_path):
    result = runner.run('est_cacerts.yml', _vars(lab, tmp_path))
    assert result.rc == 0, str(result)
    assert result.recap()['failed'] == 0
    # Every est_cacerts call asks the server; bootstrap makes two requests (unverified, then verified).
    ops = [r['op'] for r in lab.requests()]
    assert ops == ['cacerts'] * 7, ops


def test_check_mode_writes_nothing(runner, lab, tmp_path):
    result = runner.run('est_cacerts_check_mode.yml', _vars(lab, tmp_path), check=True)
    assert result.rc == 0, str(result)


def test_diff_shows_the_new_bundle(runner, lab, tmp_path):
    result = runner.run('est_cacerts_check_mode.yml', _vars(lab, tmp_path), check=True, diff=True)
    assert result.rc == 0, str(result)
    assert '+-----BEGIN CERTIFICATE-----' in result.stdout


def test_module_defaults_and_ca_labels(runner, lab, tmp_path):
    result = runner.run('est_cacerts_module_defaults.yml',
                        _vars(lab, tmp_path, est_iot_fingerprint=lab.label_ca_fingerprint('iot')))
    assert result.rc == 0, str(result)
    assert sorted(r['label'] or '' for r in lab.requests()) == ['', 'iot']


def test_wrong_fingerprint_names_both_and_writes_nothing(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'ca.pem'
    wrong = 'ab' * 32
    out, _run = _fail_run(runner, lab, tmp_path, expected_fingerprint=wrong, dest=str(dest))
    assert out['failed']
    assert out['error_kind'] == 'bootstrap_mismatch'
    assert wrong in out['msg'] and lab.ca_fingerprint in out['msg']
    assert not dest.exists()


def test_wrong_fingerprint_keeps_the_existing_bundle(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'ca.pem'
    dest.parent.mkdir(parents=True)
    dest.write_text('previous bundle\n')
    out, _run = _fail_run(runner, lab, tmp_path, expected_fingerprint='cd' * 32, dest=str(dest))
    assert out['error_kind'] == 'bootstrap_mismatch'
    assert dest.read_text() == 'previous bundle\n'


def test_bootstrap_refuses_a_server_whose_tls_cert_does_not_chain_to_the_pinned_ca(runner, lab, tmp_path):
    # The iot CA is genuine and pinned, but the server's TLS certificate comes from the default CA.
    dest = tmp_path / 'work' / 'iot.pem'
    out, _run = _fail_run(runner, lab, tmp_path, ca_label='iot', expected_fingerprint=lab.label_ca_fingerprint('iot'), dest=str(dest))
    assert out['error_kind'] == 'bootstrap_mismatch', out
    assert 'TLS certificate' in out['msg']
    assert not dest.exists()


def test_untrusted_server_is_a_tls_error(runner, lab, tmp_path):
    other = tmp_path / 'other-ca.pem'
    other.write_text(open(lab.label_ca_path('iot')).read())
    out, _run = _fail_run(runner, lab, tmp_path, ca_path=str(other))
    assert out['error_kind'] == 'tls', out
    assert 'Traceback' not in out['msg']


def test_unknown_label_is_not_supported(runner, lab, tmp_path):
    out, _run = _fail_run(runner, lab, tmp_path, ca_path=lab.ca_path, ca_label='nope')
    assert out['error_kind'] == 'not_supported', out
    assert out['http_status'] == 404


def test_plain_http_is_refused(runner, lab, tmp_path):
    out, _run = _fail_run(runner, lab, tmp_path, url=lab.url.replace('https', 'http'), ca_path=lab.ca_path)
    assert out['error_kind'] == 'invalid_input', out


def test_connection_refused(runner, lab, tmp_path):
    lab.stop()
    out, _run = _fail_run(runner, lab, tmp_path, ca_path=lab.ca_path, timeout=5)
    assert out['error_kind'] == 'connection', out


def test_garbage_answer_is_a_clear_error(runner, lab, tmp_path):
    for fault, kind in (('garbage', 'bad_response'), ('bad_pkcs7', 'bad_response'), ('empty', 'bad_response'),
                        ('wrong_content_type', 'unexpected_content_type'), ('http500', 'http')):
        lab.set_fault('cacerts', fault, count=1)
        out, _run = _fail_run(runner, lab, tmp_path, ca_path=lab.ca_path, dest=str(tmp_path / 'work' / 'x.pem'))
        assert out['error_kind'] == kind, (fault, out)
        assert 'Traceback' not in json.dumps(out)
        assert not (tmp_path / 'work' / 'x.pem').exists()


def test_password_never_printed(runner, lab, tmp_path):
    extra = _vars(lab, tmp_path)
    est_args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password='s3cret-Pa55')
    result = runner.run('est_cacerts_fail.yml', dict(extra, est_args=est_args), verbosity=3)
    assert result.rc == 0, str(result)
    assert 's3cret-Pa55' not in result.output


def test_rollover_certificates_are_reported(runner, lab, tmp_path):
    lab.set_config(rollover=True)
    dest = tmp_path / 'work' / 'ca.pem'
    out, _run = _fail_run(runner, lab, tmp_path, expected_fingerprint=lab.ca_fingerprint, dest=str(dest))
    assert not out.get('failed'), out
    roles = sorted(c['role'] for c in out['certificates'])
    assert roles == ['rollover_new_with_old', 'rollover_old_with_new', 'rollover_old_with_old', 'root'], out['certificates']
    # RFC 7030 4.1.3: the most recent self-signed certificate (NewWithNew, latest notAfter) is the root.
    root = [c for c in out['certificates'] if c['role'] == 'root'][0]
    old = [c for c in out['certificates'] if c['role'] == 'rollover_old_with_old'][0]
    assert out['rollover'] and out['root_fingerprint'] == root['sha256_fingerprint'] != lab.ca_fingerprint
    assert old['sha256_fingerprint'] == lab.ca_fingerprint
    assert out['dropped'] == []
    assert dest.read_text().count('BEGIN CERTIFICATE') == 4
