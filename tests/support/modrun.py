# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one pki.est module the way Ansible runs it on a local host (a Python process reading its arguments file),
without ansible-playbook: for the crash tests, which kill that process at a chosen step (``PKI_EST_CRASH_AT``)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')


def run_module(work_dir, name, args, env=None):
    """``(returncode, result dict or None)`` of ``pki.est.<name>`` with ``args``; ``env`` is added to a clean
    copy of this process's environment (without the crash tests' variables)."""
    args_file = os.path.join(str(work_dir), 'args.json')
    with open(args_file, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    environment = dict(os.environ, PYTHONPATH=COLLECTIONS)
    for name_ in ('PKI_EST_CRASH_AT', 'PKI_EST_CRASH_LOG'):
        environment.pop(name_, None)
    environment.update(env or {})
    proc = subprocess.run([sys.executable, '-m', 'ansible_collections.pki.est.plugins.modules.' + name, args_file],
                          env=environment, capture_output=True, text=True, timeout=120, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    return proc.returncode, result
