# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pki.est.est_agent through ansible-playbook (action plugin + module), and killed at every step of an upgrade."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import signal
import stat
import subprocess
import sys

from support.modrun import run_module

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), '.build', 'collections')
ENTRY = dict(name='web', url='https://est.example.test:8443', path='/etc/pki/est/web.crt',
             private_key_path='/etc/pki/est/web.key', renew_before='33%')


def _args(work, **extra):
    args = dict(certificates=[ENTRY], install_dir=str(work / 'lib'), bin_path=str(work / 'sbin' / 'pki-est-agent'),
                config_path=str(work / 'etc' / 'config.json'), credentials_path=str(work / 'etc' / 'credentials.json'),
                state_dir=str(work / 'state'), scheduler='cron', cron_dir=str(work / 'cron.d'), cron_minute='7')
    args.update(extra)
    return args


def _agent_check(work):
    proc = subprocess.run([str(work / 'sbin' / 'pki-est-agent'), '--config', str(work / 'etc' / 'config.json'), '--check'],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_install_rerun_upgrade_switch_and_remove(runner, tmp_path):
    work = tmp_path / 'work'
    # Check mode on a bare host: reports the install, sends and writes nothing.
    result, _run = runner.call('pki.est.est_agent', _args(work), check=True)
    assert result['changed'] and result['installed'] and not work.exists(), result
    result, _run = runner.call('pki.est.est_agent', _args(work, credentials={'web': {'pkcs12_passphrase': 'p12-Secret'}}),
                               diff=True)
    assert result['changed'] and result['installed'] and result['scheduler'] == 'cron', result
    version = result['version']
    assert os.readlink(str(work / 'sbin' / 'pki-est-agent')) == str(work / 'lib' / version / 'pki-est-agent')
    assert stat.S_IMODE(os.stat(str(work / 'etc' / 'credentials.json')).st_mode) == 0o600
    assert 'p12-Secret' not in json.dumps(result) and 'p12-Secret' not in (work / 'etc' / 'config.json').read_text()
    cron = (work / 'cron.d' / 'pki-est-agent').read_text()
    assert '\n7 0,12 * * * root %s --config %s 2>&1 | logger -t pki-est-agent\n' % (
        work / 'sbin' / 'pki-est-agent', work / 'etc' / 'config.json') in cron
    # The installed agent runs on its own and reads what was written.
    rc, out = _agent_check(work)
    assert rc == 1 and 'web: failed' in out and 'enroll first' in out, out
    # Nothing to change: one module execution, no transfer, changed=false.
    result, run = runner.call('pki.est.est_agent', _args(work, credentials={'web': {'pkcs12_passphrase': 'p12-Secret'}}),
                              verbosity=3)
    assert not result['changed'] and result['actions'] == [] and not result['installed'], result
    assert 'pki_est_engine.zip' not in run.stdout, 'the engine was sent again'
    assert run.stdout.count('AnsiballZ_est_agent.py\n') == 1, 'one module execution'
    # Credentials no longer needed are removed.
    result, _run = runner.call('pki.est.est_agent', _args(work))
    assert result['changed'] and not (work / 'etc' / 'credentials.json').exists()
    assert 'credentials_path' not in json.loads((work / 'etc' / 'config.json').read_text())
    # An older version, a half-made one and a stray temporary link: the next run installs, turns the link, tidies.
    os.rename(str(work / 'lib' / version), str(work / 'lib' / '0.0.1-000000000000'))
    (work / 'lib' / ('.%s.partial-abc123' % version)).mkdir()
    os.symlink('/nowhere', str(work / 'sbin' / 'pki-est-agent.new-4242'))
    os.unlink(str(work / 'sbin' / 'pki-est-agent'))
    os.symlink(str(work / 'lib' / '0.0.1-000000000000' / 'pki-est-agent'), str(work / 'sbin' / 'pki-est-agent'))
    result, _run = runner.call('pki.est.est_agent', _args(work))
    assert result['changed'] and result['installed'], result
    assert sorted(os.listdir(str(work / 'lib'))) == [version] and os.listdir(str(work / 'sbin')) == ['pki-est-agent']
    assert os.readlink(str(work / 'sbin' / 'pki-est-agent')) == str(work / 'lib' / version / 'pki-est-agent')
    # Switching to systemd leaves no cron entry behind; the units are written (no systemd runs here to start them).
    result, _run = runner.call('pki.est.est_agent', _args(work, scheduler='systemd', unit_dir=str(work / 'units')))
    assert result['changed'] and not (work / 'cron.d' / 'pki-est-agent').exists()
    assert sorted(os.listdir(str(work / 'units'))) == ['pki-est-agent.service', 'pki-est-agent.timer']
    # Removed without a trace.
    result, _run = runner.call('pki.est.est_agent', _args(work, state='absent', unit_dir=str(work / 'units')))
    assert result['changed'], result
    assert [p for p in ('lib', 'etc/config.json', 'state', 'sbin/pki-est-agent', 'units/pki-est-agent.timer')
            if os.path.lexists(str(work / p))] == []
    result, _run = runner.call('pki.est.est_agent', _args(work, state='absent', unit_dir=str(work / 'units')))
    assert not result['changed']


def test_a_config_the_agent_would_refuse_changes_nothing(runner, tmp_path):
    work = tmp_path / 'work'
    for bad, message in (([dict(ENTRY, colour='blue')], "unknown key 'colour'"),
                         ([dict(ENTRY, post_renew=['systemctl reload nginx'])], 'argument lists'),
                         ([ENTRY, ENTRY], 'used twice')):
        result, _run = runner.call('pki.est.est_agent', _args(work, certificates=bad))
        assert result['failed'] and not result['changed'] and message in result['msg'], result
        assert result['error_kind'] == 'invalid_input' and 'Traceback' not in result['msg']
    result, _run = runner.call('pki.est.est_agent', _args(work, credentials={'mqtt': {'password': 'x'}}))
    assert result['failed'] and 'names no certificate' in result['msg'] and not result['changed']
    assert not work.exists()


def _module(tmp_path, args, env=None):
    return run_module(tmp_path, 'est_agent', args, env)


def test_killed_at_every_step_of_an_upgrade_the_agent_keeps_working(tmp_path):
    """SIGKILL at each file step of an upgrade (unpack, rename, link, tidy, config): a working agent is always linked."""
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.pki.est.plugins.action import est_agent as action
    version, data = action.engine_bundle()
    bundle = tmp_path / 'engine.zip'
    bundle.write_bytes(data)
    old = '0.0.1-000000000000'

    def fresh_host(work):
        args = _args(work, bundle_version=old, bundle_path=str(bundle), certificates=[])
        rc, result = _module(tmp_path, args)
        assert rc == 0 and result['installed'], result

    upgrade = dict(bundle_version=version, bundle_path=str(bundle), certificates=[], metrics_path=str(tmp_path / 'm.prom'))
    log = tmp_path / 'steps.log'
    work = tmp_path / 'probe'
    fresh_host(work)
    rc, result = _module(tmp_path, _args(work, **upgrade), env={'PKI_EST_CRASH_LOG': str(log)})
    assert rc == 0 and result['changed'], result
    steps = len(log.read_text().splitlines())
    assert steps >= 25, log.read_text()  # the engine files, the mark, the rename, the link, the old version, config, cron
    for at in range(1, steps + 1):
        work = tmp_path / ('kill-%02d' % at)
        fresh_host(work)
        rc, _result = _module(tmp_path, _args(work, **upgrade), env={'PKI_EST_CRASH_AT': str(at)})
        assert rc == -signal.SIGKILL, 'step %d did not stop the module' % at
        # Whatever the instant, the link names a complete version whose agent runs.
        target = os.readlink(str(work / 'sbin' / 'pki-est-agent'))
        assert os.path.exists(os.path.join(os.path.dirname(target), 'pki_est_engine', '.complete')), (at, target)
        (work / 'etc').mkdir(exist_ok=True)
        if not (work / 'etc' / 'config.json').exists():
            (work / 'etc' / 'config.json').write_text(json.dumps({'version': 1, 'state_dir': str(work / 'state')}))
        rc, out = _agent_check(work)
        assert rc == 0, (at, out)
        # The next run finishes the job and leaves no debris; the one after changes nothing.
        rc, result = _module(tmp_path, _args(work, **upgrade))
        assert rc == 0, (at, result)
        assert os.listdir(str(work / 'lib')) == [version], (at, os.listdir(str(work / 'lib')))
        assert os.listdir(str(work / 'sbin')) == ['pki-est-agent']
        assert os.readlink(str(work / 'sbin' / 'pki-est-agent')) == str(work / 'lib' / version / 'pki-est-agent')
        rc, result = _module(tmp_path, _args(work, **upgrade))
        assert rc == 0 and not result['changed'], (at, result)
