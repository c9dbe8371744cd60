# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: one est_cert_info task across N hosts against one ansible.builtin.stat task (issue 12).

    .venv/bin/python benchmarks/cert_info.py [--hosts 10] [--forks 5] [--repeat 3]

Every host is ``ansible_connection=local`` with its own directory and two certificates enrolled
from the lab server (key, chain and the decision record est_enroll leaves). Timed, interleaved,
best of ``--repeat``: the floor (one ``stat`` task), est_cert_info answered from the decision
records, est_cert_info with ``ca_path`` (every certificate parsed and path-validated), and
playbooks/report.yml. Then the CPU time of one module process (as Ansible runs it on a local
host) for stat and est_cert_info, and the engine alone, in this process, per certificate. Not a
test: the figures go to docs/report.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, os.path.join(ROOT, '.build', 'collections'))

from support.labserver import lab_server  # noqa: E402  pylint: disable=wrong-import-position


def _run(command, env):
    start = time.monotonic()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-2000:])
        raise SystemExit('%s failed' % command[-1])
    return elapsed


def _play(path, tasks):
    with open(path, 'w') as handle:
        json.dump([{'name': os.path.basename(path), 'hosts': 'all', 'gather_facts': False, 'tasks': tasks}], handle)
    return path


def _engine(certs, ca_path, repeat=200):
    """Milliseconds per certificate of certreport.report in this process (warm), from the records and parsed."""
    from ansible_collections.pki.est.plugins.module_utils import certreport
    entries = certreport.entries_from_paths(certs)
    figures = {}
    for label, anchors in (('record', None), ('x509', ca_path)):
        start = time.perf_counter()
        for _round in range(repeat):
            certreport.report(entries, ca_path=anchors)
        figures[label] = (time.perf_counter() - start) * 1000.0 / (repeat * len(entries))
    return figures


def _module_cpu(tmp, module, args, runs=10):
    """Median CPU seconds (user + system) of one module process, run as Ansible runs it on a local host."""
    import resource
    import statistics
    args_file = os.path.join(tmp, 'module-args.json')
    with open(args_file, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, '.build', 'collections'))
    samples = []
    for _round in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, '-m', module, args_file], env=env, capture_output=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=10)
    parser.add_argument('--forks', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='pki-est-certinfo-bench-')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'),
               ANSIBLE_HOME=os.path.join(tmp, 'ansible-home'), ANSIBLE_NOCOLOR='1')
    playbook_bin = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    with lab_server(pathlib.Path(tmp), config={'users': {'bench': 'bench-pass'}}) as lab:
        hosts = {}
        for i in range(args.hosts):
            base = os.path.join(tmp, 'host%03d' % i)
            os.makedirs(base)
            hosts['host%03d' % i] = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable, 'host_dir': base,
                                     'est_report_paths': [{'path': '%s/%s.crt' % (base, n), 'private_key_path': '%s/%s.key' % (base, n),
                                                           'chain_path': '%s/%s-chain.pem' % (base, n)} for n in ('web', 'api')]}
        inventory = os.path.join(tmp, 'inventory.json')
        with open(inventory, 'w') as handle:
            json.dump({'all': {'hosts': hosts}}, handle)
        enroll = [{'name': 'Enroll %s' % n, 'pki.est.est_enroll': {
            'url': lab.url, 'ca_path': lab.ca_path, 'username': 'bench', 'password': 'bench-pass',
            'common_name': '%s.{{ inventory_hostname }}.example' % n, 'path': '{{ host_dir }}/%s.crt' % n,
            'private_key_path': '{{ host_dir }}/%s.key' % n, 'chain_path': '{{ host_dir }}/%s-chain.pem' % n}} for n in ('web', 'api')]
        base_cmd = [playbook_bin, '-i', inventory, '-f', str(args.forks)]
        _run(base_cmd + [_play(os.path.join(tmp, 'enroll.yml'), enroll)], env)
        commands = {
            'floor (stat)': base_cmd + [_play(os.path.join(tmp, 'floor.yml'), [
                {'name': 'Stat', 'ansible.builtin.stat': {'path': '{{ host_dir }}'}}])],
            'est_cert_info (records)': base_cmd + [_play(os.path.join(tmp, 'info.yml'), [
                {'name': 'Info', 'pki.est.est_cert_info': {'paths': '{{ est_report_paths }}'}}])],
            'est_cert_info (ca_path)': base_cmd + [_play(os.path.join(tmp, 'info_x509.yml'), [
                {'name': 'Info', 'pki.est.est_cert_info': {'paths': '{{ est_report_paths }}', 'ca_path': lab.ca_path}}])],
            'report.yml': base_cmd + [os.path.join(ROOT, 'playbooks', 'report.yml'), '-e',
                                      json.dumps({'est_report_html_path': os.path.join(tmp, 'r.html'),
                                                  'est_report_json_path': os.path.join(tmp, 'r.json')})],
        }
        best = dict((name, float('inf')) for name in commands)
        for _round in range(max(1, args.repeat)):
            for name, command in commands.items():
                best[name] = min(best[name], _run(command, env))
        with open(os.path.join(tmp, 'r.json')) as handle:
            counts = json.load(handle)['counts']
        engine = _engine(hosts['host000']['est_report_paths'], lab.ca_path)
        paths = hosts['host000']['est_report_paths']
        cpu = {'stat': _module_cpu(tmp, 'ansible.modules.stat', {'path': tmp}),
               'est_cert_info (records)': _module_cpu(tmp, 'ansible_collections.pki.est.plugins.modules.est_cert_info', {'paths': paths}),
               'est_cert_info (ca_path)': _module_cpu(tmp, 'ansible_collections.pki.est.plugins.modules.est_cert_info',
                                                      {'paths': paths, 'ca_path': lab.ca_path})}
    print('machine: %s, %d CPUs, Python %s, load %s' % (platform.platform(), os.cpu_count(), platform.python_version(),
                                                        ' '.join('%.1f' % x for x in os.getloadavg())))
    print('hosts: %d (2 certificates each), forks: %d, best of %d; report counts %s' % (args.hosts, args.forks, args.repeat, counts))
    print('%-24s %8s %11s %8s' % ('run', 'wall s', 's per host', 'x floor'))
    for name, seconds in best.items():
        print('%-24s %8.2f %11.3f %8.2f' % (name, seconds, seconds / args.hosts, seconds / best['floor (stat)']))
    print('one module process, median CPU s: %s' % ', '.join('%s %.3f' % item for item in cpu.items()))
    print('engine alone, ms per certificate: from the record %.3f, parsed and validated %.3f' % (engine['record'], engine['x509']))


if __name__ == '__main__':
    main()
