"""A fleet of local hosts enrolled by one ansible-playbook run against a (throttled) lab server.

Used by tests/integration/test_fleet_throttled.py (30 hosts, inside make test) and
benchmarks/enroll_throttled.py (1000 hosts). Every host is ``ansible_connection=local`` with a
directory of its own; one pki.est.est_enroll task per host, with a wait_timeout, so that hosts
the throttle turns away (503 + Retry-After) wait and retry.

    fleet = Fleet(tmp_path, hosts=30)
    fleet.write(lab)                   # inventory and playbook
    run = fleet.enroll(forks=10)       # FleetRun: wall seconds, per-host results, recap
    fleet.check_certificates(lab)      # every key matches its certificate, which chains to the lab CA
"""

import json
import os
import re
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER, PASSWORD = 'fleet', 'fleet-Pa55'
# "changed: [host007] => {...}" lines of the default callback at -v with one-line JSON results.
_RESULT_LINE = re.compile(r'^(ok|changed|failed|fatal): \[([^\]]+)\].*? => (\{.*\})\s*$')
_RECAP_LINE = re.compile(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)')


class FleetRun:
    """What one playbook run did: wall seconds, the est_enroll result per host, the recap, the output."""

    def __init__(self, wall, returncode, results, recap, output):
        self.wall = wall
        self.returncode = returncode
        self.results = results
        self.recap = recap
        self.output = output

    @property
    def failed_hosts(self):
        return sorted(host for host, counts in self.recap.items() if counts['failed'] or counts['unreachable'])

    def total(self, key):
        return sum(result.get(key) or 0 for result in self.results.values())

    def hosts_that_waited(self):
        return sorted(host for host, result in self.results.items() if result.get('retries'))


class Fleet:
    """N local hosts under ``base``; the lab server's users must include :data:`USER`."""

    def __init__(self, base, hosts, wait_timeout=600):
        self.base = str(base)
        self.names = ['host%04d' % i for i in range(hosts)]
        self.wait_timeout = wait_timeout
        self.inventory = os.path.join(self.base, 'fleet-inventory.json')
        self.playbook = os.path.join(self.base, 'fleet-enroll.yml')
        self.floor_playbook = os.path.join(self.base, 'fleet-floor.yml')

    def host_dir(self, name):
        return os.path.join(self.base, 'hosts', name)

    def write(self, lab):
        hosts = {}
        for name in self.names:
            os.makedirs(self.host_dir(name), exist_ok=True)
            hosts[name] = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                           'host_dir': self.host_dir(name)}
        shared = {'est_url': lab.url, 'est_ca_path': lab.ca_path, 'est_user': USER, 'est_password': PASSWORD,
                  'est_wait_timeout': self.wait_timeout}
        with open(self.inventory, 'w') as handle:
            json.dump({'all': {'hosts': hosts, 'vars': shared}}, handle)
        enroll = {'name': 'Enroll', 'pki.est.est_enroll': {
            'url': '{{ est_url }}', 'ca_path': '{{ est_ca_path }}', 'username': '{{ est_user }}', 'password': '{{ est_password }}',
            'common_name': '{{ inventory_hostname }}.fleet.test', 'subject_alt_name': ['DNS:{{ inventory_hostname }}.fleet.test'],
            'path': '{{ host_dir }}/host.crt', 'private_key_path': '{{ host_dir }}/host.key',
            'chain_path': '{{ host_dir }}/chain.pem', 'wait_timeout': '{{ est_wait_timeout }}'}}
        with open(self.playbook, 'w') as handle:
            json.dump([{'name': 'Fleet', 'hosts': 'all', 'gather_facts': False, 'tasks': [enroll]}], handle)
        with open(self.floor_playbook, 'w') as handle:
            json.dump([{'name': 'Floor', 'hosts': 'all', 'gather_facts': False,
                        'tasks': [{'name': 'Stat', 'ansible.builtin.stat': {'path': '{{ host_dir }}'}}]}], handle)

    def env(self):
        return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO_ROOT, '.build', 'collections'),
                    ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_LOCAL_TEMP=os.path.join(self.base, 'ansible-local'),
                    ANSIBLE_HOME=os.path.join(self.base, 'ansible-home'), ANSIBLE_NOCOLOR='1',
                    ANSIBLE_HOST_KEY_CHECKING='false', ANSIBLE_CALLBACK_RESULT_FORMAT='json',
                    ANSIBLE_CALLBACK_FORMAT_PRETTY='false', ANSIBLE_RETRY_FILES_ENABLED='false')

    def _run(self, playbook, forks, verbose):
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', self.inventory, '-f', str(forks)]
        command += ['-v'] if verbose else []
        start = time.monotonic()
        proc = subprocess.run(command + [playbook], env=self.env(), capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        results, recap = {}, {}
        for line in proc.stdout.splitlines():
            match = _RESULT_LINE.match(line)
            if match:
                try:
                    results[match.group(2)] = json.loads(match.group(3))
                except ValueError:
                    results[match.group(2)] = {'unparsed': match.group(3)[:200]}
                continue
            match = _RECAP_LINE.match(line)
            if match:
                recap[match.group(1)] = {'ok': int(match.group(2)), 'changed': int(match.group(3)),
                                         'unreachable': int(match.group(4)), 'failed': int(match.group(5))}
        return FleetRun(wall, proc.returncode, results, recap, proc.stdout[-4000:] + proc.stderr[-2000:])

    def enroll(self, forks):
        return self._run(self.playbook, forks, verbose=True)

    def floor(self, forks):
        return self._run(self.floor_playbook, forks, verbose=False)

    def check_certificates(self, lab):
        """The hosts whose files are not a valid pair chaining to the lab CA (empty when all are good)."""
        import datetime
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        with open(lab.ca_path, 'rb') as handle:
            ca = x509.load_pem_x509_certificate(handle.read())
        now = datetime.datetime.now(datetime.timezone.utc)
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        bad = []
        for name in self.names:
            try:
                with open(os.path.join(self.host_dir(name), 'host.crt'), 'rb') as handle:
                    cert = x509.load_pem_x509_certificate(handle.read())
                with open(os.path.join(self.host_dir(name), 'host.key'), 'rb') as handle:
                    key = serialization.load_pem_private_key(handle.read(), None)
                assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki), 'key mismatch'
                assert cert.subject.rfc4514_string() == 'CN=%s.fleet.test' % name, cert.subject.rfc4514_string()
                assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc, 'not valid now'
                cert.verify_directly_issued_by(ca)  # the lab issues from its root CA by default
            except (OSError, ValueError, TypeError, AssertionError, InvalidSignature) as exc:
                bad.append('%s: %s' % (name, exc))
        return bad
