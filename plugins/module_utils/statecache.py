# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A record of the last decision, so an idempotent run needs no X.509 parsing at all.

After a run has checked the key and certificate (and found them current, or installed new
ones) it leaves ``<path>.est.json`` beside the certificate: the SHA-256 of the certificate,
chain, full chain and PKCS#12 files, the identity and a digest of the key file, a digest of
what was wanted, and when the renewal window opens. A later run that finds all of these
unchanged and the window still closed answers ``none`` from the record without importing
``cryptography``. Any difference, a file that cannot be read, a missing or unreadable record,
a record of another :data:`VERSION`, or ``force`` falls back to the full check. The record
holds only public facts and a digest of the key file that reveals nothing about the key
(see below).

How the key file is recognised (record version 2). The key file is identified by its
content, not only by its metadata: the record keeps a SHA-256 of the file's bytes (see
:func:`_key_digest`) next to its inode, size, mtime and ctime. Version 1 kept only inode,
size and mtime, and a key written in place (same inode) with the same size and its old
mtime put back (``touch -d``, ``os.utime``, ``cp -p`` over the file, ``rsync -t --inplace``)
passed as unchanged.
ctime alone would close that particular gap for everyone without root, since no system call
sets it (it takes the current time at every write, chmod, chown or rename), but it is not a
statement about the content: root can still put it back (set the clock back around the write,
edit the inode with ``debugfs``), and on file systems and kernels with coarse timestamps
(one second on some, a scheduler tick on others, NFS attribute caching) a same-size write
soon after the record was taken leaves size, mtime and ctime all equal. A digest catches
every change of content whatever the clock, the file system or the writer did, and it costs
one ``open`` and ``read`` of a file of a few hundred bytes and a hash with ``hashlib``
(microseconds; no ``cryptography`` import, so idempotent runs stay near a ``stat`` task).
The module runs as the key's owner, so it can read the key; when it cannot, there is no fast
path. ctime and inode stay in the record for what the digest cannot see: a key replaced by
another file with the same bytes, or a change of mode, owner or ACL (these go through the
full check once, which writes a new record).

The digest covers a fixed label (``pki.est statecache key file v2``) before the bytes, so it
is not the ``sha256sum`` of the key file that other tools may print or log and cannot be
matched against one. It tells nobody anything about the key: a private key file holds far
more than 128 bits of entropy, and only someone who already holds the key can compute it.
The record is written with the certificate's mode, which may be world-readable.

The full chain and PKCS#12 files (``outputs``) are recorded by content too: a run whose
files differ from the record in any byte goes through the full check, not only a run that
finds one of them missing. A record made without ``outputs`` (``record()`` called by a caller
that does not pass them) has ``outputs`` null and only the files' existence is checked, as
in version 1.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import json
import os

VERSION = 2

_KEY_DIGEST_LABEL = b'pki.est statecache key file v2\x00'


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


def _key_digest(data):
    """SHA-256 of the key file's bytes, after a fixed label (see the module documentation)."""
    return hashlib.sha256(_KEY_DIGEST_LABEL + data).hexdigest()


def _key_snapshot(path):
    """``{'identity': [inode, size, mtime ns, ctime ns], 'sha256': ...}`` of the key file, None when unreadable.

    The file is opened once and both facts come from that one open file (``fstat``), so a
    rename between the two cannot pair the identity of one file with the digest of another.
    """
    try:
        with open(path, 'rb') as handle:
            st = os.fstat(handle.fileno())
            data = handle.read()
    except (IOError, OSError, TypeError):
        return None
    return {'identity': [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns], 'sha256': _key_digest(data)}


def _outputs_snapshot(outputs):
    """``[[path, sha256], ...]`` of the full chain and PKCS#12 files that are asked for, in path order.

    None stands for a file that cannot be read; :func:`unchanged` never trusts a record then.
    """
    return sorted([path, _file_sha256(path)] for path in set(p for p in outputs if p))


def wanted_digest(wanted, chain_path):
    document = json.dumps({'subject': wanted.subject, 'sans': sorted(wanted.sans), 'key_usage': sorted(wanted.key_usage),
                           'eku': sorted(wanted.eku), 'key_type': wanted.key_type, 'window': list(wanted.window),
                           'chain': bool(chain_path)}, sort_keys=True)
    return hashlib.sha256(document.encode('utf-8')).hexdigest()


def snapshot(cert_path, key_path, chain_path, wanted, outputs=None):
    """What the record says about the files as they are now; None when a file it names cannot be read.

    ``outputs`` are the other files the job writes (full chain, PKCS#12); None leaves them out
    (``outputs`` null in the record, their existence is then checked by :func:`unchanged`).
    """
    cert_sha256 = _file_sha256(cert_path)
    chain_sha256 = _file_sha256(chain_path)
    key = _key_snapshot(key_path) if key_path else None
    if cert_sha256 is None or (chain_path and chain_sha256 is None) or (key_path and key is None):
        return None
    outputs = None if outputs is None else _outputs_snapshot(outputs)
    if outputs is not None and any(digest is None for _path, digest in outputs):
        return None
    return {'version': VERSION, 'cert_sha256': cert_sha256, 'chain_sha256': chain_sha256, 'key': key,
            'outputs': outputs, 'wanted': wanted_digest(wanted, chain_path)}


def lookup(cert_path, key_path, chain_path, wanted, now=None, outputs=None):
    """The recorded certificate facts when nothing changed and no renewal is due, else None.

    ``outputs`` (full chain, PKCS#12 paths) are compared by content when the record holds
    them; a record made without them (``outputs`` null) is compared without them.
    """
    try:
        with open(cache_path(cert_path), 'r') as handle:
            record = json.load(handle)
        renew_at = datetime.datetime.strptime(record['renew_at'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
        not_after = datetime.datetime.strptime(record['facts']['not_after'], '%Y-%m-%dT%H:%M:%SZ').replace(
            tzinfo=datetime.timezone.utc)
        facts = dict(record['facts'])
        recorded = record['snapshot']
        if recorded['version'] != VERSION:
            return None  # another layout: not compared field by field, simply not used
        recorded_outputs = recorded['outputs']
    except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if _work_left(cert_path, (key_path, chain_path)):
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if now >= renew_at:
        return None
    current = snapshot(cert_path, key_path, chain_path, wanted, None if recorded_outputs is None else tuple(outputs or ()))
    if current is None or recorded != current:
        return None
    facts['days_remaining'] = int((not_after - now).total_seconds() // 86400)
    return facts


def vouched_facts(cert_path, key_path=None, chain_path=None):
    """``(facts, key_vouched, chain_vouched)`` from the record when its certificate is the file as it is now, else None.

    For readers that want facts, not a decision (the est_cert_info module): what was wanted and
    the renewal window are not compared. ``key_vouched`` is True when ``key_path`` is the key file
    the record saw (a record is written only for a matching pair); ``chain_vouched`` when
    ``chain_path`` holds the chain the record saw (the certificate was verified with it then).
    Either is False when not given or different.
    """
    try:
        with open(cache_path(cert_path), 'r') as handle:
            record = json.load(handle)
        facts = dict(record['facts'])
        recorded = record['snapshot']
        if recorded['version'] != VERSION or recorded['cert_sha256'] != _file_sha256(cert_path):
            return None
        key_vouched = bool(key_path) and recorded['key'] is not None and recorded['key'] == _key_snapshot(key_path)
        chain_vouched = bool(chain_path) and recorded['chain_sha256'] is not None and recorded['chain_sha256'] == _file_sha256(chain_path)
    except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return facts, key_vouched, chain_vouched


def _work_left(cert_path, other_paths):
    """A pending request, an installation to finish, or temp files of a killed run are on disk."""
    from .fileio import stale_temp_files
    from .hoststate import pending_paths
    paths = pending_paths(cert_path)
    if any(os.path.lexists(path) for path in paths.values()):
        return True
    return bool(stale_temp_files([cert_path, cache_path(cert_path)] + list(paths.values()) + [p for p in other_paths if p]))


def unchanged(cert_path, key_path, chain_path, wanted, outputs=()):
    """:func:`lookup`, and the other ``outputs`` (full chain, PKCS#12 files) exist with the recorded content.

    Their content is compared when the record holds their digests (``record(..., outputs=...)``);
    a record made without them only has their existence checked.
    """
    if any(path and not os.path.exists(path) for path in outputs):
        return None
    from .fileio import stale_temp_files
    if stale_temp_files(outputs):
        return None
    return lookup(cert_path, key_path, chain_path, wanted, outputs=outputs)


def record(cert_path, key_path, chain_path, wanted, facts, renew_at, outputs=None):
    """The record's JSON text for the files as they are now.

    ``outputs`` are the full chain and PKCS#12 paths the job wrote (None entries are skipped);
    pass the same tuple that :func:`unchanged` gets, so that a later change of their content
    is noticed. Without ``outputs`` the record says nothing about their content.
    """
    return json.dumps({'snapshot': snapshot(cert_path, key_path, chain_path, wanted, outputs), 'facts': facts,
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
