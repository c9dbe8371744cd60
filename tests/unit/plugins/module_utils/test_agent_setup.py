# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installing the renewal agent (module_utils/_agent_setup.py) and packing its engine (plugins/action/est_agent.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import json
import os
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.pki.est.plugins.action import est_agent as action
from ansible_collections.pki.est.plugins.module_utils import _agent_setup as setup
from ansible_collections.pki.est.plugins.module_utils.agent import ConfigError
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError

ENTRY = dict(name='web', url='https://est.example.test', path='/etc/pki/est/web.crt', private_key_path='/etc/pki/est/web.key')


def test_est_enroll_entries_become_agent_entries():
    resolved = dict(ENTRY, dir='/etc/pki/est', username='alice', client_cert_path='', wait_timeout=0, backup=False,
                    csr_attributes='ignore', chain_path='', subject={}, subject_alt_name=['DNS:web.example.test'],
                    commands=['touch /run/web.reloaded', ['/usr/bin/logger', 'renewed web']],
                    restart_services=['nginx'], reload_services=['haproxy'], mode='0644', key_mode='0600', timeout=30)
    entry = setup.config_entries([resolved])[0]
    assert entry == dict(ENTRY, subject_alt_name=['DNS:web.example.test'], mode='0644', key_mode='0600', timeout=30,
                         post_renew=[['touch', '/run/web.reloaded'], ['/usr/bin/logger', 'renewed web'],
                                     ['systemctl', 'restart', 'nginx'], ['systemctl', 'reload', 'haproxy']])


def test_secrets_never_reach_the_config():
    config = setup.agent_config([dict(ENTRY, password='pw', pkcs12_passphrase='p12')], '/var/lib/pki-est-agent')
    assert 'pw' not in json.dumps(config) and 'p12' not in json.dumps(config)


def test_the_agent_rules_apply_to_what_the_module_writes():
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        setup.agent_config([dict(ENTRY, colour='blue')], '/var/lib/x')
    with pytest.raises(ConfigError, match='has no url'):
        setup.agent_config([dict(ENTRY, url='')], '/var/lib/x')
    with pytest.raises(ConfigError, match='used twice'):
        setup.agent_config([ENTRY, ENTRY], '/var/lib/x')
    with pytest.raises(ConfigError, match='must be an object'):
        setup.config_entries(['web'])
    config = setup.agent_config([ENTRY], '/var/lib/x', metrics_path='/m.prom', credentials_path='/c.json')
    assert config['metrics_path'] == '/m.prom' and config['credentials_path'] == '/c.json' and config['version'] == 1


def test_credentials_are_checked_against_the_names():
    assert setup.check_credentials({'web': {'pkcs12_passphrase': 'x'}, '*': {'username': 'u', 'password': 'p'}}, {'web'})
    with pytest.raises(ConfigError, match="'mqtt', which names no certificate"):
        setup.check_credentials({'mqtt': {'password': 'p'}}, {'web'})
    with pytest.raises(ConfigError, match='unknown keys passwd'):
        setup.check_credentials({'web': {'passwd': 'p'}}, {'web'})
    with pytest.raises(ConfigError, match='must be an object'):
        setup.check_credentials({'web': 'p'}, {'web'})


def test_units_and_cron_entry():
    units = setup.systemd_units('pki-est-agent', '/usr/local/sbin/pki-est-agent', '/etc/pki-est-agent/config.json',
                                '*-*-* 00,12:00:00', 3600)
    assert sorted(units) == ['pki-est-agent.service', 'pki-est-agent.timer']
    assert 'ExecStart=/usr/local/sbin/pki-est-agent --config /etc/pki-est-agent/config.json\n' in units['pki-est-agent.service']
    assert 'RandomizedDelaySec=3600\nPersistent=true\n' in units['pki-est-agent.timer']
    name, text = setup.cron_entry('pki-est-agent', '7', '0,12', '/usr/local/sbin/pki-est-agent', '/etc/c.json')
    assert name == 'pki-est-agent'
    assert text.endswith('\n7 0,12 * * * root /usr/local/sbin/pki-est-agent --config /etc/c.json 2>&1 | logger -t pki-est-agent\n')
    for bad in (lambda: setup.systemd_units('bad name', '/b', '/c', 'daily', 1),
                lambda: setup.systemd_units('u', '/b in/x', '/c', 'daily', 1),
                lambda: setup.systemd_units('u', '/b', '/c', 'daily\nExecStartPre=/bin/evil', 1),
                lambda: setup.cron_entry('pki-est-agent.cron', '7', '0', '/b', '/c'),
                lambda: setup.cron_entry('x', '7; rm -rf /', '0', '/b', '/c'),
                lambda: setup.entry_script('python3', '1.0'),
                lambda: setup.check_version('../1.0')):
        with pytest.raises(ESTError) as info:
            bad()
        assert info.value.kind == 'invalid_input'


def _bundle(tmp_path, names=('agent.py', 'errors.py')):
    path = tmp_path / 'bundle.zip'
    with zipfile.ZipFile(str(path), 'w') as archive:
        for name in names:
            archive.writestr(name, '# %s\n' % name)
    return str(path)


def test_unpack_link_and_leftovers(tmp_path):
    install = str(tmp_path / 'lib')
    os.makedirs(os.path.join(install, '0.0.9-aaaaaaaaaaaa', 'pki_est_engine'))
    os.makedirs(os.path.join(install, '.1.0-bbbbbbbbbbbb.partial-x1y2z3'))
    assert not setup.installed(install, '1.0-bbbbbbbbbbbb')
    final = setup.unpack(_bundle(tmp_path), install, '1.0-bbbbbbbbbbbb', sys.executable)
    assert setup.installed(install, '1.0-bbbbbbbbbbbb')
    assert sorted(os.listdir(os.path.join(final, 'pki_est_engine'))) == ['.complete', 'agent.py', 'errors.py']
    assert os.stat(os.path.join(final, 'pki-est-agent')).st_mode & 0o777 == 0o755
    link = str(tmp_path / 'sbin' / 'pki-est-agent')
    target = setup.link_target(install, '1.0-bbbbbbbbbbbb')
    assert not setup.link_ok(link, target)
    setup.point_link(link, target)
    assert setup.link_ok(link, target)
    assert sorted(os.path.basename(p) for p in setup.leftovers(install, '1.0-bbbbbbbbbbbb')) == [
        '.1.0-bbbbbbbbbbbb.partial-x1y2z3', '0.0.9-aaaaaaaaaaaa']


def test_unpack_refuses_a_bundle_that_is_not_the_engine(tmp_path):
    install = str(tmp_path / 'lib')
    for names in (('agent.py', '../evil.py'), ('errors.py',), ('agent.py', 'x/y.py')):
        with pytest.raises(ESTError, match='not an engine bundle'):
            setup.unpack(_bundle(tmp_path, names), install, '1.0-cccccccccccc', sys.executable)
    (tmp_path / 'junk.zip').write_bytes(b'not a zip')
    with pytest.raises(ESTError, match='cannot unpack'):
        setup.unpack(str(tmp_path / 'junk.zip'), install, '1.0-cccccccccccc', sys.executable)
    assert not setup.installed(install, '1.0-cccccccccccc') and os.listdir(install) == []


def test_the_packed_engine_is_the_engine_and_runs(tmp_path):
    """The bundle holds module_utils minus the Ansible glue, the same bytes each time; the agent runs from it."""
    version, data = action.engine_bundle()
    again = action.engine_bundle()
    assert again == (version, data)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert 'agent.py' in names and 'enroll.py' in names and '__init__.py' in names
    assert not set(names) & {'_module.py', '_enroll_module.py', '_agent_setup.py'}
    assert version.startswith(action.collection_version() + '-') and len(version.split('-')[-1]) == 12
    bundle = tmp_path / 'engine.zip'
    bundle.write_bytes(data)
    final = setup.unpack(str(bundle), str(tmp_path / 'lib'), version, sys.executable)
    config = tmp_path / 'config.json'
    config.write_text(json.dumps({'version': 1, 'state_dir': str(tmp_path / 'state'), 'certificates': []}))
    proc = subprocess.run([os.path.join(final, 'pki-est-agent'), '--config', str(config)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # No Ansible in the engine: every file imports without it.
    for name in names:
        text = zipfile.ZipFile(io.BytesIO(data)).read(name).decode('utf-8')
        assert 'import ansible' not in text and 'from ansible' not in text, name


def test_a_changed_engine_is_a_new_version(tmp_path):
    engine = tmp_path / 'module_utils'
    engine.mkdir()
    (engine / 'agent.py').write_text('A = 1\n')
    (engine / '_module.py').write_text('import ansible\n')
    (tmp_path / 'galaxy.yml').write_text('namespace: pki\nname: est\nversion: 2.3.4\n')
    first = action.engine_bundle(str(engine), str(tmp_path))
    assert first[0].startswith('2.3.4-')
    assert zipfile.ZipFile(io.BytesIO(first[1])).namelist() == ['agent.py']
    (engine / '_module.py').write_text('import ansible  # changed\n')
    assert action.engine_bundle(str(engine), str(tmp_path))[0] == first[0]
    (engine / 'agent.py').write_text('A = 2\n')
    assert action.engine_bundle(str(engine), str(tmp_path))[0] != first[0]
    (tmp_path / 'MANIFEST.json').write_text(json.dumps({'collection_info': {'version': '3.0.0'}}))
    assert action.engine_bundle(str(engine), str(tmp_path))[0].startswith('3.0.0-')
