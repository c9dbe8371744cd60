# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between Ansible modules and the EST engine (the only engine file that knows Ansible).

Holds the connection options every EST module shares (documented in the
``pki.est.connection`` doc fragment), the mapping of engine errors onto ``fail_json``, and
the atomic file writes with check mode, diff, backup, owner, group and mode (and, for the
enrollment modules, the missing directories they go to).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import os

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from .errors import ESTError
from .fileio import atomic_write, make_directories, read_bytes, remove_file

try:
    import cryptography  # noqa: F401, pylint: disable=unused-import
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _exc

# Keep in sync with plugins/doc_fragments/connection.py.
CONNECTION_ARGUMENT_SPEC = dict(
    url=dict(type='str', required=True),
    ca_label=dict(type='str'),
    ca_path=dict(type='path'),
    username=dict(type='str'),
    password=dict(type='str', no_log=True),
    client_cert_path=dict(type='path'),
    client_key_path=dict(type='path', no_log=False),
    timeout=dict(type='int', default=30),
)
CONNECTION_REQUIRED_TOGETHER = [('username', 'password')]
CONNECTION_REQUIRED_BY = {'client_key_path': 'client_cert_path'}


def connection_argument_spec(**extra):
    """The shared connection options plus a module's own."""
    spec = dict((name, dict(option)) for name, option in CONNECTION_ARGUMENT_SPEC.items())
    spec.update(extra)
    return spec


def connection_kwargs(params):
    """ESTTransport keyword arguments from module parameters."""
    return dict(
        url=params['url'],
        ca_label=params.get('ca_label'),
        ca_path=params.get('ca_path'),
        username=params.get('username'),
        password=params.get('password'),
        client_cert_path=params.get('client_cert_path'),
        client_key_path=params.get('client_key_path'),
        timeout=params.get('timeout'),
    )


def require_libraries(module, network=True):
    """Fail cleanly when a library the engine needs is missing on the host.

    ``requests`` is looked up without importing it (about 0.1 s), so that a run which
    decides there is nothing to do does not pay for it.
    """
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=to_native(CRYPTOGRAPHY_IMPORT_ERROR),
                         error_kind='invalid_input')
    if network and importlib.util.find_spec('requests') is None:
        module.fail_json(msg=missing_required_lib('requests'), error_kind='invalid_input')


def check_readable(module, *names):
    """Fail early, naming the option, when a path option points at nothing readable."""
    for name in names:
        path = module.params.get(name)
        if path and not os.access(path, os.R_OK):
            module.fail_json(msg='%s: cannot read %s' % (name, path), error_kind='invalid_input')


def fail(module, error, **result):
    """``fail_json`` for an :class:`ESTError`: the message, its kind, and no traceback."""
    result.update(error.as_dict())
    module.fail_json(msg=error.message, **result)


def unexpected(module, exc, **result):
    """``fail_json`` for an error outside the taxonomy: a clear one-line message; the traceback only with -vvv."""
    import traceback
    module.fail_json(msg='unexpected %s: %s' % (type(exc).__name__, exc), error_kind='internal',
                     exception=traceback.format_exc(), **result)


class FileWriter:
    """Writes a module's output files: atomically, honouring check mode, diff and backup.

    With ``make_dirs`` a missing directory of a file is created (with its missing ancestors) just
    before the first file is written there: mode 0755, the module's ``owner`` and ``group``. Not in
    check mode, never before a write. A created directory counts as a change, also for a quiet
    (bookkeeping) write, and stays when the module fails later: the host is no longer as it was.
    """

    def __init__(self, module, make_dirs=False):
        self.module = module
        self.make_dirs = make_dirs
        self.changed = False
        self.created_dirs = []
        self.backup_files = {}
        self.diff_before = {}
        self.diff_after = {}

    def write(self, path, data, mode=None, backup=False, diff=True, name=None, file_args=True, mode_param=True, quiet=False):
        """Put ``data`` (bytes) at ``path``; return True when the content changed.

        ``quiet`` writes do not count as a change (bookkeeping files).
        ``mode`` applies when the module's own ``mode`` option is not set, or always when
        ``mode_param`` is false (private keys). Owner, group, SELinux context and the ``mode``
        option come from the module's common file arguments when ``file_args`` is true.
        """
        if isinstance(data, str):
            data = data.encode('utf-8')
        old = read_bytes(path)
        content_changed = old != data
        label = name or path
        if content_changed and diff:
            self.diff_before[label] = (old or b'').decode('utf-8', 'replace')
            self.diff_after[label] = data.decode('utf-8', 'replace')
        wanted_mode = self._mode(mode) if mode_param else mode
        if content_changed and not self.module.check_mode:
            if backup and old is not None:
                self.backup_files[label] = self.module.backup_local(path)
            if self.make_dirs:
                self._make_parent(path)
            atomic_write(path, data, wanted_mode)
        attrs_changed = False
        if file_args:
            args = self.module.load_file_common_arguments(self.module.params, path=path)
            if not mode_param:
                args['mode'] = mode
            if args.get('mode') is None and wanted_mode is not None:
                args['mode'] = wanted_mode
            if os.path.exists(path):
                attrs_changed = self.module.set_fs_attributes_if_different(args, False)
        if not quiet:
            self.changed = self.changed or content_changed or attrs_changed
        return content_changed or attrs_changed

    def _make_parent(self, path):
        """Create the missing directory of ``path`` (and its missing ancestors): 0755, the module's owner and group."""
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(directory):
            return
        params = self.module.params
        uid = _user_id(params.get('owner'))
        gid = _group_id(params.get('group'))
        created = make_directories(directory, 0o755, uid, gid)
        if created:
            self.created_dirs.extend(created)
            self.changed = True

    def remove(self, path):
        """Delete ``path`` if it exists (honouring check mode)."""
        if not os.path.lexists(path):
            return False
        if not self.module.check_mode:
            remove_file(path)
        self.changed = True
        return True

    def _mode(self, default):
        mode = self.module.params.get('mode')
        if mode is None:
            return default
        if isinstance(mode, int):
            return mode
        try:
            return int(mode, 8)
        except ValueError:
            # Symbolic modes are applied by set_fs_attributes_if_different after the write.
            return default

    def diff(self):
        """``{'before': ..., 'after': ...}`` text for the files that changed."""
        if not self.diff_before:
            return {}
        if len(self.diff_before) == 1:
            label = list(self.diff_before)[0]
            return {'before_header': label, 'after_header': label,
                    'before': self.diff_before[label], 'after': self.diff_after[label]}
        return {'before': ''.join('# %s\n%s' % item for item in sorted(self.diff_before.items())),
                'after': ''.join('# %s\n%s' % item for item in sorted(self.diff_after.items()))}


def _user_id(owner):
    """The uid of ``owner`` (a name or a number), -1 when not set."""
    if owner is None or owner == '':
        return -1
    try:
        return int(owner)
    except ValueError:
        pass
    import pwd
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ESTError('invalid_input', 'owner: there is no user %s on the host' % owner)


def _group_id(group):
    """The gid of ``group`` (a name or a number), -1 when not set."""
    if group is None or group == '':
        return -1
    try:
        return int(group)
    except ValueError:
        pass
    import grp
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ESTError('invalid_input', 'group: there is no group %s on the host' % group)


__all__ = ['CONNECTION_ARGUMENT_SPEC', 'CONNECTION_REQUIRED_TOGETHER', 'CONNECTION_REQUIRED_BY', 'ESTError',
           'FileWriter', 'check_readable', 'connection_argument_spec', 'connection_kwargs', 'fail', 'require_libraries',
           'unexpected']
