# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The enrollment modules create the missing directories of their files when they first write there.

Mode 0755, the module's owner and group; not in check mode, not before anything is written, so a
request that fails creates nothing; existing directories are left as they are. A module killed at
any file step (directory creation included) leaves a host the next run repairs.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import json
import os
import pwd
import re
import shutil
import signal
import stat

import pytest
from support.modrun import run_module as _module

PASSWORD = 's3cret-Pa55'


def _owner():
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def _other_owner():
    """nobody and its group when the tests run as root (so chown is seen to happen); else None."""
    if os.getuid() != 0:
        return None
    try:
        nobody = pwd.getpwnam('nobody')
        return nobody.pw_name, grp.getgrgid(nobody.pw_gid).gr_name
    except KeyError:
        return None


def _owners():
    return ['self', 'other'] if _other_owner() else ['self']


def _mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def _names(path):
    st = os.stat(str(path))
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def _tree(root):
    """Every path under ``root``, relative, sorted."""
    found = []
    for top, dirs, files in os.walk(str(root)):
        for name in dirs + files:
            found.append(os.path.relpath(os.path.join(top, name), str(root)))
    return sorted(found)


def _layout(tmp_path):
    """Output files in directories that do not exist: two levels for the certificate, others elsewhere."""
    base = tmp_path / 'host'
    return dict(path=str(base / 'etc' / 'pki' / 'app.crt'),
                private_key_path=str(base / 'private' / 'keys' / 'app.key'),
                chain_path=str(base / 'etc' / 'pki' / 'chain' / 'app-chain.pem'),
                fullchain_path=str(base / 'full' / 'app-fullchain.pem'),
                pkcs12_path=str(base / 'p12' / 'app.p12'))


CREATED = ['etc', 'etc/pki', 'etc/pki/chain', 'full', 'p12', 'private', 'private/keys']


def _args(lab, tmp_path, owner, **extra):
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD,
                common_name='dirs.example.test', subject_alt_name=['DNS:dirs.example.test'],
                owner=owner[0], group=owner[1], pkcs12_passphrase='p12-Secret')
    args.update(_layout(tmp_path))
    args.update(extra)
    return args


@pytest.mark.parametrize('who', _owners())
def test_enroll_creates_missing_directories(runner, lab, tmp_path, who):
    owner = _owner() if who == 'self' else _other_owner()
    base = tmp_path / 'host'
    base.mkdir()
    args = _args(lab, tmp_path, owner)

    # Check mode: says what it would do, creates nothing, sends nothing.
    out = runner.call('pki.est.est_enroll', args, check=True)[0]
    assert out['changed'] and out['action'] == 'enroll', out
    assert _tree(base) == []
    assert lab.requests() == []

    old = os.umask(0o077)  # the new directories are 0755 whatever the umask of the controller
    try:
        out = runner.call('pki.est.est_enroll', args)[0]
    finally:
        os.umask(old)
    assert out['changed'] and out['action'] == 'enrolled', out
    for name in CREATED:
        assert os.path.isdir(str(base / name)), name
        assert _mode(base / name) == 0o755, name
        assert _names(base / name) == owner, name
    files = ['etc/pki/app.crt', 'etc/pki/app.crt.est.json', 'etc/pki/chain/app-chain.pem', 'full/app-fullchain.pem',
             'p12/app.p12', 'private/keys/app.key']
    # Nothing else: no temp directory, no staged file left behind.
    assert _tree(base) == sorted(CREATED + files)
    assert _mode(base / 'private' / 'keys' / 'app.key') == 0o600
    assert _names(base / 'etc' / 'pki' / 'app.crt') == owner

    # Idempotent: nothing to do, nothing changed.
    out = runner.call('pki.est.est_enroll', args)[0]
    assert not out['changed'] and out['action'] == 'none', out


def test_existing_directories_are_left_as_they_are(runner, lab, tmp_path):
    base = tmp_path / 'host'
    (base / 'etc').mkdir(parents=True)
    os.chmod(str(base / 'etc'), 0o700)
    (base / 'private' / 'keys').mkdir(parents=True)
    os.chmod(str(base / 'private' / 'keys'), 0o750)
    owner = _other_owner() or _owner()
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path, owner))[0]
    assert out['action'] == 'enrolled', out
    # Existing: mode and owner untouched. Created below an existing one: 0755 and the module's owner.
    assert _mode(base / 'etc') == 0o700 and _names(base / 'etc') == _owner()
    assert _mode(base / 'private' / 'keys') == 0o750 and _names(base / 'private' / 'keys') == _owner()
    assert _mode(base / 'etc' / 'pki') == 0o755 and _names(base / 'etc' / 'pki') == owner


def test_failed_enrollment_creates_no_directory(runner, lab, tmp_path):
    base = tmp_path / 'host'
    base.mkdir()
    args = _args(lab, tmp_path, _owner())
    for case, kind in ((dict(url='https://127.0.0.1:1'), 'connection'), (dict(password='wrong'), 'auth_required'),
                       (dict(ca_path=str(tmp_path / 'missing-ca.pem')), 'invalid_input')):
        out = runner.call('pki.est.est_enroll', dict(args, **case))[0]
        assert out['failed'] and out['error_kind'] == kind and out['changed'] is False, (case, out)
        assert _tree(base) == [], case


def test_unknown_owner_creates_no_directory(runner, lab, tmp_path):
    base = tmp_path / 'host'
    base.mkdir()
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path, ('no-such-user-x9', _owner()[1])))[0]
    assert out['failed'] and out['error_kind'] == 'invalid_input' and out['changed'] is False, out
    assert 'no-such-user-x9' in out['msg']
    assert _tree(base) == []


def test_pending_request_creates_the_certificate_directory(runner, lab, tmp_path):
    lab.set_config(pending={'after_polls': 1}, retry_after=7)
    base = tmp_path / 'host'
    base.mkdir()
    args = _args(lab, tmp_path, _owner())
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['pending'] and out['changed'], out
    # Only the directory of the pending files (beside the certificate) is needed yet.
    assert _tree(base) == ['etc', 'etc/pki', 'etc/pki/app.crt.pending.json', 'etc/pki/app.crt.pending.key']
    assert _mode(base / 'etc') == 0o755 and _mode(base / 'etc' / 'pki') == 0o755
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'enrolled', out
    assert all(os.path.isdir(str(base / name)) for name in CREATED)


def test_refusal_recorded_in_a_new_directory_reports_changed(runner, lab, tmp_path):
    """The CA drops a requested SAN: the refusal is kept beside the certificate, in a directory made for it.

    The run fails, and reports changed because the directory stays; the next run sends nothing and changes nothing.
    """
    lab.set_config(copy_sans=False)
    base = tmp_path / 'host'
    base.mkdir()
    args = _args(lab, tmp_path, _owner())
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['failed'] and out['error_kind'] == 'verification' and out['changed'] is True, out
    assert _tree(base) == ['etc', 'etc/pki', 'etc/pki/app.crt.refused.json']
    lab.clear_requests()
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['failed'] and 'none was sent' in out['msg'] and out['changed'] is False, out
    assert lab.requests() == []


@pytest.mark.parametrize('module', ['est_reenroll', 'est_serverkeygen', 'est_fullcmc'])
def test_other_enrollment_modules_create_directories(runner, lab, tmp_path, module):
    base = tmp_path / 'host'
    base.mkdir()
    owner = _other_owner() or _owner()
    args = _args(lab, tmp_path, owner)
    if module == 'est_reenroll':
        # Renewal of a certificate whose chain and full chain now go to directories that do not exist yet.
        first = dict(args, fullchain_path=None, pkcs12_path=None, chain_path=None)
        assert runner.call('pki.est.est_enroll', first)[0]['action'] == 'enrolled'
        for name in ('common_name', 'subject_alt_name'):
            args.pop(name)
        args.update(force=True)
        created = ['etc/pki/chain', 'full', 'p12']
    else:
        created = CREATED
    out = runner.call('pki.est.' + module, args)[0]
    assert out['changed'] and not out.get('failed'), out
    for name in created:
        assert _mode(base / name) == 0o755 and _names(base / name) == owner, name
    assert not [name for name in _tree(base) if name.endswith('.tmp') or '.pending.' in name]


def test_role_entries_in_directories_that_do_not_exist(runner, lab, tmp_path):
    owner = _other_owner() or _owner()
    base = tmp_path / 'host'
    entries = [dict(name='web', common_name='web.example.test'),
               dict(name='mqtt', common_name='mqtt.example.test', dir=str(base / 'opt' / 'mqtt' / 'tls'),
                    owner=owner[0], group=owner[1])]
    extra = dict(est_enroll_url=lab.url, est_enroll_ca_path=lab.ca_path, est_enroll_username='alice',
                 est_enroll_password=PASSWORD, est_enroll_dir=str(base / 'etc' / 'pki' / 'est'),
                 est_enroll_owner=_owner()[0], est_enroll_group=_owner()[1], est_enroll_certificates=entries,
                 report_path=str(tmp_path / 'report.json'))
    check = runner.run('est_enroll_role_list.yml', extra, check=True)
    assert check.rc == 0, str(check)
    assert not base.exists()

    first = runner.run('est_enroll_role_list.yml', extra)
    assert first.rc == 0, str(first)
    for name in ('etc', 'etc/pki', 'etc/pki/est'):
        assert _mode(base / name) == 0o755 and _names(base / name) == _owner(), name
    for name in ('opt', 'opt/mqtt', 'opt/mqtt/tls'):
        assert _mode(base / name) == 0o755 and _names(base / name) == owner, name
    assert (base / 'etc' / 'pki' / 'est' / 'web.crt').exists()
    assert (base / 'opt' / 'mqtt' / 'tls' / 'mqtt.key').exists()
    report = json.loads((tmp_path / 'report.json').read_text())
    assert sorted((e['name'], e['action']) for e in report['changed']) == [('mqtt', 'enrolled'), ('web', 'enrolled')]

    # The rerun: one module execution per entry (the enroll loop), every other task runs on the controller;
    # no directory task, nothing changed.
    lab.clear_requests()
    second = runner.run('est_enroll_role_list.yml', extra)
    assert second.rc == 0, str(second)
    assert second.recap()['changed'] == 0, str(second)
    assert lab.requests() == []
    tasks = re.findall(r'^TASK \[pki\.est\.est_enroll : (.*?)\]', second.stdout, re.M)
    tasks = [task for task in tasks if not task.startswith('Enroll a Windows host')]  # one skipped include elsewhere
    assert tasks[0].startswith('Validating arguments against arg spec'), tasks
    assert tasks[1:] == ['Resolve the certificate entries',
                         'Check the certificate entries (names, and no two entries sharing a file)',
                         'Enroll or renew the certificates', 'Note the certificates that changed',
                         'Show what happened to each certificate', 'Report the entries that failed'], tasks


# -- crash safety ---------------------------------------------------------------------------------

def test_killed_while_creating_directories_the_next_run_repairs(lab, tmp_path):
    """Killed at every step of a first enrollment into missing directories (directory steps included):
    the next run enrolls, every directory ends 0755 with the module's owner, and no temp directory stays."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    owner = _other_owner() or _owner()
    base = tmp_path / 'host'
    args = dict(_args(lab, tmp_path, owner), pkcs12_path=None, pkcs12_passphrase=None)
    args = dict((k, v) for k, v in args.items() if v is not None)
    created = ['etc', 'etc/pki', 'etc/pki/chain', 'full', 'private', 'private/keys']
    files = ['etc/pki/app.crt', 'etc/pki/app.crt.est.json', 'etc/pki/chain/app-chain.pem', 'full/app-fullchain.pem',
             'private/keys/app.key']

    log = tmp_path / 'steps.log'
    base.mkdir()
    rc, out = _module(tmp_path, 'est_enroll', args, env={'PKI_EST_CRASH_LOG': str(log)})
    assert rc == 0 and out['action'] == 'enrolled', out
    steps = log.read_text().splitlines()
    # The directories are made when the first file goes there: the staged pair beside the certificate, then
    # the chain, the key and the full chain in that order.
    made = [line.split()[2] for line in steps if line.split()[1] == 'mkdir']
    assert made == [str(base / name) for name in ('etc', 'etc/pki', 'etc/pki/chain', 'private', 'private/keys', 'full')], steps

    for at in range(1, len(steps) + 1):
        shutil.rmtree(str(base))
        base.mkdir()
        rc, out = _module(tmp_path, 'est_enroll', args, env={'PKI_EST_CRASH_AT': str(at)})
        assert rc == -signal.SIGKILL, (at, steps[at - 1], rc, out)
        left = _tree(base)
        rc, out = _module(tmp_path, 'est_enroll', args)
        assert rc == 0 and not out.get('failed') and out['changed'], (at, steps[at - 1], left, out)
        assert _tree(base) == sorted(created + files), (at, steps[at - 1], left)
        for name in created:
            assert _mode(base / name) == 0o755 and _names(base / name) == owner, (at, steps[at - 1], name)
        key = serialization.load_pem_private_key((base / 'private' / 'keys' / 'app.key').read_bytes(), None)
        cert = x509.load_pem_x509_certificate((base / 'etc' / 'pki' / 'app.crt').read_bytes())
        assert key.public_key().public_numbers() == cert.public_key().public_numbers(), (at, steps[at - 1])
