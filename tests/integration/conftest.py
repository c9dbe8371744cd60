# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration tests: real ansible-playbook runs against the lab EST server over TLS on 127.0.0.1."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from support.labserver import lab_server  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
PLAYBOOKS = os.path.join(HERE, 'playbooks')


def _ensure_collection_link():
    parent = os.path.join(COLLECTIONS, 'ansible_collections', 'pki')
    link = os.path.join(parent, 'est')
    if not os.path.isdir(parent):
        os.makedirs(parent)
    if not os.path.islink(link):
        os.symlink(ROOT, link)


class PlaybookResult:
    def __init__(self, proc, command):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.command = command

    @property
    def output(self):
        return self.stdout + self.stderr

    def recap(self):
        """``{'ok': n, 'changed': n, 'failed': n, ...}`` for the single host of the run."""
        match = re.search(r'^\S+\s+:\s+(ok=.*)$', self.stdout, re.M)
        assert match, 'no PLAY RECAP in:\n' + self.output
        return dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', match.group(1)))

    def __repr__(self):
        # Shown by pytest when an assertion on the result fails: keep the end, where failures are.
        return 'PlaybookResult(rc=%s)' % self.rc

    def __str__(self):
        return 'rc=%s\n%s\n%s' % (self.rc, self.stdout[-8000:], self.stderr[-3000:])


class Runner:
    """Runs ansible-playbook against localhost with this venv's Python as the host's interpreter."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.inventory = tmp_path / 'inventory.ini'
        self.inventory.write_text('testhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)

    def env(self):
        env = dict(os.environ)
        env.update(
            ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
            ANSIBLE_NOCOLOR='1',
            ANSIBLE_FORCE_COLOR='0',
            ANSIBLE_RETRY_FILES_ENABLED='false',
            ANSIBLE_LOCALHOST_WARNING='false',
            ANSIBLE_LOCAL_TEMP=str(self.tmp_path / 'ansible-local'),
            ANSIBLE_REMOTE_TEMP=str(self.tmp_path / 'ansible-remote'),
            ANSIBLE_HOME=str(self.tmp_path / 'ansible-home'),
            PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
        )
        return env

    def call(self, module, args, check=False, diff=False, verbosity=0):
        """Run one module task; return ``(result dict, PlaybookResult)``. Failures are returned, not raised."""
        import json
        self.calls = getattr(self, 'calls', 0) + 1
        out = self.tmp_path / ('result-%d.json' % self.calls)
        play = self.tmp_path / ('call-%d.yml' % self.calls)
        play.write_text(json.dumps([{
            'name': 'Call %s' % module, 'hosts': 'all', 'gather_facts': False,
            'tasks': [
                {'name': 'Run %s' % module, module: args, 'register': 'result', 'ignore_errors': True,
                 'check_mode': bool(check)},
                {'name': 'Save the result', 'check_mode': False,
                 'ansible.builtin.copy': {'content': '{{ result | to_nice_json }}', 'dest': str(out), 'mode': '0600'}},
            ]}]))
        run = self.run(str(play), diff=diff, verbosity=verbosity)
        assert run.rc == 0 and out.exists(), str(run)
        return json.loads(out.read_text()), run

    def run(self, playbook, extra_vars=None, check=False, diff=False, verbosity=0, tags=None):
        import json
        path = playbook if os.path.isabs(playbook) else os.path.join(PLAYBOOKS, playbook)
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(self.inventory), path]
        if extra_vars:
            command += ['-e', json.dumps(extra_vars)]
        if check:
            command.append('--check')
        if diff:
            command.append('--diff')
        if verbosity:
            command.append('-' + 'v' * verbosity)
        if tags:
            command += ['--tags', tags]
        proc = subprocess.run(command, env=self.env(), cwd=str(self.tmp_path), capture_output=True, text=True, timeout=600,
                              check=False)
        return PlaybookResult(proc, command)


@pytest.fixture(scope='session', autouse=True)
def collection_link():
    _ensure_collection_link()


@pytest.fixture
def runner(tmp_path):
    return Runner(tmp_path)


@pytest.fixture
def lab(tmp_path):
    with lab_server(tmp_path, config={'users': {'alice': 's3cret-Pa55'}, 'labels': ['iot']}) as server:
        yield server
