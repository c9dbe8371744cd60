# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: enroll N hosts against the lab EST server, rerun idempotently, compare with a floor.

    .venv/bin/python benchmarks/enroll_fleet.py [--hosts 50] [--forks 5]

Every host is ``ansible_connection=local`` with its own paths. Three timed runs over the
same inventory, each one task per host:
  floor      ansible.builtin.stat (Ansible's own per-task cost)
  enroll     pki.est.est_enroll, fresh (key, CSR, /cacerts, /simpleenroll, install)
  rerun      pki.est.est_enroll again (must make no request)
Prints wall seconds per host for each and the ratio to the floor. Not a test: the figures
go to docs/performance.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
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


def _inventory(path, hosts, work):
    lines = ['[fleet]']
    for i in range(hosts):
        lines.append('host%03d ansible_connection=local ansible_python_interpreter=%s host_dir=%s/host%03d'
                     % (i, sys.executable, work, i))
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')


def _playbook(path, task):
    play = [{'name': 'Benchmark', 'hosts': 'fleet', 'gather_facts': False, 'tasks': [task]}]
    with open(path, 'w') as handle:
        json.dump(play, handle)


def _cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    with open('/proc/%d/stat' % pid) as handle:
        fields = handle.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))


def _run(playbook, inventory, forks, env):
    start = time.monotonic()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory, '-f', str(forks),
                           playbook], env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit('playbook %s failed' % playbook)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=50)
    parser.add_argument('--forks', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=3, help='floor and rerun are repeated; the fastest of each counts')
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix='pki-est-bench-')
    work = os.path.join(tmp, 'hosts')
    for i in range(args.hosts):
        os.makedirs(os.path.join(work, 'host%03d' % i))
    inventory = os.path.join(tmp, 'inventory.ini')
    _inventory(inventory, args.hosts, work)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_HOST_KEY_CHECKING='false',
               ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'), ANSIBLE_HOME=os.path.join(tmp, 'ansible-home'))

    floor_play = os.path.join(tmp, 'floor.yml')
    _playbook(floor_play, {'name': 'Stat', 'ansible.builtin.stat': {'path': '{{ host_dir }}'}})

    with lab_server(__import__('pathlib').Path(tmp), config={'users': {'bench': 'bench-pass'}}) as lab:
        enroll_play = os.path.join(tmp, 'enroll.yml')
        _playbook(enroll_play, {'name': 'Enroll', 'pki.est.est_enroll': {
            'url': lab.url, 'ca_path': lab.ca_path, 'username': 'bench', 'password': 'bench-pass',
            'common_name': '{{ inventory_hostname }}', 'subject_alt_name': ['DNS:{{ inventory_hostname }}.example.test'],
            'path': '{{ host_dir }}/cert.pem', 'private_key_path': '{{ host_dir }}/key.pem',
            'chain_path': '{{ host_dir }}/chain.pem'}})
        floor = _run(floor_play, inventory, args.forks, env)
        server_cpu = _cpu_seconds(lab.process.pid)
        enroll = _run(enroll_play, inventory, args.forks, env)
        server_cpu = _cpu_seconds(lab.process.pid) - server_cpu
        enroll_requests = len(lab.requests())
        lab.clear_requests()
        rerun = float('inf')
        # Interleave floor and rerun so that a change in machine load hits both alike.
        for _round in range(max(1, args.repeat)):
            rerun = min(rerun, _run(enroll_play, inventory, args.forks, env))
            floor = min(floor, _run(floor_play, inventory, args.forks, env))
        rerun_requests = len(lab.requests())

    per = dict((name, value / args.hosts) for name, value in (('floor', floor), ('enroll', enroll), ('rerun', rerun)))
    print('machine: %s, %d CPUs, Python %s' % (platform.platform(), os.cpu_count(), platform.python_version()))
    print('hosts: %d, forks: %d, best of %d for floor and rerun' % (args.hosts, args.forks, args.repeat))
    print('%-8s %8s %12s %8s %9s' % ('run', 'wall s', 's per host', 'x floor', 'requests'))
    print('%-8s %8.2f %12.3f %8s %9s' % ('floor', floor, per['floor'], '1.00', '-'))
    print('%-8s %8.2f %12.3f %8.2f %9d' % ('enroll', enroll, per['enroll'], per['enroll'] / per['floor'], enroll_requests))
    print('%-8s %8.2f %12.3f %8.2f %9d' % ('rerun', rerun, per['rerun'], per['rerun'] / per['floor'], rerun_requests))
    print('the lab server, on the same cores, used %.2f s CPU during the enroll run (%.3f s per host)'
          % (server_cpu, server_cpu / args.hosts))
    if rerun_requests:
        raise SystemExit('the idempotent rerun reached the server %d times' % rerun_requests)


if __name__ == '__main__':
    main()
