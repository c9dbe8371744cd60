# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of 30 local hosts enrolled in one ansible-playbook run against a throttled lab server.

The throttle (max_in_flight 3, 10 requests per second, Retry-After 1) turns hosts away with 503;
with a wait_timeout they wait (with jitter) and retry, and every host ends with a valid pair. So that
the first wave meets a full server however fast this machine is, the test holds the three slots
(tests/support/throttling.py) until the lab has refused three requests.
benchmarks/enroll_throttled.py runs the same with 1000 hosts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from support.fleet import PASSWORD, USER, Fleet
from support.labserver import lab_server
from support.throttling import held_slots

HOSTS = 30
FORKS = 10
THROTTLE = {'max_in_flight': 3, 'per_second': 10, 'burst': 3, 'retry_after': 1, 'status': 503}


def test_thirty_hosts_against_a_throttled_server_all_enroll(tmp_path):
    # A held slot waits for a body that never comes: socket_timeout keeps the lab from dropping it first.
    config = {'users': {USER: PASSWORD}, 'throttle': THROTTLE, 'socket_timeout': 120}
    with lab_server(tmp_path / 'lab', config=config) as lab:
        fleet = Fleet(tmp_path / 'fleet', HOSTS, wait_timeout=120)
        fleet.write(lab)
        with held_slots(lab, THROTTLE['max_in_flight'], release_after_refusals=3):
            run = fleet.enroll(forks=FORKS)
        stats = lab.throttle_stats()
        refused = [r for r in lab.requests() if r['status'] == 503]
        print('\n%d hosts, forks %d: %.1f s wall; %d requests admitted, %d refused with 503; %d hosts waited %.1f s in all '
              'over %d retries' % (HOSTS, FORKS, run.wall, stats['admitted'], stats['refused'], len(run.hosts_that_waited()),
                                   run.total('waited_seconds'), run.total('retries')))
        assert run.returncode == 0 and run.failed_hosts == [], run.output
        assert len(run.recap) == HOSTS and len(run.results) == HOSTS, run.output
        assert all(result['action'] == 'enrolled' for result in run.results.values())
        assert fleet.check_certificates(lab) == []
        # The throttle did turn hosts away, and they came back: refused, then admitted.
        assert stats['refused'] >= 3 and len(refused) == stats['refused']
        assert all(r['fault'] == 'throttled' for r in refused)
        # One /simpleenroll each (ca_path validates the answer: no /cacerts), and the three held slots.
        assert stats['admitted'] == HOSTS + THROTTLE['max_in_flight']
        assert run.total('retries') == stats['refused'] and run.hosts_that_waited()
        assert stats['peak_in_flight'] <= THROTTLE['max_in_flight']
