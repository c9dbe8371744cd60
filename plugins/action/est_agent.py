# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of pki.est.est_agent: packs the EST engine on the controller, sends it only when the host lacks it.

The engine is every file of this collection's ``plugins/module_utils`` that does not import
Ansible. Its version is the collection version and a digest of those files, so any change
to the engine is a new version on the hosts. The module runs first without the engine; when
it answers ``bundle_needed`` the plugin sends one zip to the host's temporary directory and
runs the module again with it. A host that has the version costs one module execution.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

_COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ENGINE_DIR = os.path.join(_COLLECTION_ROOT, 'plugins', 'module_utils')
# module_utils files that import Ansible, or serve only the modules: not part of the agent.
_NOT_ENGINE = frozenset(('_module.py', '_enroll_module.py', '_agent_setup.py'))
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)

_cache = {}


def collection_version(root=_COLLECTION_ROOT):
    """The version in MANIFEST.json (an installed collection) or galaxy.yml (a source checkout)."""
    try:
        with open(os.path.join(root, 'MANIFEST.json')) as handle:
            return json.load(handle)['collection_info']['version']
    except (IOError, OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(root, 'galaxy.yml')) as handle:
            found = re.search(r'^version:\s*["\']?([^"\'\s]+)', handle.read(), re.M)
    except (IOError, OSError):
        found = None
    return found.group(1) if found else '0'


def engine_files(engine_dir=_ENGINE_DIR):
    """``[(name, bytes)]`` of the engine, sorted by name."""
    names = sorted(n for n in os.listdir(engine_dir) if n.endswith('.py') and n not in _NOT_ENGINE)
    files = []
    for name in names:
        with open(os.path.join(engine_dir, name), 'rb') as handle:
            files.append((name, handle.read()))
    return files


def engine_bundle(engine_dir=_ENGINE_DIR, root=_COLLECTION_ROOT):
    """``(version, zip bytes)``: the same bytes for the same engine (fixed member times and order)."""
    files = engine_files(engine_dir)
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode('utf-8') + b'\0' + hashlib.sha256(data).digest())
    version = '%s-%s' % (collection_version(root), digest.hexdigest()[:12])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return version, buffer.getvalue()


def _bundle():
    """The bundle of this controller process, packed once."""
    if 'bundle' not in _cache:
        _cache['bundle'] = engine_bundle()
    return _cache['bundle']


def run_then_send(action, args, task_vars, needed, send):
    """Run the module of ``action`` with ``args``; when it answers ``needed`` (the host lacks what only the controller
    has), run ``send()``, which gives it that and returns the module's second answer. The first answer costs one
    module execution, so a host with nothing to change pays only that (est_agent, win_renewal_task)."""
    try:
        outcome = action._execute_module(module_args=args, task_vars=task_vars)  # pylint: disable=protected-access
        if outcome.get(needed) and not outcome.get('failed'):
            outcome = send()
    finally:
        action._remove_tmp_path(action._connection._shell.tmpdir)  # pylint: disable=protected-access
    outcome.pop(needed, None)
    return outcome


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        for internal in ('bundle_version', 'bundle_path'):
            if internal in args:
                raise AnsibleActionFail('%s is set by the est_agent action plugin, not in the task' % internal)
        try:
            version, data = _bundle()
        except (IOError, OSError) as exc:
            raise AnsibleActionFail('cannot pack the EST engine from %s: %s' % (_ENGINE_DIR, exc))
        args['bundle_version'] = version
        result.update(run_then_send(self, args, task_vars, 'bundle_needed', lambda: self._send_and_install(args, data, task_vars)))
        return result

    def _send_and_install(self, args, data, task_vars):
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, 'pki_est_engine.zip')
        local_dir = tempfile.mkdtemp(prefix='pki-est-agent-', dir=C.DEFAULT_LOCAL_TMP)
        local = os.path.join(local_dir, 'pki_est_engine.zip')
        try:
            with open(local, 'wb') as handle:
                handle.write(data)
            self._transfer_file(local, remote)
        finally:
            os.unlink(local)
            os.rmdir(local_dir)
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        return self._execute_module(module_args=dict(args, bundle_path=remote), task_vars=task_vars)
