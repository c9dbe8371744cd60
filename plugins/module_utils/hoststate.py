# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is on the host, and what to do about it.

:func:`inspect` reads the key, certificate, chain and any pending request from disk without
touching the network; :func:`decide` compares that with what is wanted and returns one of
``none``, ``enroll``, ``reenroll`` or ``resume`` (a pending request to submit again) with
the reasons. Idempotence lives here: a run that decides ``none`` makes no request.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import re

from .errors import ESTError
from .fileio import read_bytes

_WINDOW = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(%|d|h|m|s)?\s*$', re.I)


def parse_renew_before(value):
    """``('seconds', n)`` or ``('share', f)`` from ``30``/``30d``/``12h``/``33%``."""
    if value is None or value == '':
        return ('share', 1 / 3.0)
    match = _WINDOW.match(str(value))
    if not match:
        raise ESTError('invalid_input', 'renew_before must be days (30 or 30d), hours (12h), minutes (90m), seconds (600s) '
                       'or a share of the lifetime (33%%), got %r' % (value,))
    number, unit = float(match.group(1)), (match.group(2) or 'd').lower()
    if unit == '%':
        if number > 100:
            raise ESTError('invalid_input', 'renew_before as a share must be at most 100%%, got %r' % (value,))
        return ('share', number / 100.0)
    return ('seconds', number * {'d': 86400, 'h': 3600, 'm': 60, 's': 1}[unit])


def renewal_time(cert, window):
    """When ``cert`` enters its renewal window."""
    from .certinfo import not_after, not_before
    end = not_after(cert)
    kind, amount = window
    if kind == 'share':
        lifetime = (end - not_before(cert)).total_seconds()
        return end - datetime.timedelta(seconds=lifetime * amount)
    return end - datetime.timedelta(seconds=amount)


class Wanted:
    """What the certificate should hold. Empty fields mean "no opinion"."""

    def __init__(self, subject=None, sans=None, key_usage=None, eku=None, key_type=None, window=None):
        self.subject = subject or []          # [(oid, value)]
        self.sans = sans or []                # canonical strings
        self.key_usage = key_usage or []      # cryptography attribute names
        self.eku = eku or []                  # dotted OIDs
        self.key_type = key_type
        self.window = window or ('share', 1 / 3.0)


def wanted_from(params):
    """The :class:`Wanted` description from the options users write (``common_name``, ``subject``,
    ``subject_alt_name``, ``key_usage``, ``extended_key_usage``, ``key_type``, ``renew_before``).

    The modules and the renewal agent both use it, so the decision record one of them writes
    is recognised by the other.
    """
    from .csr import eku_oids, key_usage_names, normalize_san, subject_pairs
    return Wanted(
        subject=subject_pairs(params.get('common_name'), params.get('subject')),
        sans=[normalize_san(s) for s in params.get('subject_alt_name') or []],
        key_usage=key_usage_names(params.get('key_usage')),
        eku=eku_oids(params.get('extended_key_usage')),
        key_type=params.get('key_type'),
        window=parse_renew_before(params.get('renew_before')),
    )


class PendingState:
    """A request the server accepted (202) but has not answered yet, kept beside the certificate."""

    def __init__(self, operation, csr_pem, new_key, created, retry_after=None, attempts=1, cmc_token=None,
                 transaction_id=None):
        self.operation = operation
        self.csr_pem = csr_pem
        self.new_key = new_key
        self.created = created
        self.retry_after = retry_after
        self.attempts = attempts
        self.cmc_token = cmc_token            # base64 pendToken of a full CMC request (RFC 5272 6.13)
        self.transaction_id = transaction_id  # its CMC transactionId
        self.linked = False                   # linked to its TLS session (RFC 7030 3.5): signed anew when sent again

    def to_json(self):
        document = {'operation': self.operation, 'csr': self.csr_pem, 'new_key': self.new_key,
                    'created': self.created, 'retry_after': self.retry_after, 'attempts': self.attempts}
        if self.cmc_token:
            document.update(cmc_token=self.cmc_token, transaction_id=self.transaction_id)
        if self.linked:
            document['linked'] = True
        return json.dumps(document, indent=2, sort_keys=True) + '\n'

    @classmethod
    def from_json(cls, data, source):
        try:
            raw = json.loads(data.decode('utf-8'))
            transaction_id = raw.get('transaction_id')
            state = cls(raw['operation'], raw['csr'], bool(raw['new_key']), raw['created'], raw.get('retry_after'),
                        int(raw.get('attempts', 1)), raw.get('cmc_token'),
                        int(transaction_id) if transaction_id is not None else None)
            state.linked = bool(raw.get('linked'))
            return state
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ESTError('host_state', 'the pending request file %s is unreadable (%s); remove it to start over' % (source, exc))


def pending_paths(cert_path):
    """The files beside the certificate that carry work across runs.

    ``state``: a request the server has not answered yet (202); ``key``: the new key of that
    request or of an installation under way; ``staged``: the verified new certificate and its
    chain, written (and flushed) before the live files are touched. Once ``staged`` exists the
    swap is decided and any later run finishes it from these files alone (see :mod:`.install`).
    """
    return {'state': cert_path + '.pending.json', 'key': cert_path + '.pending.key', 'staged': cert_path + '.pending.pem'}


class HostState:
    """Key, certificate, chain and pending request as found on disk, with what was wrong with them."""

    def __init__(self):
        self.key = None
        self.key_error = None
        self.cert = None
        self.cert_error = None
        self.chain = []
        self.pending = None
        self.pending_key = None
        self.staged = []        # the verified certificate and chain of an interrupted installation
        self.debris = []        # files a killed run left behind that carry nothing: removed by the next run
        self.token_debris = False  # a pending key in a token that nothing needs (see _inspect_pending_token_key)


def inspect(cert_path, key_path, chain_path=None, outputs=(), external_keys=None):
    """Read what is on disk. Unreadable files are reported in ``*_error``, not raised.

    ``outputs`` are the other files the job writes (full chain, PKCS#12): temp files a killed
    run left beside them are debris too. ``external_keys`` (a :class:`~.tokenkeys.TokenKeyStore`)
    holds the key and the pending key in a token instead of ``key_path`` and the pending key file.
    """
    from .codecs import load_pem_certs
    from .keys import load_private_key
    state = HostState()
    key_data = read_bytes(key_path) if key_path else None
    if key_data is not None:
        try:
            state.key = load_private_key(key_data, 'the private key %s' % key_path)
        except ESTError as exc:
            state.key_error = exc.message
    cert_data = read_bytes(cert_path) if cert_path else None
    if cert_data is not None:
        try:
            state.cert = load_pem_certs(cert_data, 'certificate %s' % cert_path)[0]
        except ESTError as exc:
            state.cert_error = exc.message
    if chain_path:
        chain_data = read_bytes(chain_path)
        if chain_data:
            try:
                state.chain = load_pem_certs(chain_data, 'chain %s' % chain_path)
            except ESTError:
                state.chain = []
    if external_keys is not None:
        state.key = external_keys.current
    if cert_path:
        _inspect_pending(state, cert_path, (key_path, chain_path) + tuple(outputs), external_keys)
    return state


def _inspect_pending(state, cert_path, other_paths, external_keys=None):
    """A pending request, an installation to finish, and what killed runs left that carries nothing."""
    from .codecs import load_pem_certs
    from .fileio import stale_temp_files
    from .keys import load_private_key
    paths = pending_paths(cert_path)
    staged = read_bytes(paths['staged'])
    if staged is not None:
        try:
            state.staged = load_pem_certs(staged, 'staged certificate %s' % paths['staged'])
        except ESTError:
            state.debris.append(paths['staged'])  # never complete (atomic write): nothing to finish
    key_data = read_bytes(paths['key'])
    pending_data = read_bytes(paths['state'])
    if pending_data is not None:
        state.pending = PendingState.from_json(pending_data, paths['state'])
    if external_keys is not None:
        _inspect_pending_token_key(state, external_keys)
    elif key_data is not None:
        needed = state.staged or (state.pending is not None and state.pending.new_key)
        try:
            state.pending_key = load_private_key(key_data, 'the pending key %s' % paths['key'])
        except ESTError:
            if needed:
                raise
        if not needed:
            # A new key whose request never got an answer worth keeping: the run that made it died.
            state.pending_key = None
            state.debris.append(paths['key'])
    elif state.pending is not None and state.pending.new_key and not state.staged:
        raise ESTError('host_state', 'the pending request %s needs its key %s, which is missing; remove the '
                       'pending file to start over' % (paths['state'], paths['key']))
    state.debris.extend(stale_temp_files([cert_path, paths['state'], paths['key'], paths['staged'],
                                          cert_path + '.est.json'] + [p for p in other_paths if p]))


def _inspect_pending_token_key(state, external_keys):
    """The pending key in a token: kept when a staged certificate or a pending request needs it, else debris."""
    pending_key = external_keys.pending
    needed = state.staged or (state.pending is not None and state.pending.new_key)
    if pending_key is not None and needed:
        state.pending_key = pending_key
    elif pending_key is not None:
        state.token_debris = True  # a new key whose run died before a verified answer: destroyed by the next run
    elif state.pending is not None and state.pending.new_key and not state.staged:
        raise ESTError('host_state', 'the pending request needs its new key in the token, which is gone; remove the '
                       'pending file to start over')


def differences(cert, wanted):
    """Why ``cert`` does not hold what is wanted (empty list when it does)."""
    from .csr import extension_values, name_pairs
    reasons = []
    have = name_pairs(cert.subject)
    for pair in wanted.subject:
        if pair not in have:
            reasons.append('the subject lacks %s=%s' % pair)
    values = extension_values(cert)
    missing = sorted(set(wanted.sans) - set(values['sans']))
    if missing:
        reasons.append('the subjectAltName lacks %s' % ', '.join(missing))
    missing = sorted(set(wanted.key_usage) - set(values['key_usage']))
    if missing:
        reasons.append('the key usage lacks %s' % ', '.join(missing))
    missing = sorted(set(wanted.eku) - set(values['eku']))
    if missing:
        reasons.append('the extended key usage lacks %s' % ', '.join(missing))
    return reasons


def _issued_by_chain(cert, chain):
    for ca in chain:
        try:
            cert.verify_directly_issued_by(ca)
            return True
        except Exception:  # pylint: disable=broad-except
            continue
    return False


def decide(state, wanted, now=None, force=False, reenroll='auto', invalid_certificate='fail'):
    """``(action, reasons)``: what to do with the host state to get what is wanted."""
    from .certinfo import not_after, not_before
    from .keys import key_type_of, keys_match
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if state.staged:
        return 'recover', ['an interrupted run left a verified certificate to install (%s)'
                           % state.staged[0].subject.rfc4514_string()]
    if state.pending is not None:
        return 'resume', ['a request is pending at the server since %s' % state.pending.created]
    if state.key_error:
        raise ESTError('key_store', state.key_error + '; fix or remove the file (an unreadable key is never replaced silently)')
    if state.cert_error:
        if invalid_certificate == 'fail':
            raise ESTError('host_state', state.cert_error + '; set invalid_certificate=replace to enroll anew')
        return 'enroll', [state.cert_error]
    if state.cert is None:
        return 'enroll', ['there is no certificate']
    if state.key is None:
        return 'enroll', ['there is no private key']
    if not keys_match(state.key, state.cert):
        return 'enroll', ['the certificate does not match the private key']
    reasons = differences(state.cert, wanted)
    if wanted.key_type and key_type_of(state.key) != wanted.key_type:
        reasons.append('the key is %s, %s is wanted' % (key_type_of(state.key), wanted.key_type))
    expired = not_after(state.cert) <= now or not_before(state.cert) > now
    if state.chain and not _issued_by_chain(state.cert, state.chain):
        reasons.append('the certificate is not issued by the CA in the chain file')
    if reasons:
        return 'enroll', reasons
    if expired:
        return 'enroll', ['the certificate is expired (not after %s)' % not_after(state.cert).isoformat()]
    due = renewal_time(state.cert, wanted.window)
    if force:
        return ('reenroll' if reenroll == 'auto' else 'enroll'), ['force is set']
    if now >= due:
        return ('reenroll' if reenroll == 'auto' else 'enroll'), ['the certificate is inside its renewal window since %s'
                                                                  % due.strftime('%Y-%m-%dT%H:%M:%SZ')]
    return 'none', []
