# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the main playbook (playbooks/enroll.yml: trust, enroll, renewal agent) across N hosts.

    .venv/bin/python benchmarks/enroll_playbook.py [--hosts 10] [--forks 5] [--repeat 3]

Every host is ``ansible_connection=local`` with its own directories. Timed: the floor (one
``ansible.builtin.stat`` task on the same inventory), the fresh run of playbooks/enroll.yml, and
the rerun when nothing is due (interleaved with the floor, best of ``--repeat``). Prints wall
seconds, the ratio to the floor and the requests that reached the EST server (issue 9:
rerun <= 2.5x the floor with none, fresh <= 3x). Not a test: the figures go to
docs/performance.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import collections
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from support.labserver import lab_server  # noqa: E402  pylint: disable=wrong-import-position


def _run(command, env):
    start = time.monotonic()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-2000:])
        raise SystemExit('%s failed' % command[-1])
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=10)
    parser.add_argument('--forks', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--profile', action='store_true', help='one more rerun, printing the seconds of each task')
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='pki-est-playbook-bench-')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'),
               ANSIBLE_HOME=os.path.join(tmp, 'ansible-home'), ANSIBLE_NOCOLOR='1')
    playbook_bin = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    with lab_server(__import__('pathlib').Path(tmp), config={'users': {'bench': 'bench-pass'}}) as lab:
        hosts = {}
        for i in range(args.hosts):
            base = os.path.join(tmp, 'host%03d' % i)
            os.makedirs(os.path.join(base, 'agent', 'sbin'))
            hosts['host%03d' % i] = {
                'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable, 'host_dir': base,
                'est_cert_dir': base + '/pki', 'est_bundle_path': base + '/pki/ca.pem',
                'est_renewal_install_dir': base + '/agent/lib', 'est_renewal_bin_path': base + '/agent/sbin/pki-est-agent',
                'est_renewal_config_path': base + '/agent/config.json',
                'est_renewal_credentials_path': base + '/agent/credentials.json',
                'est_renewal_state_dir': base + '/agent/state', 'est_renewal_scheduler': 'none'}
        inventory = os.path.join(tmp, 'inventory.json')
        with open(inventory, 'w') as handle:
            shared = {'est_url': lab.url, 'est_ca_fingerprint': lab.ca_fingerprint, 'est_username': 'bench',
                      'est_password': 'bench-pass'}
            json.dump({'all': {'hosts': hosts, 'vars': shared}}, handle)
        floor_play = os.path.join(tmp, 'floor.yml')
        with open(floor_play, 'w') as handle:
            json.dump([{'name': 'Floor', 'hosts': 'all', 'gather_facts': False,
                        'tasks': [{'name': 'Stat', 'ansible.builtin.stat': {'path': '{{ host_dir }}'}}]}], handle)
        enroll = [playbook_bin, '-i', inventory, '-f', str(args.forks), os.path.join(ROOT, 'playbooks', 'enroll.yml')]
        floor_cmd = [playbook_bin, '-i', inventory, '-f', str(args.forks), floor_play]
        floor = _run(floor_cmd, env)
        fresh = _run(enroll, env)
        fresh_requests = collections.Counter(r['op'] for r in lab.requests())
        lab.clear_requests()
        rerun = float('inf')
        for _round in range(max(1, args.repeat)):
            rerun = min(rerun, _run(enroll, env))
            floor = min(floor, _run(floor_cmd, env))
        rerun_requests = collections.Counter(r['op'] for r in lab.requests())
        if args.profile:
            profiled = dict(env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, 'benchmarks', 'callbacks'),
                            ANSIBLE_CALLBACKS_ENABLED='tasktime')
            proc = subprocess.run(enroll, env=profiled, capture_output=True, text=True, check=True)
            print('\n'.join(proc.stdout.splitlines()[-40:]))
    print('machine: %s, %d CPUs, Python %s' % (platform.platform(), os.cpu_count(), platform.python_version()))
    print('hosts: %d, forks: %d, best of %d for floor and rerun' % (args.hosts, args.forks, args.repeat))
    print('%-6s %8s %11s %8s  %s' % ('run', 'wall s', 's per host', 'x floor', 'requests'))
    print('%-6s %8.2f %11.3f %8s  %s' % ('floor', floor, floor / args.hosts, '1.00', '-'))
    print('%-6s %8.2f %11.3f %8.2f  %s' % ('fresh', fresh, fresh / args.hosts, fresh / floor, dict(fresh_requests)))
    print('%-6s %8.2f %11.3f %8.2f  %s' % ('rerun', rerun, rerun / args.hosts, rerun / floor, dict(rerun_requests) or 'none'))


if __name__ == '__main__':
    main()
