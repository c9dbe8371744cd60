# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the renewal agent's run on a host whose certificates are all current.

    .venv/bin/python benchmarks/agent_noop.py [--certs 5] [--runs 20]

Enrolls ``--certs`` certificates against the lab EST server with the engine (as the
est_enroll role would), writes the agent config for them, then times whole agent processes
(interpreter start included) ``--runs`` times, and a bare ``python -c pass`` as the floor.
Also reports whether the run imported cryptography or requests and how many requests reached
the server (both must be none). Target (issue 9): median <= 0.3 s for 5 certificates. Not a
test: the figures go to docs/performance.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, COLLECTIONS)

from support.labserver import lab_server  # noqa: E402  pylint: disable=wrong-import-position

AGENT = 'ansible_collections.pki.est.plugins.module_utils.agent'


def _enroll(lab, work, count):
    from ansible_collections.pki.est.plugins.module_utils.enroll import Enrollment, Options
    from ansible_collections.pki.est.plugins.module_utils.hoststate import wanted_from
    entries = []
    for index in range(count):
        name = 'cert%d' % index
        entry = dict(name=name, url=lab.url, ca_path=lab.ca_path, path=os.path.join(work, name + '.crt'),
                     private_key_path=os.path.join(work, name + '.key'), chain_path=os.path.join(work, name + '-chain.pem'),
                     common_name='%s.example.test' % name, subject_alt_name=['DNS:%s.example.test' % name], renew_before='33%')
        options = Options(cert_path=entry['path'], key_path=entry['private_key_path'], chain_path=entry['chain_path'],
                          wanted=wanted_from(entry))
        connection = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password='s3cret-Pa55')
        result = Enrollment(options, connection).run()
        assert result['action'] == 'enrolled', result
        entries.append(entry)
    return entries


def _time(argv, runs, env):
    times = []
    for _run in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--certs', type=int, default=5)
    parser.add_argument('--runs', type=int, default=20)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='agent-bench-')
    with lab_server(__import__('pathlib').Path(work), config={'users': {'alice': 's3cret-Pa55'}}) as lab:
        entries = _enroll(lab, work, args.certs)
        config = os.path.join(work, 'agent.json')
        with open(config, 'w') as handle:
            json.dump({'version': 1, 'state_dir': os.path.join(work, 'state'), 'certificates': entries}, handle)
        env = dict(os.environ, PYTHONPATH=COLLECTIONS)
        lab.clear_requests()
        agent = _time([sys.executable, '-m', AGENT, '--config', config], args.runs, env)
        floor = _time([sys.executable, '-c', 'pass'], args.runs, env)
        probe = ('import sys; from %s import main; main(["--config", %r]); '
                 'print(sorted(m for m in ("cryptography", "requests") if m in sys.modules))') % (AGENT, config)
        loaded = subprocess.run([sys.executable, '-c', probe], env=env, capture_output=True, text=True, check=True).stdout
        requests_made = len(lab.requests())
    print('certificates: %d, runs: %d' % (args.certs, args.runs))
    print('agent no-op   median %.3f s  min %.3f  max %.3f' % (statistics.median(agent), min(agent), max(agent)))
    print('python floor  median %.3f s  min %.3f  max %.3f' % (statistics.median(floor), min(floor), max(floor)))
    print('libraries imported: %s' % loaded.strip().splitlines()[-1])
    print('requests to the EST server: %d' % requests_made)


if __name__ == '__main__':
    main()
