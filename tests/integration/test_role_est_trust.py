# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The est_trust role and the OS trust store, through playbooks/est_trust_system_store.yml against the lab server.

The trust store is a directory under tmp_path and the update command a script that logs each call and runs the
real update-ca-certificates (--fresh) against directories under tmp_path, so nothing of the host's own trust
store is touched and the log shows when the update ran.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import pathlib
import shutil
import stat

import pytest

NAME = 'pki-est-ca'
PLAYBOOK = 'est_trust_system_store.yml'
UPDATE_CA_CERTIFICATES = shutil.which('update-ca-certificates') or '/usr/sbin/update-ca-certificates'

needs_update_ca_certificates = pytest.mark.skipif(not os.path.exists(UPDATE_CA_CERTIFICATES),
                                                  reason='needs update-ca-certificates (Debian package ca-certificates)')


def _pem_cert(path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    cert = x509.load_pem_x509_certificate(pathlib.Path(str(path)).read_bytes())
    return cert.public_bytes(Encoding.PEM).decode('ascii')


def _fingerprint(pem):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    return x509.load_pem_x509_certificate(pem.encode('ascii')).fingerprint(hashes.SHA256()).hex()


def _self_signed(common_name):
    """PEM of a throwaway self-signed CA certificate (for files that are not this role's)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM).decode('ascii')


def _file_name(pem):
    return '%s-%s.crt' % (NAME, _fingerprint(pem)[:16])


class Store:
    """A trust store under tmp_path with a logging update command that runs the real update-ca-certificates."""

    def __init__(self, tmp_path):
        self.base = tmp_path / 'os-trust'
        self.anchors = self.base / 'local'      # like /usr/local/share/ca-certificates
        self.etc = self.base / 'etc-ssl-certs'  # like /etc/ssl/certs
        self.log = self.base / 'update.log'
        for directory in (self.anchors, self.etc, self.base / 'share', self.base / 'hooks'):
            directory.mkdir(parents=True)
        (self.base / 'ca-certificates.conf').write_text('')
        self.command = self.base / 'update-trust'
        self.command.write_text(
            '#!/bin/sh\necho run >> "%s"\nexec "%s" --fresh --certsconf "%s" --certsdir "%s" --localcertsdir "%s" '
            '--etccertsdir "%s" --hooksdir "%s"\n'
            % (self.log, UPDATE_CA_CERTIFICATES, self.base / 'ca-certificates.conf', self.base / 'share', self.anchors,
               self.etc, self.base / 'hooks'))
        self.command.chmod(0o755)

    def files(self):
        return dict((p.name, p.read_text()) for p in self.anchors.iterdir())

    def updates(self):
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def system_bundle(self):
        """The bundle update-ca-certificates built (like /etc/ssl/certs/ca-certificates.crt)."""
        return (self.etc / 'ca-certificates.crt').read_text()

    def linked(self, file_name):
        """Whether update-ca-certificates linked the file into the etc directory (and still does)."""
        link = self.etc / (file_name[:-len('.crt')] + '.pem')
        return os.path.islink(str(link)) and os.path.exists(str(link))


def _extra(lab, tmp_path, store, **more):
    extra = dict(est_trust_url=lab.url, est_trust_expected_fingerprint=lab.ca_fingerprint,
                 est_trust_bundle_path=str(tmp_path / 'pki' / 'ca.pem'), est_trust_system_store=True,
                 est_trust_system_store_dir=str(store.anchors), est_trust_system_store_update_command=str(store.command))
    extra.update(more)
    return extra


@needs_update_ca_certificates
def test_system_store_one_file_per_root_through_a_rollover(runner, lab, tmp_path):
    store = Store(tmp_path)
    root = _pem_cert(lab.ca_path)
    assert _fingerprint(root) == lab.ca_fingerprint
    stale = _self_signed('Retired EST CA')     # a root of this role that the CA no longer sends
    foreign = _self_signed('Another EST CA')   # another instance of the role (est_trust_system_name pki-est-ca-iot)
    unrelated = _self_signed('Unrelated CA')
    seeded = {
        NAME + '.crt': root,                   # the single file of earlier versions of the role
        _file_name(stale): stale,
        NAME + '-iot-0123456789abcdef.crt': foreign,
        'unrelated.crt': unrelated,
    }
    for name, pem in seeded.items():
        (store.anchors / name).write_text(pem)
    extra = _extra(lab, tmp_path, store)

    check = runner.run(PLAYBOOK, extra, check=True)
    assert check.rc == 0, str(check)
    assert check.recap()['changed'] >= 1, str(check)
    assert store.files() == seeded and store.updates() == 0
    assert not (tmp_path / 'pki' / 'ca.pem').exists()

    first = runner.run(PLAYBOOK, extra)
    assert first.rc == 0, str(first)
    kept = dict((k, v) for k, v in seeded.items() if k in (NAME + '-iot-0123456789abcdef.crt', 'unrelated.crt'))
    assert store.files() == dict(kept, **{_file_name(root): root})
    assert store.updates() == 1
    assert store.linked(_file_name(root)) and root in store.system_bundle()
    assert stale not in store.system_bundle()
    mode = os.stat(str(store.anchors / _file_name(root))).st_mode
    assert stat.S_IMODE(mode) == 0o644

    lab.clear_requests()
    again = runner.run(PLAYBOOK, extra)
    assert again.rc == 0, str(again)
    assert again.recap()['changed'] == 0, str(again)
    assert store.updates() == 1
    assert lab.requests() == []  # the bundle is far from expiry (RFC 7030 4.1.2): not fetched

    # RFC 7030 4.1.3 root key update: /cacerts adds NewWithNew, OldWithNew and NewWithOld. Both self-signed
    # roots become trust anchors; the two cross certificates do not go into the trust store. The bundle is not
    # due, so the operator asks for the refresh (est_trust_refresh).
    lab.set_config(rollover=True)
    new_root = _pem_cert(lab.state_dir / 'rollover' / 'new_with_new.pem')
    unasked = runner.run(PLAYBOOK, extra)
    assert unasked.rc == 0 and unasked.recap()['changed'] == 0, str(unasked)
    assert lab.requests() == [] and store.updates() == 1
    extra['est_trust_refresh'] = True
    rollover = runner.run(PLAYBOOK, extra)
    assert rollover.rc == 0, str(rollover)
    assert [r['op'] for r in lab.requests()] == ['cacerts']
    assert store.files() == dict(kept, **{_file_name(root): root, _file_name(new_root): new_root})
    assert store.updates() == 2
    assert new_root in store.system_bundle() and root in store.system_bundle()
    assert 'verified over TLS' in rollover.stdout
    for cross in ('old_with_new.pem', 'new_with_old.pem'):
        assert _pem_cert(lab.state_dir / 'rollover' / cross) not in store.system_bundle()

    # A CA the bundle no longer holds is retired: its file goes, and the update drops it.
    lab.set_config(rollover=False)
    retired = runner.run(PLAYBOOK, extra)
    assert retired.rc == 0, str(retired)
    assert store.files() == dict(kept, **{_file_name(root): root})
    assert store.updates() == 3
    assert not store.linked(_file_name(new_root)) and new_root not in store.system_bundle()
    assert store.linked(_file_name(root)) and root in store.system_bundle()


@needs_update_ca_certificates
def test_system_store_false_removes_nothing_and_absent_removes_the_roles_files(runner, lab, tmp_path):
    store = Store(tmp_path)
    root = _pem_cert(lab.ca_path)
    foreign = _self_signed('Another EST CA')
    seeded = {_file_name(root): root, NAME + '.crt': root, NAME + '-iot-0123456789abcdef.crt': foreign}
    for name, pem in seeded.items():
        (store.anchors / name).write_text(pem)

    off = runner.run(PLAYBOOK, _extra(lab, tmp_path, store, est_trust_system_store=False))
    assert off.rc == 0, str(off)
    assert store.files() == seeded and store.updates() == 0
    assert (tmp_path / 'pki' / 'ca.pem').exists()

    absent = _extra(lab, tmp_path, store, est_trust_system_store_state='absent')
    removed = runner.run(PLAYBOOK, absent)
    assert removed.rc == 0, str(removed)
    assert store.files() == {NAME + '-iot-0123456789abcdef.crt': foreign}
    assert store.updates() == 1

    again = runner.run(PLAYBOOK, absent)
    assert again.rc == 0, str(again)
    assert again.recap()['changed'] == 0, str(again)
    assert store.updates() == 1


@needs_update_ca_certificates
def test_system_store_unknown_os_family_fails_before_anything_is_fetched(runner, lab, tmp_path):
    extra = dict(est_trust_url=lab.url, est_trust_expected_fingerprint=lab.ca_fingerprint,
                 est_trust_bundle_path=str(tmp_path / 'pki' / 'ca.pem'), est_trust_system_store=True,
                 est_trust_test_os_family='Plan9')
    result = runner.run(PLAYBOOK, extra)
    assert result.rc != 0
    assert 'OS family Plan9 has no known trust store layout' in result.stdout, str(result)
    assert 'est_trust_system_store_dir' in result.stdout
    assert lab.requests() == []
    assert not (tmp_path / 'pki').exists()


@needs_update_ca_certificates
@pytest.mark.skipif(not os.path.exists('/etc/debian_version'), reason='the Debian layout is checked on Debian only')
def test_system_store_finds_the_debian_layout_without_facts(runner, lab, tmp_path):
    """Without gathered facts the role finds the OS family itself; check mode, so the host's store is untouched."""
    extra = dict(est_trust_url=lab.url, est_trust_expected_fingerprint=lab.ca_fingerprint,
                 est_trust_bundle_path=str(tmp_path / 'pki' / 'ca.pem'), est_trust_system_store=True)
    result = runner.run(PLAYBOOK, extra, check=True, diff=True)
    assert result.rc == 0, str(result)
    target = '/usr/local/share/ca-certificates/' + _file_name(_pem_cert(lab.ca_path))
    if not os.path.exists(target):
        assert target in result.stdout, str(result)
    assert not (tmp_path / 'pki' / 'ca.pem').exists()


def _trust_extra(lab, tmp_path, **more):
    extra = dict(est_trust_url=lab.url, est_trust_expected_fingerprint=lab.ca_fingerprint,
                 est_trust_bundle_path=str(tmp_path / 'pki' / 'est' / 'ca.pem'))
    extra.update(more)
    return extra


def test_rerun_keeps_a_fresh_bundle_without_a_request_and_refresh_fetches(runner, lab, tmp_path):
    bundle = tmp_path / 'pki' / 'est' / 'ca.pem'
    check = runner.run(PLAYBOOK, _trust_extra(lab, tmp_path), check=True)
    assert check.rc == 0, str(check)
    assert not (tmp_path / 'pki').exists()  # check mode makes neither the directory nor the bundle

    first = runner.run(PLAYBOOK, _trust_extra(lab, tmp_path))
    assert first.rc == 0, str(first)
    assert first.recap()['changed'] == 1, str(first)
    assert 'bootstrapped from the pinned fingerprint' in first.stdout
    assert stat.S_IMODE(os.stat(str(bundle.parent)).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(str(bundle)).st_mode) == 0o644
    lab.clear_requests()

    # One module run, no request: the bundle is far from expiry (default est_trust_refresh_before 30d).
    again = runner.run(PLAYBOOK, _trust_extra(lab, tmp_path))
    assert again.rc == 0, str(again)
    assert again.recap()['changed'] == 0, str(again)
    assert lab.requests() == []
    assert 'bundle valid, not fetched (refresh due from ' in again.stdout, str(again)
    assert lab.ca_fingerprint in again.stdout

    # est_trust_refresh: one verified request (the bundle verifies the server, the pin is not needed any more).
    refresh = runner.run(PLAYBOOK, _trust_extra(lab, tmp_path, est_trust_refresh=True, est_trust_expected_fingerprint=''))
    assert refresh.rc == 0, str(refresh)
    assert refresh.recap()['changed'] == 0, str(refresh)
    assert [r['op'] for r in lab.requests()] == ['cacerts']
    assert 'verified over TLS' in refresh.stdout
    lab.clear_requests()

    # A window longer than the CA's lifetime is always due; an empty one fetches on every run.
    for window in ('4000d', ''):
        due = runner.run(PLAYBOOK, _trust_extra(lab, tmp_path, est_trust_refresh_before=window))
        assert due.rc == 0 and due.recap()['changed'] == 0, str(due)
    assert [r['op'] for r in lab.requests()] == ['cacerts', 'cacerts']


def test_first_run_without_anything_to_trust_fails_before_any_request(runner, lab, tmp_path):
    result = runner.run(PLAYBOOK, _trust_extra(lab, tmp_path, est_trust_expected_fingerprint=''))
    assert result.rc != 0
    assert 'No EST CA bundle at %s yet' % (tmp_path / 'pki' / 'est' / 'ca.pem') in result.stdout, str(result)
    assert 'expected_fingerprint' in result.stdout and 'ca_path' in result.stdout
    assert lab.requests() == []
    assert not (tmp_path / 'pki').exists()
