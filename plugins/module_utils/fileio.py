# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and atomically replacing files on the host, without Ansible.

A new file is written beside its destination with the final permissions already set
(``mkstemp`` creates it 0600), flushed to disk, then renamed over the destination, so a
reader sees the old content or the new content, never half of it, and a private key is
never readable by others, not even for a moment.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import tempfile

from .errors import ESTError


def read_bytes(path):
    """The content of ``path``, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise ESTError('host_state', 'cannot read %s: %s' % (path, exc.strerror or exc))


def atomic_write(path, data, mode=None):
    """Replace ``path`` with ``data`` (bytes) in one rename; ``mode`` is an int such as 0o600.

    Without ``mode`` an existing file keeps its mode and a new one gets 0644 less the umask.
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
        os.rename(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ESTError('host_state', 'cannot write %s: %s' % (path, exc.strerror or exc))
    _fsync_dir(directory)


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
