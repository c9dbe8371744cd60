# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of pki.est.win_renewal_task: sends the renewal client's C# sources only when the host lacks them.

The Windows renewal client is compiled on the host from three C# files of this collection
(``plugins/module_utils/EstWin.cs``, ``EstWinPlatform.cs`` and ``roles/est_renewal/files/PkiEstRenew.cs``). Its
version is the collection version and a digest of those files. The module runs first with the version only; when
it answers ``sources_needed`` the plugin runs it again with the sources, which it compiles. A host that has the
version costs one module execution, as with est_agent on other hosts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.pki.est.plugins.action.est_agent import collection_version, run_then_send

_COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = (
    os.path.join('plugins', 'module_utils', 'EstWin.cs'),
    os.path.join('plugins', 'module_utils', 'EstWinPlatform.cs'),
    os.path.join('roles', 'est_renewal', 'files', 'PkiEstRenew.cs'),
)


def client_sources(root=_COLLECTION_ROOT):
    """``(version, {file name: text})`` of the renewal client."""
    sources = {}
    digest = hashlib.sha256()
    for relative in SOURCES:
        with open(os.path.join(root, relative), 'rb') as handle:
            data = handle.read()
        name = os.path.basename(relative)
        digest.update(name.encode('utf-8') + b'\0' + hashlib.sha256(data).digest())
        sources[name] = data.decode('utf-8')
    return '%s-%s' % (collection_version(root), digest.hexdigest()[:12]), sources


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        for internal in ('client_version', 'client_sources'):
            if internal in args:
                raise AnsibleActionFail('%s is set by the win_renewal_task action plugin, not in the task' % internal)
        try:
            version, sources = client_sources()
        except (IOError, OSError, UnicodeDecodeError) as exc:
            raise AnsibleActionFail('cannot read the renewal client sources under %s: %s' % (_COLLECTION_ROOT, exc))
        args['client_version'] = version
        result.update(run_then_send(self, args, task_vars, 'sources_needed',
                                    lambda: self._execute_module(module_args=dict(args, client_sources=sources), task_vars=task_vars)))
        return result
