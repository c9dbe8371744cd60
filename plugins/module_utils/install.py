# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Putting a verified key and certificate in place so that a crash at any instant is repaired.

A key and its certificate live in two files, so no single rename can swap them. The swap is
therefore made in three phases, each of whose files is written atomically (:mod:`.fileio`):

1. stage: the new key (when there is one) goes to ``<path>.pending.key``, then the verified
   certificate and its chain to ``<path>.pending.pem``. Until that file exists the live
   files are untouched; a run killed before it leaves at most debris that the next run
   removes. Once it exists the swap is decided.
2. apply: chain, key, certificate, full chain and PKCS#12 files are written from the staged
   files. Each write is idempotent, so doing it again after a crash is harmless.
3. finish: the pending request, the pending key and, last, the staged certificate are removed.

Any later run (a module or the host-side renewal agent) that finds ``<path>.pending.pem``
repeats phases 2 and 3 from the files alone, without the network and with only the
credentials the host already has: :func:`recover`.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def stage(files, cert_path, cert, chain, new_key=None, key_staged=False):
    """Phase 1: the new key (unless ``key_staged``) and then the certificate with its chain."""
    from .codecs import certs_to_pem
    from .hoststate import pending_paths
    from .keys import private_key_pem
    paths = pending_paths(cert_path)
    if new_key is not None and not key_staged:
        files.write(paths['key'], private_key_pem(new_key), 0o600, secret=True)
    files.write(paths['staged'], certs_to_pem([cert] + list(chain)), 0o600)


def apply(files, options, cert, chain, key, new_key, only_missing=()):
    """Phase 2: the live files from ``cert``, ``chain`` and ``key``; the key file only when ``new_key``.

    With ``only_missing`` (a list of paths) only those chain, full chain and PKCS#12 files are
    written; the key and certificate are left alone.
    """
    from .codecs import certs_to_pem
    from .keys import private_key_pem
    opts = options

    def due(path):
        return path and (not only_missing or path in only_missing)

    if due(opts.chain_path):
        files.write(opts.chain_path, certs_to_pem(chain), opts.cert_mode)
    if new_key and not only_missing:
        if getattr(opts, 'external_keys', None) is not None:
            opts.external_keys.promote()  # a token key: the new key takes the label, the old one goes
        else:
            files.write(opts.key_path, private_key_pem(key), opts.key_mode, secret=True)
    if not only_missing:
        files.write(opts.cert_path, certs_to_pem([cert]), opts.cert_mode)
    if due(opts.fullchain_path):
        files.write(opts.fullchain_path, certs_to_pem([cert] + list(chain)), opts.cert_mode)
    if due(opts.pkcs12_path):
        files.write(opts.pkcs12_path, pkcs12_bundle(key, cert, chain, opts.pkcs12_passphrase), opts.key_mode, secret=True)


def finish(files, cert_path):
    """Phase 3: forget the request and the staged pair; the staged certificate goes last."""
    from .hoststate import pending_paths
    paths = pending_paths(cert_path)
    for name in ('state', 'key', 'staged'):
        files.remove(paths[name])


def install(files, options, cert, chain, key, new_key, key_staged=False):
    """All three phases: ``cert`` (verified) with ``chain`` replaces the live pair."""
    if options.cert_path:
        # A new key in a token is already where it belongs (under its pending label): only the certificate is staged.
        token = getattr(options, 'external_keys', None) is not None
        stage(files, options.cert_path, cert, chain, key if new_key and not token else None, key_staged)
    apply(files, options, cert, chain, key, new_key)
    if options.cert_path:
        finish(files, options.cert_path)


def staged_pair(state):
    """``(cert, chain, key, new_key)`` of the installation an interrupted run left, or None.

    The staged certificate belongs to the pending key (a new key) or to the live key (a
    renewal with the same key, or a new key already copied in place). One that belongs to
    neither was not left by this code: it is not installed.
    """
    from .keys import keys_match
    if not state.staged:
        return None
    cert, chain = state.staged[0], list(state.staged[1:])
    if state.pending_key is not None and keys_match(state.pending_key, cert):
        return cert, chain, state.pending_key, True
    if state.key is not None and keys_match(state.key, cert):
        return cert, chain, state.key, False
    return None


def recover(files, options, state):
    """Finish the installation an interrupted run left (phases 2 and 3); the installed certificate.

    A staged certificate that matches no key on the host cannot be installed: it is removed
    and None returned, and the caller goes on as if it had never been there.
    """
    from .hoststate import pending_paths
    pair = staged_pair(state)
    if pair is None:
        files.remove(pending_paths(options.cert_path)['staged'])
        return None
    cert, chain, key, new_key = pair
    apply(files, options, cert, chain, key, new_key)
    finish(files, options.cert_path)
    return cert


def pkcs12_bundle(key, cert, chain, passphrase):
    """A PKCS#12 bundle of the key, certificate and chain, encrypted with ``passphrase`` (or not at all)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase.encode('utf-8'))
    else:
        encryption = serialization.NoEncryption()
    name = cert.subject.rfc4514_string().encode('utf-8')[:64] or None
    return pkcs12.serialize_key_and_certificates(name, key, cert, list(chain) or None, encryption)
