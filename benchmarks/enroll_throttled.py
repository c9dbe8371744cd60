# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: 1000 hosts enrolled in one ansible-playbook run against a throttled lab EST server.

    .venv/bin/python benchmarks/enroll_throttled.py [--hosts 1000] [--forks 20] [--per-second 5]
        [--max-in-flight 3] [--retry-after 2] [--status 503]

Every host is ``ansible_connection=local`` with its own directory (tests/support/fleet.py, as
tests/integration/test_fleet_throttled.py with 30 hosts). One pki.est.est_enroll task per host
with a wait_timeout; the lab server turns away what is beyond its throttle with 503 (or 429)
and Retry-After. Prints: failed hosts, hosts whose files are not a valid pair from the lab CA,
wall seconds of the enrollment and of the floor (one ansible.builtin.stat task on the same
inventory, run after it), per-host cost of each, requests admitted and refused, and the
waits the hosts reported. Not a test: the figures go to docs/performance.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import os
import platform
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from support.fleet import PASSWORD, USER, Fleet  # noqa: E402  pylint: disable=wrong-import-position
from support.labserver import lab_server  # noqa: E402  pylint: disable=wrong-import-position


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=1000)
    parser.add_argument('--forks', type=int, default=20)
    parser.add_argument('--per-second', type=float, default=5)
    parser.add_argument('--max-in-flight', type=int, default=3)
    parser.add_argument('--retry-after', type=int, default=2)
    parser.add_argument('--status', type=int, default=503, choices=(503, 429))
    parser.add_argument('--wait-timeout', type=int, default=1800)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='pki-est-throttled-bench-')
    throttle = {'max_in_flight': args.max_in_flight, 'per_second': args.per_second, 'retry_after': args.retry_after,
                'status': args.status}
    with lab_server(os.path.join(tmp, 'lab'), config={'users': {USER: PASSWORD}, 'throttle': throttle}) as lab:
        fleet = Fleet(os.path.join(tmp, 'fleet'), args.hosts, wait_timeout=args.wait_timeout)
        fleet.write(lab)
        run = fleet.enroll(args.forks)
        stats = lab.throttle_stats()
        bad = fleet.check_certificates(lab)
        floor = fleet.floor(args.forks)
    print('machine: %s, %d CPUs, Python %s' % (platform.platform(), os.cpu_count(), platform.python_version()))
    print('hosts: %d, forks: %d, throttle: %s, wait_timeout: %d' % (args.hosts, args.forks, throttle, args.wait_timeout))
    print('failed hosts: %d %s' % (len(run.failed_hosts), run.failed_hosts[:10]))
    print('hosts without a valid certificate: %d %s' % (len(bad), bad[:5]))
    print('%-7s %8s %11s %8s' % ('run', 'wall s', 's per host', 'x floor'))
    print('%-7s %8.1f %11.3f %8s' % ('floor', floor.wall, floor.wall / args.hosts, '1.00'))
    print('%-7s %8.1f %11.3f %8.2f' % ('enroll', run.wall, run.wall / args.hosts, run.wall / floor.wall))
    print('requests admitted: %d, refused with %d: %d, peak in flight: %d'
          % (stats['admitted'], args.status, stats['refused'], stats['peak_in_flight']))
    waited = run.hosts_that_waited()
    print('hosts that waited: %d; retries reported: %d; seconds waited, all hosts: %.1f; most by one host: %.1f s'
          % (len(waited), run.total('retries'), run.total('waited_seconds'),
             max([r.get('waited_seconds') or 0 for r in run.results.values()] or [0])))
    if run.failed_hosts or bad:
        print(run.output)
        raise SystemExit(1)


if __name__ == '__main__':
    main()
