# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The est_enroll role with a list of certificates (est_enroll_certificates) and with the single-certificate
variables, against the lab EST server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import grp
import json
import os
import pwd
import re

PASSWORD = 's3cret-Pa55'
P12_PASSPHRASE = 'p12-Pa55phrase'
PLAYBOOK = 'est_enroll_role_list.yml'


def _owner():
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def _vars(lab, tmp_path, **extra):
    owner, group = _owner()
    result = dict(est_enroll_url=lab.url, est_enroll_ca_path=lab.ca_path, est_enroll_username='alice',
                  est_enroll_password=PASSWORD, est_enroll_dir=str(tmp_path / 'pki'), est_enroll_owner=owner,
                  est_enroll_group=group, report_path=str(tmp_path / 'report.json'))
    result.update(extra)
    return result


def _report(tmp_path):
    return json.loads((tmp_path / 'report.json').read_text())


def _mode(path):
    return '%04o' % (os.stat(str(path)).st_mode & 0o7777)


def _log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def _cert(path):
    from cryptography import x509
    return x509.load_pem_x509_certificate(path.read_bytes())


def _due(cert, share):
    """When the module renews ``cert`` with renew_before=<share>, as the role's summary shows it."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    due = end.timestamp() - (end - start).total_seconds() * share
    return datetime.datetime.fromtimestamp(int(due), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _other_owner():
    """A user and group other than the test's own (nobody), for an entry's owner/group; None when not possible."""
    if os.getuid() != 0:
        return None
    try:
        nobody = pwd.getpwnam('nobody')
        return nobody.pw_name, grp.getgrgid(nobody.pw_gid).gr_name
    except KeyError:
        return None


def _entries(tmp_path, log, mqtt_renew_before=None):
    web = dict(name='web', common_name='web1.example.test',
               subject_alt_name=['DNS:web1.example.test', 'DNS:www.example.test'],
               extended_key_usage=['serverAuth'], pkcs12=True, pkcs12_passphrase=P12_PASSPHRASE,
               commands=[['sh', '-c', 'echo "$EST_ENROLL_NAME $EST_ENROLL_ACTION $EST_ENROLL_CERT" >> "$0"', str(log)]])
    # No subject_alt_name: the common name is the only SAN. Own directory (created), own modes (one as
    # a number, as YAML reads 0640 without quotes), a command given as a string (split into words, no shell).
    mqtt = dict(name='mqtt', common_name='mqtt.example.test', key_type='ec-p384', extended_key_usage=['clientAuth'],
                dir=str(tmp_path / 'pki' / 'mqtt'), mode='0640', key_mode=0o640,
                commands=["sh -c 'echo \"$EST_ENROLL_NAME $EST_ENROLL_ACTION $EST_ENROLL_PKCS12\" >> %s'" % log])
    if _other_owner():
        mqtt['owner'], mqtt['group'] = _other_owner()
    if mqtt_renew_before:
        mqtt['renew_before'] = mqtt_renew_before
    return [web, mqtt]


def test_list_enrolls_each_entry_and_acts_only_on_changes(runner, lab, tmp_path):
    pki, log = tmp_path / 'pki', tmp_path / 'changes.log'

    # 1. Both entries enrolled, files where the entries say, commands run once each.
    first = runner.run(PLAYBOOK, _vars(lab, tmp_path, est_enroll_certificates=_entries(tmp_path, log)), verbosity=1)
    assert first.rc == 0, str(first)
    assert sorted(r['op'] for r in lab.requests()) == ['simpleenroll', 'simpleenroll']
    for name in ('web.crt', 'web.key', 'web-chain.pem', 'web-fullchain.pem', 'web.p12'):
        assert (pki / name).exists(), name
    for name in ('mqtt.crt', 'mqtt.key', 'mqtt-chain.pem', 'mqtt-fullchain.pem'):
        assert (pki / 'mqtt' / name).exists(), name
    assert not (pki / 'mqtt' / 'mqtt.p12').exists()
    assert (_mode(pki / 'web.crt'), _mode(pki / 'web.key'), _mode(pki / 'web.p12')) == ('0644', '0600', '0600')
    assert (_mode(pki / 'mqtt' / 'mqtt.crt'), _mode(pki / 'mqtt' / 'mqtt.key')) == ('0640', '0640')
    if _other_owner():
        # The entry's owner, also of the directory the role created for it; the shared one keeps the role-wide owner.
        for path in (pki / 'mqtt', pki / 'mqtt' / 'mqtt.crt', pki / 'mqtt' / 'mqtt.key'):
            assert pwd.getpwuid(os.stat(str(path)).st_uid).pw_name == _other_owner()[0], path
        assert os.stat(str(pki)).st_uid == os.getuid()
    assert sorted(_log_lines(log)) == ['mqtt enrolled ', 'web enrolled %s' % (pki / 'web.crt')]
    # Secrets are not in the loop items, so not in the output even with -v.
    assert PASSWORD not in first.output and P12_PASSPHRASE not in first.output

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12
    web_cert, mqtt_cert = _cert(pki / 'web.crt'), _cert(pki / 'mqtt' / 'mqtt.crt')
    assert web_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ['web1.example.test', 'www.example.test']
    assert mqtt_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ['mqtt.example.test']
    assert mqtt_cert.public_key().curve.name == 'secp384r1'
    bundle = pkcs12.load_pkcs12((pki / 'web.p12').read_bytes(), P12_PASSPHRASE.encode())
    assert bundle.cert.certificate == web_cert

    report = _report(tmp_path)
    resolved = dict((entry['name'], entry) for entry in report['resolved'])
    assert resolved['web']['pkcs12_path'] == str(pki / 'web.p12')
    assert resolved['web']['url'] == lab.url and resolved['web']['renew_before'] == '33%'
    assert resolved['mqtt']['path'] == str(pki / 'mqtt' / 'mqtt.crt')
    assert resolved['mqtt']['fullchain_path'] == str(pki / 'mqtt' / 'mqtt-fullchain.pem')
    assert resolved['mqtt']['pkcs12_path'] == '' and resolved['mqtt']['subject_alt_name'] == ['DNS:mqtt.example.test']
    assert (resolved['mqtt']['mode'], resolved['mqtt']['key_mode'], resolved['web']['key_mode']) == ('0640', '0640', '0600')
    assert all('password' not in entry and 'pkcs12_passphrase' not in entry for entry in report['resolved'])
    assert sorted((e['name'], e['action']) for e in report['changed']) == [('mqtt', 'enrolled'), ('web', 'enrolled')]
    assert 'web: enrolled: CN=web1.example.test, valid until ' in first.stdout
    lab.clear_requests()

    # 2. Nothing to do: no request, nothing changed, no command; the summary says so in words.
    second = runner.run(PLAYBOOK, _vars(lab, tmp_path, est_enroll_certificates=_entries(tmp_path, log)))
    assert second.rc == 0, str(second)
    assert second.recap()['changed'] == 0, str(second)
    assert lab.requests() == []
    assert len(_log_lines(log)) == 2
    assert _report(tmp_path)['changed'] == []
    expected = 'web: nothing to do: CN=web1.example.test, valid until %s, renewal due from %s' % (
        web_cert.not_valid_after_utc.strftime('%Y-%m-%dT%H:%M:%SZ'), _due(web_cert, 0.33))
    assert expected in second.stdout, second.stdout
    assert 'mqtt: nothing to do: CN=mqtt.example.test' in second.stdout
    assert 'none: CN=' not in second.stdout

    # 3. A renewal window longer than the lifetime on mqtt: only mqtt renews, only its command runs.
    web_before = (pki / 'web.crt').read_bytes()
    third = runner.run(PLAYBOOK, _vars(lab, tmp_path, est_enroll_certificates=_entries(tmp_path, log, '60d')))
    assert third.rc == 0, str(third)
    assert [r['op'] for r in lab.requests()] == ['simplereenroll']
    assert (pki / 'web.crt').read_bytes() == web_before
    assert _cert(pki / 'mqtt' / 'mqtt.crt') != mqtt_cert
    assert _log_lines(log)[2:] == ['mqtt renewed ']
    assert [(e['name'], e['action']) for e in _report(tmp_path)['changed']] == [('mqtt', 'renewed')]
    assert re.search(r'mqtt: renewed: CN=mqtt\.example\.test, valid until \S+, renewal due already', third.stdout), third.stdout
    assert 'web: nothing to do' in third.stdout


def test_single_certificate_variables_make_one_entry(runner, lab, tmp_path):
    log = tmp_path / 'changes.log'
    extra = _vars(lab, tmp_path, est_enroll_extended_key_usage=['serverAuth'],
                  est_enroll_commands=[['sh', '-c', 'echo "$EST_ENROLL_NAME $EST_ENROLL_ACTION" >> "$0"', str(log)]])
    result = runner.run(PLAYBOOK, extra)
    assert result.rc == 0, str(result)
    pki = tmp_path / 'pki'
    for name in ('host.crt', 'host.key', 'host-chain.pem', 'host-fullchain.pem'):
        assert (pki / name).exists(), name
    assert not (pki / 'host.p12').exists()
    assert _mode(pki / 'host.key') == '0600' and _mode(pki / 'host.crt') == '0644'
    assert 'host: enrolled: CN=testhost' in result.stdout
    assert _log_lines(log) == ['host enrolled']
    report = _report(tmp_path)
    assert len(report['resolved']) == 1
    entry = report['resolved'][0]
    assert (entry['name'], entry['common_name'], entry['subject_alt_name']) == ('host', 'testhost', ['DNS:testhost'])
    assert entry['extended_key_usage'] == ['serverAuth'] and entry['path'] == str(pki / 'host.crt')
    assert report['result']['action'] == 'enrolled' and report['result']['subject'] == 'CN=testhost'


def test_failing_entry_reported_after_the_others_acted(runner, lab, tmp_path):
    log = tmp_path / 'changes.log'
    entries = [dict(name='good', common_name='good.example.test',
                    commands=[['sh', '-c', 'echo "$EST_ENROLL_NAME" >> "$0"', str(log)]]),
               dict(name='bad', common_name='bad.example.test', ca_path=str(tmp_path / 'missing-ca.pem'),
                    commands=[['sh', '-c', 'echo "$EST_ENROLL_NAME" >> "$0"', str(log)]])]
    result = runner.run(PLAYBOOK, _vars(lab, tmp_path, est_enroll_certificates=entries))
    assert result.rc != 0
    assert (tmp_path / 'pki' / 'good.crt').exists() and not (tmp_path / 'pki' / 'bad.crt').exists()
    # good's command ran (handlers flushed before the role fails the host); bad's did not.
    assert _log_lines(log) == ['good']
    assert 'est_enroll failed for bad' in result.stdout, str(result)
    assert 'bad: failed: ' in result.stdout


def test_unknown_entry_key_is_refused_before_any_request(runner, lab, tmp_path):
    entries = [dict(name='web', comon_name='web1.example.test')]
    result = runner.run(PLAYBOOK, _vars(lab, tmp_path, est_enroll_certificates=entries))
    assert result.rc != 0
    assert 'comon_name' in result.output, str(result)
    assert lab.requests() == []
    assert not (tmp_path / 'pki').exists()
