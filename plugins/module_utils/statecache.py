# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A record of the last decision, so an idempotent run needs no X.509 parsing at all.

After a run has checked the key and certificate (and found them current, or installed new
ones) it leaves ``<path>.est.json`` beside the certificate: the SHA-256 of the certificate
and chain files, the identity (inode, size, mtime) of the key file, a digest of what was
wanted, and when the renewal window opens. A later run that finds all of these unchanged and
the window still closed answers ``none`` from the record without importing ``cryptography``.
Any difference, a missing or unreadable record, or ``force`` falls back to the full check.
The record holds only public facts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import json
import os

VERSION = 1


def cache_path(cert_path):
    return cert_path + '.est.json'


def _file_sha256(path):
    if not path:
        return None
    try:
        with open(path, 'rb') as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except (IOError, OSError):
        return None


def _file_identity(path):
    """Identity of the key file without reading it: (inode, size, mtime in ns)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def wanted_digest(wanted, chain_path):
    document = json.dumps({'subject': wanted.subject, 'sans': sorted(wanted.sans), 'key_usage': sorted(wanted.key_usage),
                           'eku': sorted(wanted.eku), 'key_type': wanted.key_type, 'window': list(wanted.window),
                           'chain': bool(chain_path)}, sort_keys=True)
    return hashlib.sha256(document.encode('utf-8')).hexdigest()


def snapshot(cert_path, key_path, chain_path, wanted):
    return {'version': VERSION, 'cert_sha256': _file_sha256(cert_path), 'chain_sha256': _file_sha256(chain_path),
            'key': _file_identity(key_path), 'wanted': wanted_digest(wanted, chain_path)}


def lookup(cert_path, key_path, chain_path, wanted, now=None):
    """The recorded certificate facts when nothing changed and no renewal is due, else None."""
    try:
        with open(cache_path(cert_path), 'r') as handle:
            record = json.load(handle)
        renew_at = datetime.datetime.strptime(record['renew_at'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
        not_after = datetime.datetime.strptime(record['facts']['not_after'], '%Y-%m-%dT%H:%M:%SZ').replace(
            tzinfo=datetime.timezone.utc)
        facts = dict(record['facts'])
    except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if _work_left(cert_path, (key_path, chain_path)):
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if now >= renew_at or record.get('snapshot') != snapshot(cert_path, key_path, chain_path, wanted):
        return None
    facts['days_remaining'] = int((not_after - now).total_seconds() // 86400)
    return facts


def _work_left(cert_path, other_paths):
    """A pending request, an installation to finish, or temp files of a killed run are on disk."""
    from .fileio import stale_temp_files
    from .hoststate import pending_paths
    paths = pending_paths(cert_path)
    if any(os.path.lexists(path) for path in paths.values()):
        return True
    return bool(stale_temp_files([cert_path, cache_path(cert_path)] + list(paths.values()) + [p for p in other_paths if p]))


def unchanged(cert_path, key_path, chain_path, wanted, outputs=()):
    """:func:`lookup`, and the other ``outputs`` (full chain, PKCS#12 files) still exist."""
    if any(path and not os.path.exists(path) for path in outputs):
        return None
    from .fileio import stale_temp_files
    if stale_temp_files(outputs):
        return None
    return lookup(cert_path, key_path, chain_path, wanted)


def record(cert_path, key_path, chain_path, wanted, facts, renew_at):
    """The record's JSON text for the files as they are now."""
    return json.dumps({'snapshot': snapshot(cert_path, key_path, chain_path, wanted), 'facts': facts,
                       'renew_at': renew_at.strftime('%Y-%m-%dT%H:%M:%SZ')}, indent=2, sort_keys=True) + '\n'


def request_digest(wanted, chain_path, url, ca_label, kind):
    """Identifies a request for :func:`refusal_lookup`: what is wanted, and from which server."""
    document = json.dumps({'wanted': wanted_digest(wanted, chain_path), 'url': url, 'ca_label': ca_label, 'kind': kind},
                          sort_keys=True)
    return hashlib.sha256(document.encode('utf-8')).hexdigest()


def refusal_record(digest, message, now=None):
    """The JSON text that remembers that the CA would not issue what this request asks for."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return json.dumps({'request': digest, 'message': message, 'since': now.strftime('%Y-%m-%dT%H:%M:%SZ')},
                      indent=2, sort_keys=True) + '\n'


def refusal_lookup(path, digest):
    """``{'message', 'since'}`` when the refusal at ``path`` is for this very request, else None."""
    try:
        with open(path, 'r') as handle:
            record = json.load(handle)
        if record['request'] == digest:
            return {'message': str(record['message']), 'since': str(record['since'])}
    except (IOError, OSError, ValueError, KeyError, TypeError):
        pass
    return None
