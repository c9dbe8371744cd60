# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The est_cert_info module around its engine: check mode, never a change, clean failures."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.pki.est.plugins.modules import est_cert_info


def _run(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            est_cert_info.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


def test_check_mode_reads_and_changes_nothing(tmp_path, capsys):
    (tmp_path / 'first.crt.pending.json').write_text(json.dumps({'operation': 'simpleenroll', 'csr': 'x', 'new_key': True,
                                                                'created': '2030-01-01T00:00:00Z'}))
    before = sorted(os.listdir(str(tmp_path)))
    code, result = _run(capsys, {'paths': [str(tmp_path / 'none.crt'), {'path': str(tmp_path / 'first.crt'), 'name': 'first'}],
                                 '_ansible_check_mode': True})
    assert code == 0 and result['changed'] is False and result['agent_config'] is None
    assert [(c['name'], c['state']) for c in result['certificates']] == [('none.crt', 'missing'), ('first', 'pending')]
    assert result['counts']['missing'] == 1 and result['counts']['pending'] == 1
    assert sorted(os.listdir(str(tmp_path))) == before


def test_missing_agent_config_fails_cleanly(tmp_path, capsys):
    code, result = _run(capsys, {'agent_config': str(tmp_path / 'config.json')})
    assert code == 1 and result['failed'] and result['error_kind'] == 'invalid_input'
    assert 'config.json' in result['msg'] and 'exception' not in result


def test_paths_and_agent_config_exclude_each_other(tmp_path, capsys):
    code, result = _run(capsys, {'paths': ['/a.crt'], 'agent_config': str(tmp_path / 'c.json')})
    assert code == 1 and 'mutually exclusive' in result['msg']


def test_bad_entry_fails_cleanly(capsys):
    code, result = _run(capsys, {'paths': [{'path': '/a.crt', 'renew_before': 'soon'}]})
    assert code == 1 and result['error_kind'] == 'invalid_input' and result['msg'].startswith('a.crt: renew_before')
