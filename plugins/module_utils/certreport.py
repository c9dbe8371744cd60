# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the certificates on a host look like, without the network (the est_cert_info module).

For each certificate: its facts, whether its key matches, whether it chains to the chain file
or ``ca_path``, a pending request beside it, the renewal agent's last result, and one state:

``revoked``
    a revocation check (only when asked, :mod:`.revocation`) said so;
``expired``
    notAfter has passed;
``invalid``
    the file holds no readable certificate, it is not valid yet, it does not match its key,
    or it does not chain to the chain file or ``ca_path``;
``pending``
    a request is waiting at the server (``<path>.pending.json``), with or without a certificate;
``missing``
    there is no certificate file;
``renewal_due``
    inside its renewal window (``renew_before``, read as est_enroll reads it);
``valid``
    none of the above.

The order above is the precedence: a certificate gets the first state that applies, and every
problem found is in ``reasons``. A daily run over a fleet should cost about as much as a
``stat``: when the decision record (:mod:`.statecache`) vouches for the certificate, key and
chain files as they are now, the facts come from it and no X.509 is parsed (``checked_by:
record``). A revocation check, a ``ca_path`` or a record that does not vouch means parsing
(``checked_by: x509``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import os

from .errors import ESTError

STATES = ('valid', 'renewal_due', 'pending', 'missing', 'invalid', 'expired', 'revoked')
# Worst first: the state a certificate gets is the first of these that applies.
PRECEDENCE = ('revoked', 'expired', 'invalid', 'pending', 'missing', 'renewal_due', 'valid')
REVOCATION_MODES = ('none', 'crl', 'ocsp', 'auto')
ENTRY_KEYS = ('path', 'name', 'private_key_path', 'private_key_uri', 'chain_path', 'renew_before')
_AGENT_KEYS = ('last_run', 'last_status', 'last_message', 'last_success', 'failures', 'not_after')
_TIME = '%Y-%m-%dT%H:%M:%SZ'


def _utc(text):
    return datetime.datetime.strptime(text, _TIME).replace(tzinfo=datetime.timezone.utc)


def entries_from_paths(paths):
    """The certificates to look at, from the module's ``paths`` (path strings or dicts)."""
    entries = []
    for index, item in enumerate(paths or []):
        where = 'paths[%d]' % index
        if isinstance(item, str):
            item = {'path': item}
        if not isinstance(item, dict):
            raise ESTError('invalid_input', '%s must be a path or a dict with path, got %r' % (where, item))
        unknown = sorted(set(item) - set(ENTRY_KEYS))
        if unknown:
            raise ESTError('invalid_input', '%s has unknown keys %s (known: %s)' % (where, ', '.join(unknown), ', '.join(ENTRY_KEYS)))
        for key, value in item.items():
            if value is not None and not isinstance(value, str):
                raise ESTError('invalid_input', '%s: %s must be a string, got %r' % (where, key, value))
        if not item.get('path'):
            raise ESTError('invalid_input', '%s has no path' % where)
        if item.get('private_key_path') and item.get('private_key_uri'):
            raise ESTError('invalid_input', '%s: private_key_path and private_key_uri are mutually exclusive' % where)
        entry = dict((key, item.get(key) or None) for key in ENTRY_KEYS)
        entry['name'] = entry['name'] or os.path.basename(entry['path'])
        entries.append(entry)
    _check_names(entries)
    return entries


def entries_from_agent_config(config_path):
    """``(entries, agent state)``: every certificate an est_renewal agent config lists, and the agent's last results."""
    from .agent import ConfigError, load_config, load_state
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise ESTError('invalid_input', '%s (give paths, or agent_config naming an est_renewal agent config)' % exc)
    entries = [dict((key, entry.get(key) or None) for key in ENTRY_KEYS) for entry in config.get('certificates') or []]
    return entries, load_state(config)


def _check_names(entries):
    seen = set()
    for entry in entries:
        if entry['name'] in seen:
            raise ESTError('invalid_input', 'the name %r is used for two certificates; give each a name' % entry['name'])
        seen.add(entry['name'])


def _window(entry):
    from .hoststate import parse_renew_before
    try:
        return parse_renew_before(entry.get('renew_before'))
    except ESTError as exc:
        raise ESTError('invalid_input', '%s: %s' % (entry['name'], exc.message))


def _renew_at(not_before, not_after, window):
    kind, amount = window
    if kind == 'share':
        return not_after - datetime.timedelta(seconds=(not_after - not_before).total_seconds() * amount)
    return not_after - datetime.timedelta(seconds=amount)


def _pending(cert_path):
    """The pending request beside the certificate in a few public words (never its CSR), or None."""
    from .hoststate import pending_paths
    path = pending_paths(cert_path)['state']
    try:
        with open(path, 'r') as handle:
            raw = json.load(handle)
        return {'created': raw.get('created'), 'attempts': raw.get('attempts'), 'operation': raw.get('operation'),
                'retry_after': raw.get('retry_after')}
    except (IOError, OSError) as exc:
        if os.path.lexists(path):
            return {'error': 'cannot read %s: %s' % (path, exc.strerror or exc)}
        return None
    except (ValueError, AttributeError) as exc:
        return {'error': 'the pending request file %s is unreadable (%s)' % (path, exc)}


def _blank(entry):
    return {
        'name': entry['name'], 'path': entry['path'], 'private_key_path': entry.get('private_key_path'),
        'chain_path': entry.get('chain_path'), 'state': None, 'reasons': [], 'checked_by': None,
        'subject': None, 'subject_alt_name': [], 'issuer': None, 'serial': None, 'sha256_fingerprint': None,
        'not_before': None, 'not_after': None, 'seconds_left': None, 'renew_at': None,
        'key_match': None, 'key_match_reason': None, 'chain_ok': None, 'chain_reason': None,
        'pending': None, 'revocation': None, 'revocation_error': None, 'agent': None,
    }


def inspect_certificate(entry, ca_path=None, revocation='none', revocation_timeout=10, agent_state=None, now=None):
    """The report for one certificate (see the module documentation); never raises for what is on disk."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    window = _window(entry)
    info = _blank(entry)
    info['pending'] = _pending(entry['path'])
    if agent_state and isinstance(agent_state.get(entry['name']), dict):
        last = agent_state[entry['name']]
        info['agent'] = dict((key, last.get(key)) for key in _AGENT_KEYS)
    if entry.get('private_key_uri'):
        info['key_match_reason'] = 'the key is in a PKCS#11 token (%s); est_cert_info does not open tokens' % entry['private_key_uri']
    elif not entry.get('private_key_path'):
        info['key_match_reason'] = 'no private_key_path given'
    if not (entry.get('chain_path') or ca_path):
        info['chain_reason'] = 'no chain_path or ca_path given'
    cert = None
    if not os.path.lexists(entry['path']):
        info['reasons'].append('there is no certificate at %s' % entry['path'])
    elif not (revocation == 'none' and not ca_path and _facts_from_record(info, entry, now)):
        cert = _facts_from_x509(info, entry, ca_path, now)
    if cert is not None and revocation != 'none':
        _check_revocation(info, cert, entry, ca_path, revocation, revocation_timeout)
    _decide(info, window, now)
    return info


def _facts_from_record(info, entry, now):
    """Fill ``info`` from the decision record when it vouches for the files; False when the certificate must be parsed."""
    from .statecache import vouched_facts
    vouched = vouched_facts(entry['path'], entry.get('private_key_path'), entry.get('chain_path'))
    if vouched is None:
        return False
    facts, key_vouched, chain_vouched = vouched
    if (entry.get('private_key_path') and not key_vouched) or (entry.get('chain_path') and not chain_vouched):
        return False  # another key or chain than the record saw: compare them for real
    try:
        not_before, not_after = _utc(facts['not_before']), _utc(facts['not_after'])
    except (KeyError, TypeError, ValueError):
        return False
    if not not_before <= now < not_after:
        return False  # the reasons for an expired certificate come from the certificate itself
    _set_facts(info, facts)
    if key_vouched:
        info['key_match'] = True
    if chain_vouched:
        info['chain_ok'] = True
    info['checked_by'] = 'record'
    return True


def _set_facts(info, facts):
    for key in ('subject', 'issuer', 'serial', 'sha256_fingerprint', 'not_before', 'not_after'):
        info[key] = facts.get(key)
    info['subject_alt_name'] = list(facts.get('subject_alt_name') or [])


def _facts_from_x509(info, entry, ca_path, now):
    """Fill ``info`` by parsing the files; the certificate, or None when it cannot be read."""
    from .certinfo import cert_facts
    from .codecs import load_pem_certs
    from .csr import extension_values
    from .fileio import read_bytes
    info['checked_by'] = 'x509'
    try:
        cert = load_pem_certs(read_bytes(entry['path']) or b'', 'certificate %s' % entry['path'])[0]
    except ESTError as exc:
        info['reasons'].append(exc.message)
        info['state'] = 'invalid'
        return None
    facts = cert_facts(cert, now)
    facts['subject_alt_name'] = extension_values(cert)['sans']
    _set_facts(info, facts)
    if entry.get('private_key_path'):
        _check_key(info, cert, entry['private_key_path'])
    if entry.get('chain_path') or ca_path:
        _check_chain(info, cert, entry.get('chain_path'), ca_path, now)
    return cert


def _check_key(info, cert, key_path):
    from .fileio import read_bytes
    from .keys import keys_match, load_private_key
    try:
        data = read_bytes(key_path)
        if data is None:
            info['key_match'] = False
            info['key_match_reason'] = 'there is no private key at %s' % key_path
            return
        key = load_private_key(data, 'the private key %s' % key_path)
    except ESTError as exc:
        info['key_match_reason'] = exc.message  # unreadable here (an encrypted key, no permission): unknown, not false
        return
    info['key_match'] = keys_match(key, cert)
    if not info['key_match']:
        info['key_match_reason'] = 'the certificate does not match the private key %s' % key_path


def _load_certs(path, what):
    from .codecs import load_pem_certs
    from .fileio import read_bytes
    data = read_bytes(path)
    if data is None:
        raise ESTError('host_state', 'there is no %s at %s' % (what, path))
    return load_pem_certs(data, '%s %s' % (what, path))


def _check_chain(info, cert, chain_path, ca_path, now):
    """Path validation to ``ca_path`` (anchors) with the chain file's certificates, or to the chain file alone."""
    from .certinfo import not_after
    from .pathvalid import verify_issued
    try:
        chain = _load_certs(chain_path, 'chain file') if chain_path else []
        anchors = _load_certs(ca_path, 'ca_path file') if ca_path else chain
        # Checked at a moment inside the certificate's validity, so that an expired certificate is reported as
        # expired, and chain_ok says only whether it was issued by that CA (a CA certificate that expired fails).
        moment = min(now, not_after(cert) - datetime.timedelta(seconds=1))
        verify_issued(cert, chain, anchors, moment)
    except ESTError as exc:
        info['chain_ok'] = False
        info['chain_reason'] = exc.message
        return
    info['chain_ok'] = True


def _issuers(chain_path, ca_path):
    certs = []
    for path, what in ((chain_path, 'chain file'), (ca_path, 'ca_path file')):
        if path:
            try:
                certs.extend(_load_certs(path, what))
            except ESTError:
                continue  # already reported by the chain check; revocation says what it lacks itself
    return certs


def _check_revocation(info, cert, entry, ca_path, mode, timeout):
    """Ask :mod:`.revocation`; a failed check is reported as such, never read as "not revoked"."""
    try:
        from .revocation import status_for
    except ImportError:
        info['revocation_error'] = 'revocation checking is not available in this version of pki.est'
        return
    try:
        result = status_for(cert, _issuers(entry.get('chain_path'), ca_path), mode=mode, timeout=timeout)
    except ESTError as exc:
        info['revocation_error'] = '%s (%s)' % (exc.message, exc.kind)
        return
    except (OSError, ValueError, TypeError) as exc:
        info['revocation_error'] = 'unexpected %s: %s' % (type(exc).__name__, exc)
        return
    info['revocation'] = dict((key, result.get(key)) for key in ('status', 'reason', 'revocation_time', 'source'))


def _decide(info, window, now):
    """The state (worst applicable, see :data:`PRECEDENCE`), seconds left, the renewal time and the reasons."""
    applies = set()
    if info['state'] == 'invalid':
        applies.add('invalid')
    if info['not_after']:
        not_before, not_after = _utc(info['not_before']), _utc(info['not_after'])
        info['seconds_left'] = int((not_after - now).total_seconds())
        renew_at = _renew_at(not_before, not_after, window)
        info['renew_at'] = renew_at.strftime(_TIME)
        if not_after <= now:
            applies.add('expired')
            info['reasons'].append('the certificate expired at %s' % info['not_after'])
        elif not_before > now:
            applies.add('invalid')
            info['reasons'].append('the certificate is not valid before %s' % info['not_before'])
        elif now >= renew_at:
            applies.add('renewal_due')
            info['reasons'].append('inside the renewal window since %s' % info['renew_at'])
    elif info['state'] is None:
        applies.add('missing')
    if info['key_match'] is False:
        applies.add('invalid')
        info['reasons'].append(info['key_match_reason'])
    if info['chain_ok'] is False:
        applies.add('invalid')
        info['reasons'].append(info['chain_reason'])
    if info['pending'] is not None:
        applies.add('pending')
        info['reasons'].append(info['pending'].get('error') or 'a request is pending at the server since %s' % info['pending']['created'])
    if (info['revocation'] or {}).get('status') == 'revoked':
        applies.add('revoked')
        reason = info['revocation'].get('reason')
        info['reasons'].append('revoked at %s%s (%s)' % (info['revocation'].get('revocation_time'),
                                                         ', reason %s' % reason if reason else '', info['revocation'].get('source')))
    if info['revocation_error']:
        info['reasons'].append('revocation could not be checked: %s' % info['revocation_error'])
    info['state'] = next(state for state in PRECEDENCE if state in applies or state == 'valid')


def report(entries, ca_path=None, revocation='none', revocation_timeout=10, agent_state=None, now=None):
    """``{'certificates': [...], 'counts': {state: n}}`` for ``entries`` (see :func:`entries_from_paths`)."""
    if revocation not in REVOCATION_MODES:
        raise ESTError('invalid_input', 'revocation must be one of %s, got %r' % (', '.join(REVOCATION_MODES), revocation))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    certificates = [inspect_certificate(entry, ca_path, revocation, revocation_timeout, agent_state, now) for entry in entries]
    counts = dict((state, 0) for state in STATES)
    for info in certificates:
        counts[info['state']] += 1
    return {'certificates': certificates, 'counts': counts}
