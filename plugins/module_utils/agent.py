# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host-side renewal agent (``pki-est-agent``): keeps a host's certificates current without Ansible.

The ``est_renewal`` role installs this engine (the files of ``plugins/module_utils`` that do
not import Ansible) with a small entry script, writes a JSON config of the host's
certificates, and schedules the agent with a systemd timer or cron. Each run, for each
certificate:

- nothing due: the decision record the modules leave (:mod:`.statecache`) answers, without
  ``cryptography``, ``requests`` or the network;
- inside the renewal window: ``/simplereenroll`` over mutual TLS with the current
  certificate (RFC 7030 4.2.2), the same :class:`~.enroll.Enrollment` the modules run, so
  verification, the crash-safe swap (:mod:`.install`) and pending requests behave alike;
  then the certificate's post-renew commands;
- expired or missing: said plainly - an agent cannot bootstrap; the playbook must run again;
- with ``replace_revoked``: the CA is asked every run (OCSP or CRL, :mod:`.revocation`); a
  revoked certificate is replaced with a new key through ``/simpleenroll`` and the HTTP Basic
  credentials of the credentials file (a revoked certificate cannot authenticate a renewal).

One line per certificate and decision goes to stdout (failures to stderr), never a secret.
Exit codes: 0 all fine (a pending request included), 1 something failed, 2 the config is
unusable. ``--check`` decides and prints without changing anything; ``--force NAME`` renews
now (``--force-all``: every certificate). With ``metrics_path`` the agent writes a node_exporter textfile (atomically).

The config holds no secrets. Where a server also wants HTTP Basic for renewals, or a PKCS#12
passphrase is needed, they come from the credentials file (``credentials_path``, root-only).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import os
import sys

from .errors import ESTError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
CONFIG_VERSION = 1
DEFAULT_CONFIG = '/etc/pki-est-agent/config.json'
COMMAND_TIMEOUT = 300
# Seconds a renewal may wait for a busy (503, 429) or pending (202) server within one run (config key wait_timeout).
DEFAULT_WAIT_TIMEOUT = 300

# Per-certificate keys of the config; values as the est_enroll module takes them.
_CERT_KEYS = {
    'name': str, 'url': str, 'ca_label': str, 'ca_path': str, 'path': str, 'private_key_path': str,
    'chain_path': str, 'fullchain_path': str, 'pkcs12_path': str, 'intermediates_path': str,
    'common_name': str, 'subject': dict, 'subject_alt_name': list, 'key_usage': list, 'extended_key_usage': list,
    'key_type': str, 'renew_before': str, 'rekey': bool, 'owner': (str, int), 'group': (str, int),
    'mode': str, 'key_mode': str, 'post_renew': list, 'timeout': int, 'san_policy': str,
    'private_key_uri': str, 'pkcs11_module': str, 'replace_revoked': bool, 'wait_timeout': int,
}
_REQUIRED = ('name', 'url', 'path')
_TOP_KEYS = {'version': int, 'certificates': list, 'state_dir': str, 'metrics_path': str, 'credentials_path': str}


class ConfigError(Exception):
    """The config (or credentials) file cannot be used."""


def load_config(path):
    """The agent config as a dict, checked; :class:`ConfigError` naming what is wrong."""
    try:
        with open(path, 'r') as handle:
            config = json.load(handle)
    except (IOError, OSError) as exc:
        raise ConfigError('cannot read the config %s: %s' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise ConfigError('the config %s is not JSON: %s' % (path, exc))
    return check_config(config, path)


def check_config(config, path='the config'):
    """``config`` (a parsed document) when the agent can use it; :class:`ConfigError` naming what is wrong.

    The est_agent module checks the config it writes with this, so that the agent never meets one it refuses.
    """
    if not isinstance(config, dict):
        raise ConfigError('the config %s must be a JSON object' % path)
    _check_keys(config, _TOP_KEYS, 'the config')
    if config.get('version', CONFIG_VERSION) != CONFIG_VERSION:
        raise ConfigError('the config %s is version %r; this agent reads version %d' % (path, config.get('version'), CONFIG_VERSION))
    names = set()
    for index, entry in enumerate(config.get('certificates') or []):
        where = 'certificates[%d]' % index
        if not isinstance(entry, dict):
            raise ConfigError('%s must be an object' % where)
        _check_keys(entry, _CERT_KEYS, where)
        for key in _REQUIRED:
            if not entry.get(key):
                raise ConfigError('%s has no %s' % (where, key))
        if bool(entry.get('private_key_path')) == bool(entry.get('private_key_uri')):
            raise ConfigError('%s needs private_key_path (a key file) or private_key_uri (a key in a PKCS#11 token), '
                              'one of them' % where)
        if entry['name'] in names:
            raise ConfigError('%s: the name %r is used twice' % (where, entry['name']))
        names.add(entry['name'])
        for command in entry.get('post_renew') or []:
            if not (isinstance(command, list) and command and all(isinstance(arg, str) for arg in command)):
                raise ConfigError('%s: post_renew holds argument lists such as ["systemctl", "reload", "nginx"], got %r'
                                  % (where, command))
    return config


def _check_keys(document, allowed, where):
    for key, value in document.items():
        if key not in allowed:
            raise ConfigError('%s has an unknown key %r (known: %s)' % (where, key, ', '.join(sorted(allowed))))
        if value is not None and not isinstance(value, allowed[key]):
            raise ConfigError('%s: %s must be %s, got %r' % (where, key, _type_name(allowed[key]), value))


def _type_name(kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return ' or '.join({str: 'a string', int: 'a number', bool: 'true or false', dict: 'an object', list: 'a list'}[k]
                       for k in kinds)


def load_credentials(path):
    """``{certificate name or "*": {"username", "password", "pkcs12_passphrase"}}`` from a root-only file."""
    if not path:
        return {}
    try:
        info = os.stat(path)
        with open(path, 'r') as handle:
            credentials = json.load(handle)
    except (IOError, OSError) as exc:
        raise ConfigError('cannot read the credentials %s: %s' % (path, exc.strerror or exc))
    except ValueError:
        raise ConfigError('the credentials %s are not JSON' % path)  # no detail: it may quote a secret
    if info.st_mode & 0o077:
        raise ConfigError('the credentials %s may be read by others (mode %04o); make it 0600'
                          % (path, info.st_mode & 0o7777))
    if not isinstance(credentials, dict) or not all(isinstance(v, dict) for v in credentials.values()):
        raise ConfigError('the credentials %s must map certificate names (or "*") to objects' % path)
    return credentials


class Outcome:
    """What happened to one certificate in one run."""

    def __init__(self, name, status, message, not_after=None, changed=False):
        self.name = name
        self.status = status          # ok, renewed, pending, due, failed
        self.message = message
        self.not_after = not_after    # datetime or None
        self.changed = changed
        self.waits = None             # {'waited_seconds', 'retries'} when the run talked to the server

    @property
    def failed(self):
        return self.status == 'failed'

    def line(self):
        waits = ''
        if self.waits and self.waits['retries']:
            waits = ' (the server was busy or pending: waited %s s over %d retries)' % (self.waits['waited_seconds'], self.waits['retries'])
        return '%s: %s: %s%s' % (self.name, self.status, self.message, waits)


def _utc(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)


def _mode(value, default):
    if value is None or value == '':
        return default
    return int(str(value), 8)


def _ids(owner, group):
    uid = gid = -1
    if owner not in (None, ''):
        if isinstance(owner, int) or str(owner).isdigit():
            uid = int(owner)
        else:
            import pwd
            uid = pwd.getpwnam(owner).pw_uid
    if group not in (None, ''):
        if isinstance(group, int) or str(group).isdigit():
            gid = int(group)
        else:
            import grp
            gid = grp.getgrnam(group).gr_gid
    return uid, gid


class AgentFiles:
    """The engine's file interface for the agent: atomic writes with the configured owner and group."""

    def __init__(self, uid=-1, gid=-1):
        self.uid = uid
        self.gid = gid
        self.changed = False

    def write(self, path, data, mode=None, secret=False, bookkeeping=False):  # pylint: disable=unused-argument
        from .fileio import atomic_write, read_bytes
        if isinstance(data, str):
            data = data.encode('utf-8')
        if read_bytes(path) == data:
            return
        pending = path.endswith(('.pending.json', '.pending.key', '.pending.pem'))
        if pending:
            atomic_write(path, data, mode)  # work files stay root's
        else:
            atomic_write(path, data, mode, self.uid, self.gid)
        if not bookkeeping:
            self.changed = True

    def remove(self, path):
        from .fileio import remove_file
        if remove_file(path):
            self.changed = True


class CertificateJob:
    """One configured certificate."""

    def __init__(self, entry, credentials):
        self.entry = entry
        self.name = entry['name']
        mine = credentials.get(self.name) or credentials.get('*') or {}
        self.username = mine.get('username')
        self.password = mine.get('password')
        self.pkcs12_passphrase = mine.get('pkcs12_passphrase')
        self.pin = mine.get('pin')

    def wanted(self):
        from .hoststate import wanted_from
        return wanted_from(self.entry)

    def quick_look(self):
        """The decision record's facts when nothing is due and nothing changed (no X.509 parsing), else None."""
        from .statecache import unchanged
        entry = self.entry
        if entry.get('private_key_uri'):
            return None  # a key in a token is compared with the certificate on every run (the record knows files only)
        if entry.get('replace_revoked'):
            return None  # the record cannot know about a revocation: the CA is asked on every run
        return unchanged(entry['path'], entry['private_key_path'], entry.get('chain_path'), self.wanted(),
                         (entry.get('fullchain_path'), entry.get('pkcs12_path')))

    def enrollment(self, force=False, external_keys=None):
        from .enroll import Enrollment, Options
        entry = self.entry
        options = Options(
            cert_path=entry['path'], key_path=entry.get('private_key_path'), chain_path=entry.get('chain_path'),
            fullchain_path=entry.get('fullchain_path'), intermediates_path=entry.get('intermediates_path'),
            wanted=self.wanted(), key_type=entry.get('key_type'), rekey=bool(entry.get('rekey')), force=force,
            # A key in a token that cannot be a TLS client key here (not a TPM, see tpmtls) renews with
            # /simpleenroll and HTTP Basic.
            reenroll='never' if external_keys is not None and external_keys.tls_key is None else 'auto', renew_only=True,
            san_policy=entry.get('san_policy') or 'fail', external_keys=external_keys,
            key_mode=_mode(entry.get('key_mode'), 0o600), cert_mode=_mode(entry.get('mode'), None),
            pkcs12_path=entry.get('pkcs12_path'), pkcs12_passphrase=self.pkcs12_passphrase,
            wait_timeout=entry.get('wait_timeout', DEFAULT_WAIT_TIMEOUT),
            replace_revoked=bool(entry.get('replace_revoked')), revocation_timeout=entry.get('timeout') or 30,
        )
        connection = dict(url=entry['url'], ca_label=entry.get('ca_label'), ca_path=entry.get('ca_path'),
                          username=self.username, password=self.password, client_cert_path=None, client_key_path=None,
                          timeout=entry.get('timeout') or 30)
        files = AgentFiles(*_ids(entry.get('owner'), entry.get('group')))
        return Enrollment(options, connection, files=files), files

    def run(self, check=False, force=False):
        """The :class:`Outcome` of this certificate's run."""
        if not force:
            facts = self.quick_look()
            if facts is not None:
                return Outcome(self.name, 'ok', 'nothing to do: %s, valid until %s' % (facts.get('subject'), facts.get('not_after')),
                               _utc(facts['not_after']))
        import contextlib
        job = None
        try:
            with contextlib.ExitStack() as stack:
                job, files = self.enrollment(force=force, external_keys=self._token_keys(stack))
                action, reasons = job.plan()
                if check:
                    return self._checked(job, action, reasons)
                result = job.run()
            outcome = self._after(job, result, files)
        except ESTError as exc:
            outcome = self._failed(exc)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            outcome = Outcome(self.name, 'failed', 'unexpected %s: %s' % (type(exc).__name__, exc))
        if job is not None:
            outcome.waits = job.waiter.facts()
        return outcome

    def _token_keys(self, stack):
        """The :class:`~.tokenkeys.TokenKeyStore` of an entry whose key is in a token (open while the job runs), or None."""
        uri = self.entry.get('private_key_uri')
        if not uri:
            return None
        from . import tokenkeys
        ref = tokenkeys.TokenRef.from_params(uri=uri, pkcs11_module=self.entry.get('pkcs11_module'), pin=self.pin)
        from .tpmtls import attach_client_key
        session = stack.enter_context(tokenkeys.session(ref, rw=True))
        store = tokenkeys.TokenKeyStore(session, ref)
        attach_client_key(store, stack)
        return store

    def _checked(self, job, action, reasons):
        facts = job._result(False, action, job.state.cert) if job.state is not None else dict(job.cached_facts or {})  # pylint: disable=protected-access
        until = facts.get('not_after')
        if action == 'none':
            return Outcome(self.name, 'ok', 'nothing to do: %s, valid until %s' % (facts.get('subject'), until),
                           _utc(until) if until else None)
        return Outcome(self.name, 'due', 'would %s: %s' % ({'reenroll': 'renew'}.get(action, action), '; '.join(reasons)),
                       _utc(until) if until else None)

    def _failed(self, exc):
        if exc.kind == 'host_state' and 'no valid certificate to renew' in exc.message:
            return Outcome(self.name, 'failed', '%s; a renewal agent cannot enroll from scratch: run the playbook for this host'
                           % exc.message)
        return Outcome(self.name, 'failed', '%s (%s)' % (exc.message, exc.kind))

    def _after(self, job, result, files):
        until = result.get('not_after')
        not_after = _utc(until) if until else None
        if result.get('pending'):
            return Outcome(self.name, 'pending', 'the server holds the renewal request (retry after %s s); the next run asks again'
                           % result.get('retry_after'), not_after, files.changed)
        if result['action'] == 'none':
            return Outcome(self.name, 'ok', 'nothing to do: %s, valid until %s' % (result.get('subject'), until), not_after)
        words = {'renewed': '', 'rekeyed': 'with a new key: ', 'recovered': 'finished an interrupted renewal: ',
                 'cleaned': 'removed what an interrupted run left: ', 'completed': 'wrote missing chain files: '}
        prefix = words.get(result['action'], result['action'] + ': ')
        if (result.get('revocation') or {}).get('status') == 'revoked':
            prefix = 'replaced the revoked certificate (%s) %s' % (result['revocation']['reason'], prefix)
        message = '%s%s, serial %s, valid until %s' % (prefix, result.get('subject'), result.get('serial'), until)
        for warning in job.warnings:
            message += '; warning: %s' % warning
        failures = run_commands(self.entry.get('post_renew') or []) if files.changed else []
        if failures:
            return Outcome(self.name, 'failed', message + '; post-renew: ' + '; '.join(failures), not_after, True)
        return Outcome(self.name, 'renewed' if files.changed else 'ok', message, not_after, files.changed)


def run_commands(commands, timeout=COMMAND_TIMEOUT):
    """Run each argument list; the failures in words (empty when all succeeded)."""
    import subprocess
    failures = []
    for argv in commands:
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            failures.append('%s could not run: %s' % (' '.join(argv), exc))
            continue
        if proc.returncode != 0:
            tail = proc.stdout.decode('utf-8', 'replace').strip().splitlines()[-1:] or ['']
            failures.append('%s exited %d %s' % (' '.join(argv), proc.returncode, tail[0][:200]))
    return failures


# -- state across runs and metrics -------------------------------------------------------------------------

def _state_path(config):
    return os.path.join(config.get('state_dir') or '/var/lib/pki-est-agent', 'state.json')


def load_state(config):
    try:
        with open(_state_path(config), 'r') as handle:
            state = json.load(handle)
        return state if isinstance(state, dict) else {}
    except (IOError, OSError, ValueError):
        return {}


def save_state(config, state):
    from .fileio import atomic_write
    directory = os.path.dirname(_state_path(config))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    atomic_write(_state_path(config), json.dumps(state, indent=2, sort_keys=True) + '\n', 0o644)


def update_state(state, outcomes, now):
    """Remember per certificate: the last result, the last successful check, failures in a row."""
    stamp = now.strftime('%Y-%m-%dT%H:%M:%SZ')
    for outcome in outcomes:
        entry = state.setdefault(outcome.name, {})
        entry['last_run'] = stamp
        entry['last_status'] = outcome.status
        entry['last_message'] = outcome.message
        if outcome.waits is not None:
            entry['last_waited_seconds'] = outcome.waits['waited_seconds']
            entry['last_retries'] = outcome.waits['retries']
        if outcome.not_after is not None:
            entry['not_after'] = outcome.not_after.strftime('%Y-%m-%dT%H:%M:%SZ')
        if outcome.failed:
            entry['failures'] = int(entry.get('failures', 0)) + 1
        else:
            entry['failures'] = 0
            entry['last_success'] = stamp
    return state


def metrics_text(state, names, now):
    """The node_exporter textfile for ``names``, from ``state``."""
    def label(name):
        return name.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
    lines = [
        '# HELP pki_est_certificate_expiry_seconds Seconds until the certificate expires (negative: expired).',
        '# TYPE pki_est_certificate_expiry_seconds gauge',
    ]
    for name in names:
        until = (state.get(name) or {}).get('not_after')
        if until:
            lines.append('pki_est_certificate_expiry_seconds{name="%s"} %d' % (label(name), int((_utc(until) - now).total_seconds())))
    lines += ['# HELP pki_est_last_success_timestamp_seconds When the certificate was last checked or renewed without error.',
              '# TYPE pki_est_last_success_timestamp_seconds gauge']
    for name in names:
        success = (state.get(name) or {}).get('last_success')
        if success:
            lines.append('pki_est_last_success_timestamp_seconds{name="%s"} %d' % (label(name), int(_utc(success).timestamp())))
    lines += ['# HELP pki_est_failures_in_a_row Runs in a row that failed for the certificate.',
              '# TYPE pki_est_failures_in_a_row gauge']
    for name in names:
        lines.append('pki_est_failures_in_a_row{name="%s"} %d' % (label(name), int((state.get(name) or {}).get('failures', 0))))
    return '\n'.join(lines) + '\n'


# -- the command ---------------------------------------------------------------------------------------------

def _parser():
    import argparse
    parser = argparse.ArgumentParser(prog='pki-est-agent', description='Renew EST certificates on this host (RFC 7030).')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='the JSON config (default %(default)s)')
    parser.add_argument('--check', action='store_true', help='decide and print, change nothing')
    parser.add_argument('--force', action='append', default=[], metavar='NAME', help='renew NAME now (may be repeated)')
    parser.add_argument('--force-all', action='store_true', help='renew every certificate now')
    return parser


def main(argv=None, out=None, err=None, now=None):
    """Run once; the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        credentials = load_credentials(config.get('credentials_path'))
        unknown = sorted(set(args.force) - set(entry['name'] for entry in config.get('certificates') or []))
        if unknown:
            raise ConfigError('--force names no configured certificate: %s' % ', '.join(unknown))
    except ConfigError as exc:
        err.write('pki-est-agent: config error: %s\n' % exc)
        return EXIT_CONFIG
    outcomes = []
    for entry in config.get('certificates') or []:
        job = CertificateJob(entry, credentials)
        outcome = job.run(check=args.check, force=args.force_all or entry['name'] in args.force)
        outcomes.append(outcome)
        (err if outcome.failed else out).write(outcome.line() + '\n')
    if not args.check:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        state = update_state(load_state(config), outcomes, now)
        try:
            save_state(config, state)
            if config.get('metrics_path'):
                from .fileio import atomic_write
                atomic_write(config['metrics_path'], metrics_text(state, [o.name for o in outcomes], now), 0o644)
        except (OSError, ValueError, ESTError) as exc:
            err.write('pki-est-agent: cannot write the state or metrics: %s\n' % exc)
            return EXIT_FAILED
    return EXIT_FAILED if any(o.failed for o in outcomes) else EXIT_OK


if __name__ == '__main__':  # pragma: no cover - the installed entry script calls main()
    raise SystemExit(main())
