# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and atomically replacing files (and making their directories) on the host, without Ansible.

A new file is written beside its destination with the final permissions already set
(``mkstemp`` creates it 0600), flushed to disk, then renamed over the destination, so a
reader sees the old content or the new content, never half of it, and a private key is
never readable by others, not even for a moment.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re
import signal
import tempfile

from .errors import ESTError

# The crash tests stop the process at the Nth file step (a temp file complete but not yet
# renamed, or a file about to be removed) to prove that the next run repairs the host.
# Unset in normal use; see tests/integration/test_crash_safety.py.
_CRASH_AT = os.environ.get('PKI_EST_CRASH_AT')
_CRASH_LOG = os.environ.get('PKI_EST_CRASH_LOG')
_steps = [0]

# mkstemp's names: '.<basename>.' + 8 random characters + '.tmp'.
_TEMP_SUFFIX = re.compile(r'^[a-z0-9_]{8}\.tmp$')


def read_bytes(path):
    """The content of ``path``, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise ESTError('host_state', 'cannot read %s: %s' % (path, exc.strerror or exc))


def atomic_write(path, data, mode=None, uid=-1, gid=-1):
    """Replace ``path`` with ``data`` (bytes) in one rename; ``mode`` is an int such as 0o600.

    Without ``mode`` an existing file keeps its mode and a new one gets 0644 less the umask.
    ``uid``/``gid`` (-1: unchanged) are set on the new file before the rename, so a service that
    reads it never meets a file it may not read.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ESTError('host_state', 'the directory %s for %s does not exist' % (directory, path))
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o644 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    except OSError as exc:
        raise ESTError('host_state', 'cannot create a file in %s: %s' % (directory, exc.strerror or exc))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        _crash_point('rename', path)
        os.rename(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ESTError('host_state', 'cannot write %s: %s' % (path, exc.strerror or exc))
    _fsync_dir(directory)


def make_directories(directory, mode=0o755, uid=-1, gid=-1):
    """Create ``directory`` and its missing ancestors; the directories made, outermost first.

    Each new directory gets ``mode`` exactly (the umask does not apply) and ``uid``/``gid`` (-1:
    the process's own). It is made under a temp name beside its final place
    (``.<name>.XXXXXXXX.tmp``, as :func:`atomic_write` names its files), given its mode and
    owner there and then renamed into place, so that a process killed at any instant leaves no
    directory or a finished one, never one with the wrong owner or mode that a later run would
    take as given. An empty temp directory a killed process left is removed the next time the
    directory is made. Existing directories are left exactly as they are.
    """
    directory = os.path.abspath(directory)
    missing = []
    current = directory
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise ESTError('host_state', 'cannot create the directory %s: %s is in the way and is not a directory'
                           % (directory, current))
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    created = []
    for path in reversed(missing):
        if _make_directory(path, mode, uid, gid):
            created.append(path)
    return created


def _make_directory(path, mode, uid, gid):
    """Make the one directory ``path`` (its parent exists) complete under a temp name, then rename it into place."""
    parent, name = os.path.split(path)
    _remove_stale_temp_dirs(parent, name)
    try:
        tmp = tempfile.mkdtemp(prefix='.%s.' % name, suffix='.tmp', dir=parent)
    except OSError as exc:
        raise ESTError('host_state', 'cannot create the directory %s: %s' % (path, exc.strerror or exc))
    try:
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        _crash_point('mkdir', path)
        if os.path.lexists(path):
            # Made meanwhile by someone else: theirs stays (rename would replace an empty one).
            os.rmdir(tmp)
            return False
        os.rename(tmp, path)
    except OSError as exc:
        try:
            os.rmdir(tmp)
        except OSError:
            pass
        if os.path.isdir(path):
            return False
        raise ESTError('host_state', 'cannot create the directory %s: %s' % (path, exc.strerror or exc))
    _fsync_dir(parent)
    return True


def _remove_stale_temp_dirs(parent, name):
    """Remove the empty temp directories a process killed in :func:`_make_directory` left for ``name``."""
    prefix = '.%s.' % name
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for entry in names:
        if entry.startswith(prefix) and _TEMP_SUFFIX.match(entry[len(prefix):]):
            stale = os.path.join(parent, entry)
            if os.path.isdir(stale) and not os.path.islink(stale):
                try:
                    os.rmdir(stale)  # only when empty: never anything with content in it
                except OSError:
                    pass


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_file(path):
    """Delete ``path``; True when it existed."""
    _crash_point('remove', path)
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise ESTError('host_state', 'cannot remove %s: %s' % (path, exc.strerror or exc))
    return True


def stale_temp_files(paths):
    """Temp files :func:`atomic_write` left beside ``paths`` when a process died before its rename."""
    found = []
    by_dir = {}
    for path in paths:
        if path:
            by_dir.setdefault(os.path.dirname(os.path.abspath(path)), set()).add('.%s.' % os.path.basename(path))
    for directory, prefixes in sorted(by_dir.items()):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in sorted(names):
            for prefix in prefixes:
                if name.startswith(prefix) and _TEMP_SUFFIX.match(name[len(prefix):]):
                    found.append(os.path.join(directory, name))
                    break
    return found


def _crash_point(step, path):
    """Count a file step (``rename``, ``remove``, ``mkdir``); stop the process dead at the one the crash tests ask for."""
    if not _CRASH_AT and not _CRASH_LOG:
        return
    _steps[0] += 1
    if _CRASH_LOG:
        with open(_CRASH_LOG, 'a') as log:
            log.write('%d %s %s\n' % (_steps[0], step, path))
    if _CRASH_AT and _steps[0] == int(_CRASH_AT):
        os.kill(os.getpid(), signal.SIGKILL)


# The fault point for steps outside this file (a token key made, destroyed or relabelled; an agent install).
crash_point = _crash_point
