# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The est_lab_server role through playbooks/lab_server.yml: start, idempotent, reconfigure, stop."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket

import requests

from conftest import ROOT


def _free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_lab_server_role_lifecycle(runner, tmp_path):
    playbook = os.path.join(ROOT, 'playbooks', 'lab_server.yml')
    port = _free_port()
    extra = dict(est_lab_hosts='all', est_lab_server_install_dir=str(tmp_path / 'install'), est_lab_server_state_dir=str(tmp_path / 'state'),
                 est_lab_server_port=port, est_lab_server_users={'ops': 'ops-pass'})
    try:
        first = runner.run(playbook, extra)
        assert first.rc == 0, str(first)
        ready = json.loads((tmp_path / 'state' / 'ready.json').read_text())
        assert ready['port'] == port
        health = requests.get('https://127.0.0.1:%d/healthz' % port, verify=ready['ca_path'], timeout=10)
        assert health.status_code == 200

        second = runner.run(playbook, extra)
        assert second.rc == 0 and second.recap()['changed'] == 0, str(second)

        changed = runner.run(playbook, dict(extra, est_lab_server_extra_config={'fullcmc_response': 'certs-only'}))
        assert changed.rc == 0 and changed.recap()['changed'] >= 1, str(changed)
        config = requests.get('https://127.0.0.1:%d/lab/config' % port, verify=ready['ca_path'], timeout=10).json()
        assert config['fullcmc_response'] == 'certs-only'
        # The CA survives the restart.
        assert json.loads((tmp_path / 'state' / 'ready.json').read_text())['ca_fingerprint'] == ready['ca_fingerprint']
    finally:
        stopped = runner.run(playbook, dict(extra, est_lab_server_state='stopped'))
    assert stopped.rc == 0, str(stopped)
    again = runner.run(playbook, dict(extra, est_lab_server_state='stopped'))
    assert again.rc == 0 and again.recap()['changed'] == 0, str(again)
