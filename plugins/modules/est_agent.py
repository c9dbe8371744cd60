#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: est_agent
short_description: Install, configure and schedule the pki-est renewal agent on a host
version_added: 0.1.0
description:
  - Installs C(pki-est-agent), which renews the host's EST certificates on its own while the controller is offline
    (see docs/renewal.md), writes its config and credentials, and schedules it with a systemd timer or cron. The
    M(pki.est.est_renewal) role is this one task; use the module directly where the role does not fit.
  - The agent is the collection's EST engine - the files the modules run - in a versioned directory under
    O(install_dir), named after the collection version and a digest of the engine. The action plugin packs the
    engine on the controller and sends it (one zip) only when the host lacks that version, so a run with nothing
    to change is one module execution. An install unpacks beside the versions, marks the new one complete, renames
    it into place, and only then turns the O(bin_path) link; a process killed at any point leaves the previous
    version working, and the next run finishes the job and removes earlier versions.
  - The config (JSON, no secrets) is checked with the agent's own rules before anything is written; secrets go to
    O(credentials_path) (mode 0600), which is removed when there are none.
  - Writes its files as the user the module runs as; system paths (the defaults) need C(become).
author:
  - pki.est developers (@pki-est)
attributes:
  check_mode:
    support: full
    description: Reports what it would install, write, schedule or remove, and does none of it.
  diff_mode:
    support: full
    description: Shows the config and schedule files that change (never the credentials).
  platform:
    platforms: posix
    support: full
    description: Linux and other POSIX hosts with Python 3, cryptography >= 45 and requests for the agent.
  action:
    support: full
    description: An action plugin sends the engine from the controller when the host does not have this version.
options:
  state:
    description:
      - V(present) installs, configures and schedules the agent; V(absent) stops its timer and removes its units or
        cron file, the link, every installed version, the config, the credentials and the state directory.
    type: str
    choices: [present, absent]
    default: present
  certificates:
    description:
      - The certificates the agent renews, in the agent's config format (docs/renewal.md) - each with C(name), C(url),
        C(path), C(private_key_path) and optionally C(ca_label), C(ca_path), C(chain_path), C(fullchain_path),
        C(pkcs12_path), C(intermediates_path), C(common_name), C(subject), C(subject_alt_name), C(key_usage),
        C(extended_key_usage), C(key_type), C(renew_before), C(rekey), C(owner), C(group), C(mode), C(key_mode),
        C(post_renew) (argument lists), C(san_policy), C(timeout), C(replace_revoked) (ask the CA every run whether the
        certificate is revoked, and replace a revoked one with a new key through C(/simpleenroll) and the HTTP Basic
        credentials).
      - Entries as the M(pki.est.est_enroll) role resolves them (its C(est_enroll_certificates_resolved)) are taken
        too - their C(commands), C(restart_services) and C(reload_services) become C(post_renew) commands, and the
        keys only a first enrollment needs (C(dir), C(username), C(client_cert_path), C(client_key_path),
        C(wait_timeout), C(csr_attributes), C(backup)) are left out. Empty values are left out. Any other key is an
        error, as it would be for the agent.
    type: list
    elements: dict
    default: []
  credentials:
    description:
      - HTTP Basic C(username) and C(password) and the C(pkcs12_passphrase), by certificate name (C(*) for all), for
        renewals against servers that want HTTP Basic on top of the client certificate or for PKCS#12 bundles.
    type: dict
    default: {}
  install_dir:
    description: Where the agent's versioned directories go.
    type: path
    default: /usr/local/lib/pki-est-agent
  bin_path:
    description: The agent command, a symbolic link to the current version's entry script.
    type: path
    default: /usr/local/sbin/pki-est-agent
  config_path:
    description: The agent's config (mode 0644).
    type: path
    default: /etc/pki-est-agent/config.json
  credentials_path:
    description: The root-only credentials file (mode 0600), written only when O(credentials) holds something.
    type: path
    default: /etc/pki-est-agent/credentials.json
  state_dir:
    description: Where the agent keeps the result of each certificate's last run.
    type: path
    default: /var/lib/pki-est-agent
  metrics_path:
    description: A node_exporter textfile the agent writes after each run; none when not set.
    type: path
  python:
    description:
      - The Python that runs the agent (the entry script's shebang); it needs cryptography >= 45 and requests.
      - Defaults to the Python this module runs with.
    type: path
  scheduler:
    description:
      - V(auto) uses a systemd timer where systemd runs as PID 1 (C(/run/systemd/system) exists) and cron elsewhere.
      - V(systemd) writes the units to O(unit_dir) and enables and starts the timer where systemd runs.
      - V(cron) writes O(cron_file) to O(cron_dir). V(none) schedules nothing.
      - The files of the scheduler not chosen are removed, so switching leaves no second schedule.
    type: str
    choices: [auto, systemd, cron, none]
    default: auto
  on_calendar:
    description: The timer's C(OnCalendar=).
    type: str
    default: "*-*-* 00,12:00:00"
  randomized_delay:
    description: The timer's C(RandomizedDelaySec=), so that a fleet does not renew in lockstep.
    type: int
    default: 3600
  unit_dir:
    description: Where the service and timer units go.
    type: path
    default: /etc/systemd/system
  unit_name:
    description: Name of the service and timer units.
    type: str
    default: pki-est-agent
  cron_dir:
    description: The directory cron reads system crontabs from.
    type: path
    default: /etc/cron.d
  cron_file:
    description: File name of the cron entry in O(cron_dir) (letters, digits, C(-) and C(_) only, as cron wants).
    type: str
    default: pki-est-agent
  cron_hour:
    description: Hours of the cron entry.
    type: str
    default: "0,12"
  cron_minute:
    description:
      - Minute of the cron entry. Without it, a minute derived from the host's name, so that a fleet spreads over
        the hour and each host keeps its minute from run to run.
    type: str
  bundle_version:
    description:
      - Set by the action plugin - the version of the engine it packs (collection version and a digest). Do not set it.
    type: str
    required: true
  bundle_path:
    description:
      - Set by the action plugin - where on the host it put the engine zip, when the host lacks O(bundle_version).
        Do not set it.
    type: path
notes:
  - The agent's command line, config format, exit codes, logs and metrics are described in docs/renewal.md.
seealso:
  - name: docs/renewal.md
    description: The renewal agent.
    link: https://github.com/pki-est/pki.est/blob/main/docs/renewal.md
  - module: pki.est.est_enroll
'''

EXAMPLES = r'''
- name: Renew the web server's certificate on the host, twice a day
  become: true
  pki.est.est_agent:
    certificates:
      - name: web
        url: https://est.example.com:8443
        ca_path: /etc/pki/est/ca.pem
        path: /etc/pki/est/web.crt
        private_key_path: /etc/pki/est/web.key
        renew_before: 33%
        post_renew:
          - [systemctl, reload, nginx]
    metrics_path: /var/lib/prometheus/node-exporter/pki_est.prom

- name: Remove the agent, its schedule and its config
  become: true
  pki.est.est_agent:
    state: absent
'''

RETURN = r'''
version:
  description: The agent version installed (collection version and engine digest).
  returned: always
  type: str
  sample: 0.1.0-3f2a9c01d4e7
installed:
  description: Whether this run installed the version (false when it was there already).
  returned: success
  type: bool
scheduler:
  description: The scheduler used, V(systemd), V(cron) or V(none).
  returned: when O(state=present)
  type: str
actions:
  description: What changed, in words (empty when nothing did).
  returned: always
  type: list
  elements: str
  sample: [installed 0.1.0-3f2a9c01d4e7, wrote /etc/pki-est-agent/config.json, enabled and started pki-est-agent.timer]
config:
  description: The agent's config as written (it holds no secrets).
  returned: when O(state=present)
  type: dict
bundle_needed:
  description: For the action plugin - the host lacks this version and nothing was done; it sends the engine and runs again.
  returned: when the host lacks the version and no bundle was given
  type: bool
error_kind:
  description: Class of failure, C(invalid_input) for a config the agent would refuse, C(host_state) for files.
  returned: failure
  type: str
'''

import hashlib
import json
import os
import socket
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pki.est.plugins.module_utils import _agent_setup as setup
from ansible_collections.pki.est.plugins.module_utils._module import FileWriter, fail
from ansible_collections.pki.est.plugins.module_utils.agent import ConfigError
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


class Agent:
    """One run of the module: what to write, in which order."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.writer = FileWriter(module)
        self.actions = []

    def run_command(self, *args):
        systemctl = self.module.get_bin_path('systemctl')
        if not systemctl:
            return 1, ''
        rc, out, err = self.module.run_command([systemctl] + list(args))
        return rc, (out or '') + (err or '')

    def write(self, path, text, mode, secret=False):
        if not self.module.check_mode:
            setup.makedirs(os.path.dirname(path), 0o755)
        if self.writer.write(path, text, mode=mode, diff=not secret, file_args=False, mode_param=False):
            self.actions.append('wrote %s' % path)
            return True
        return False

    def remove(self, path):
        if os.path.lexists(path):
            if not self.module.check_mode:
                setup.remove_tree(path)
            self.writer.changed = True
            self.actions.append('removed %s' % path)
            return True
        return False

    # present

    def present(self):
        p = self.params
        version = setup.check_version(p['bundle_version'])
        python = p['python'] or sys.executable
        try:
            config = setup.agent_config(p['certificates'], p['state_dir'], p['metrics_path'],
                                        p['credentials_path'] if p['credentials'] else None)
            credentials = setup.check_credentials(p['credentials'], set(e['name'] for e in config['certificates']))
        except ConfigError as exc:
            raise ESTError('invalid_input', 'the agent would refuse this config: %s' % exc)
        scheduler = p['scheduler']
        systemd_running = os.path.isdir('/run/systemd/system')
        if scheduler == 'auto':
            scheduler = 'systemd' if systemd_running else 'cron'
        schedule = {}
        if scheduler == 'systemd':
            for name, text in setup.systemd_units(p['unit_name'], p['bin_path'], p['config_path'], p['on_calendar'],
                                                  p['randomized_delay']).items():
                schedule[os.path.join(p['unit_dir'], name)] = text
        elif scheduler == 'cron':
            name, text = setup.cron_entry(p['cron_file'], p['cron_minute'] or default_minute(), p['cron_hour'], p['bin_path'], p['config_path'])
            schedule[os.path.join(p['cron_dir'], name)] = text
        entry = setup.entry_script(python, version)

        target = setup.link_target(p['install_dir'], version)
        have = setup.installed(p['install_dir'], version)
        if not have and not self.module.check_mode and not p['bundle_path']:
            self.module.exit_json(changed=False, bundle_needed=True, version=version, actions=[])
        if not have:
            if not self.module.check_mode:
                setup.unpack(p['bundle_path'], p['install_dir'], version, python)
            self.writer.changed = True
            self.actions.append('installed %s' % version)
        else:
            self.write(target, entry, 0o755)
        if not setup.link_ok(p['bin_path'], target):
            if not self.module.check_mode:
                setup.point_link(p['bin_path'], target)
            self.writer.changed = True
            self.actions.append('pointed %s at %s' % (p['bin_path'], version))
        for old in setup.leftovers(p['install_dir'], version) + setup.link_debris(p['bin_path']):
            self.remove(old)

        self.write(p['config_path'], json.dumps(config, indent=2, sort_keys=True) + '\n', 0o644)
        if credentials:
            self.write(p['credentials_path'], json.dumps(credentials, indent=2, sort_keys=True) + '\n', 0o600, secret=True)
        else:
            self.remove(p['credentials_path'])
        if not self.module.check_mode:
            setup.makedirs(p['state_dir'], 0o755)
        self.schedule(scheduler, schedule, systemd_running)
        return dict(version=version, installed=not have, scheduler=scheduler, config=config)

    def schedule(self, scheduler, files, systemd_running):
        p = self.params
        units = [os.path.join(p['unit_dir'], p['unit_name'] + suffix) for suffix in ('.service', '.timer')]
        cron = os.path.join(p['cron_dir'], p['cron_file'])
        units_changed = False
        for path, text in sorted(files.items()):
            changed = self.write(path, text, 0o644)
            units_changed = units_changed or (changed and path in units)
        if scheduler != 'systemd':
            self.stop_timer(systemd_running)
            for path in units:
                units_changed = self.remove(path) or units_changed
        if scheduler != 'cron':
            self.remove(cron)
        if not systemd_running:
            return
        if units_changed and not self.module.check_mode:
            self.run_command('daemon-reload')
        if scheduler == 'systemd':
            timer = p['unit_name'] + '.timer'
            enabled = self.run_command('is-enabled', timer)[0] == 0
            active = self.run_command('is-active', timer)[0] == 0
            if not (enabled and active):
                if not self.module.check_mode:
                    rc, out = self.run_command('enable', '--now', timer)
                    if rc != 0:
                        raise ESTError('host_state', 'systemctl enable --now %s failed: %s' % (timer, out.strip()))
                self.writer.changed = True
                self.actions.append('enabled and started %s' % timer)

    def stop_timer(self, systemd_running):
        p = self.params
        timer = p['unit_name'] + '.timer'
        if systemd_running and os.path.exists(os.path.join(p['unit_dir'], timer)):
            if self.run_command('is-enabled', timer)[0] == 0 or self.run_command('is-active', timer)[0] == 0:
                if not self.module.check_mode:
                    self.run_command('disable', '--now', timer)
                self.writer.changed = True
                self.actions.append('stopped and disabled %s' % timer)

    # absent

    def absent(self):
        p = self.params
        systemd_running = os.path.isdir('/run/systemd/system')
        self.stop_timer(systemd_running)
        units_gone = False
        for suffix in ('.service', '.timer'):
            units_gone = self.remove(os.path.join(p['unit_dir'], p['unit_name'] + suffix)) or units_gone
        if units_gone and systemd_running and not self.module.check_mode:
            self.run_command('daemon-reload')
        for path in (os.path.join(p['cron_dir'], p['cron_file']), p['bin_path'], p['install_dir'], p['config_path'],
                     p['credentials_path'], p['state_dir']):
            self.remove(path)
        return dict(version=p['bundle_version'])


def default_minute():
    """A minute from the host name: spread over a fleet, the same on every run."""
    return str(int(hashlib.sha256(socket.gethostname().encode('utf-8')).hexdigest(), 16) % 60)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            certificates=dict(type='list', elements='dict', default=[]),
            credentials=dict(type='dict', default={}, no_log=True),
            install_dir=dict(type='path', default='/usr/local/lib/pki-est-agent'),
            bin_path=dict(type='path', default='/usr/local/sbin/pki-est-agent'),
            config_path=dict(type='path', default='/etc/pki-est-agent/config.json'),
            credentials_path=dict(type='path', default='/etc/pki-est-agent/credentials.json', no_log=False),
            state_dir=dict(type='path', default='/var/lib/pki-est-agent'),
            metrics_path=dict(type='path'),
            python=dict(type='path'),
            scheduler=dict(type='str', choices=['auto', 'systemd', 'cron', 'none'], default='auto'),
            on_calendar=dict(type='str', default='*-*-* 00,12:00:00'),
            randomized_delay=dict(type='int', default=3600),
            unit_dir=dict(type='path', default='/etc/systemd/system'),
            unit_name=dict(type='str', default='pki-est-agent'),
            cron_dir=dict(type='path', default='/etc/cron.d'),
            cron_file=dict(type='str', default='pki-est-agent'),
            cron_hour=dict(type='str', default='0,12'),
            cron_minute=dict(type='str'),
            bundle_version=dict(type='str', required=True),
            bundle_path=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    agent = Agent(module)
    try:
        result = agent.present() if module.params['state'] == 'present' else agent.absent()
    except ESTError as exc:
        fail(module, exc, changed=agent.writer.changed, actions=agent.actions)
    result.update(changed=agent.writer.changed, actions=agent.actions)
    if module._diff:
        result['diff'] = agent.writer.diff()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
