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


# -- refresh_before (RFC 7030 4.1.2), trust_existing, the bundle's directory ----------------------------------

def _cacerts(runner, lab, dest, check=False, **args):
    call = dict(url=lab.url, dest=str(dest))
    call.update(args)
    return runner.call('pki.est.est_cacerts', call, check=check)[0]


def _due(not_after, days):
    import datetime
    end = datetime.datetime.strptime(not_after, '%Y-%m-%dT%H:%M:%SZ')
    return (end - datetime.timedelta(days=days)).strftime('%Y-%m-%dT%H:%M:%SZ')


def test_refresh_before_keeps_a_fresh_bundle_without_a_request(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'ca.pem'
    args = dict(expected_fingerprint=lab.ca_fingerprint, trust_existing=True, refresh_before='30d', mode='0644')
    first = _cacerts(runner, lab, dest, **args)
    assert first['changed'] and first['fetched'] and first['bootstrapped'], first
    assert first['refresh_due'] == _due(first['certificates'][0]['not_after'], 30)
    assert [r['op'] for r in lab.requests()] == ['cacerts', 'cacerts']  # the bootstrap: unverified, then verified
    lab.clear_requests()

    # Not due: nothing is sent; the certificates come from the file, the mode is still applied.
    args['mode'] = '0640'
    kept = _cacerts(runner, lab, dest, **args)
    assert lab.requests() == []
    assert not kept.get('failed'), kept
    assert kept['changed'] and not kept['fetched'] and not kept['bootstrapped'] and kept['dropped'] == []
    for key in ('certificates', 'root_fingerprint', 'rollover', 'pem', 'refresh_due'):
        assert kept[key] == first[key], key
    assert kept['pem'] == dest.read_text()
    assert oct(dest.stat().st_mode & 0o777) == '0o640'

    again = _cacerts(runner, lab, dest, **args)
    assert not again['changed'] and not again['fetched']
    assert lab.requests() == []

    # Check mode decides the same way, also without a request.
    checked = _cacerts(runner, lab, dest, check=True, **args)
    assert not checked['changed'] and not checked['fetched']
    assert lab.requests() == []


def test_refresh_before_longer_than_the_ca_lifetime_fetches_every_time(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'ca.pem'
    _cacerts(runner, lab, dest, expected_fingerprint=lab.ca_fingerprint)
    lab.clear_requests()
    # The lab CA lives 10 years: a 4000-day window (or 100% of the lifetime) is always due.
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    for window in ('4000d', '100%'):
        out = _cacerts(runner, lab, dest, ca_path=str(dest), refresh_before=window)
        assert out['fetched'] and not out['changed'], out
        assert out['refresh_due'] <= now  # due already: every run asks
    assert [r['op'] for r in lab.requests()] == ['cacerts', 'cacerts']


def test_refresh_before_fetches_over_an_unreadable_bundle(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'ca.pem'
    dest.parent.mkdir(parents=True)
    dest.write_text('not a certificate\n')
    out = _cacerts(runner, lab, dest, expected_fingerprint=lab.ca_fingerprint, trust_existing=True, refresh_before='30d')
    assert out['changed'] and out['fetched'] and out['bootstrapped'], out
    assert any('is not usable' in w and 'trusting expected_fingerprint instead' in w for w in out.get('warnings', [])), out
    assert dest.read_text() == out['pem']


def test_refresh_before_needs_dest_and_a_valid_window(runner, lab, tmp_path):
    out = runner.call('pki.est.est_cacerts', dict(url=lab.url, ca_path=lab.ca_path, refresh_before='30d'))[0]
    assert out['failed'] and 'dest' in out['msg'], out
    out = _cacerts(runner, lab, tmp_path / 'work' / 'ca.pem', ca_path=lab.ca_path, refresh_before='soon')
    assert out['failed'] and out['error_kind'] == 'invalid_input' and out['msg'].startswith('refresh_before must be'), out
    assert lab.requests() == []


def test_trust_existing_with_nothing_to_trust_fails_and_writes_nothing(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'pki' / 'ca.pem'
    out = _cacerts(runner, lab, dest, trust_existing=True, refresh_before='30d')
    assert out['failed'] and not out['changed'], out
    assert out['error_kind'] == 'invalid_input'
    assert out['msg'].startswith('No EST CA bundle at %s yet: set expected_fingerprint' % dest), out
    assert 'ca_path' in out['msg'] and 'system trust store' in out['msg']
    assert not dest.parent.exists()
    assert lab.requests() == []


def test_trust_existing_verifies_against_the_bundle_not_the_pin(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'ca.pem'
    _cacerts(runner, lab, dest, expected_fingerprint=lab.ca_fingerprint)
    lab.clear_requests()
    # The pin and ca_path were for the first contact: with a bundle they are not used (not even read).
    out = _cacerts(runner, lab, dest, trust_existing=True, expected_fingerprint='ab' * 32, ca_path=str(tmp_path / 'gone.pem'))
    assert not out.get('failed') and out['fetched'] and not out['bootstrapped'] and not out['changed'], out
    assert [r['op'] for r in lab.requests()] == ['cacerts']

    # A bundle of another CA does not verify the server: a TLS error that names the bundle; the bundle stays.
    other = tmp_path / 'work' / 'other.pem'
    other.write_text(open(lab.label_ca_path('iot')).read())
    before = other.read_text()
    out = _cacerts(runner, lab, other, trust_existing=True, expected_fingerprint=lab.ca_fingerprint)
    assert out['failed'] and out['error_kind'] == 'tls' and not out['changed'], out
    assert 'EST CA bundle %s of an earlier run' % other in out['msg']
    assert other.read_text() == before


def test_missing_parent_directory_is_created(runner, lab, tmp_path):
    dest = tmp_path / 'work' / 'new' / 'pki' / 'ca.pem'
    checked = _cacerts(runner, lab, dest, check=True, expected_fingerprint=lab.ca_fingerprint)
    assert checked['changed'] and not (tmp_path / 'work' / 'new').exists(), checked
    out = _cacerts(runner, lab, dest, expected_fingerprint=lab.ca_fingerprint, mode='0644')
    assert out['changed'] and dest.read_text() == out['pem'], out
    for directory in (dest.parent, dest.parent.parent):
        assert oct(directory.stat().st_mode & 0o777) == '0o755', directory
