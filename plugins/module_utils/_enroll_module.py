# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue shared by the enrollment modules (est_enroll, est_reenroll, est_serverkeygen, est_fullcmc).

Builds their AnsibleModule from the shared option sets, turns the parameters into an
:class:`~.enroll.Enrollment`, runs it with check mode, diff and backup, and returns the
facts. The protocol and the decisions stay in the engine.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from .errors import ESTError
from ._module import (
    CONNECTION_REQUIRED_BY, CONNECTION_REQUIRED_TOGETHER, FileWriter, check_readable, connection_argument_spec,
    connection_kwargs, fail, require_libraries, unexpected,
)
from .keys import KEY_TYPES

# What check mode reports for each planned action.
CHECK_MODE_ACTIONS = {'enroll': 'enroll', 'reenroll': 'renew', 'resume': 'resume', 'complete': 'complete',
                      'recover': 'recover', 'clean': 'clean'}

# What the certificate should say, for the modules that make a request from scratch.
SUBJECT_ARGUMENT_SPEC = dict(
    common_name=dict(type='str'),
    subject=dict(type='dict'),
    subject_alt_name=dict(type='list', elements='str'),
    key_usage=dict(type='list', elements='str'),
    extended_key_usage=dict(type='list', elements='str'),
)

# Options every enrollment module has besides the connection options.
ENROLLMENT_ARGUMENT_SPEC = dict(
    path=dict(type='path'),
    private_key_path=dict(type='path', no_log=False),
    chain_path=dict(type='path'),
    fullchain_path=dict(type='path'),
    intermediates_path=dict(type='path'),
    key_type=dict(type='str', choices=list(KEY_TYPES)),
    renew_before=dict(type='str', default='33%'),
    force=dict(type='bool', default=False),
    backup=dict(type='bool', default=False),
    wait_timeout=dict(type='int', default=0),
    san_policy=dict(type='str', default='fail', choices=['fail', 'warn']),
    private_key_mode=dict(type='raw', default='0600', no_log=False),
    pkcs12_path=dict(type='path'),
    pkcs12_passphrase=dict(type='str', no_log=True),
)

# A key in a PKCS#11 token (or a TPM through tpm2-pkcs11) instead of private_key_path; doc fragment pki.est.token_key.
TOKEN_KEY_ARGUMENT_SPEC = dict(
    private_key_uri=dict(type='str', no_log=False),
    pkcs11_module=dict(type='path'),
    pin=dict(type='str', no_log=True),
)


def common_options(module, wanted=None, **extra):
    """The :class:`~.enroll.Options` keyword arguments every enrollment module shares."""
    params = module.params
    options = dict(
        cert_path=params['path'], key_path=params['private_key_path'], chain_path=params['chain_path'],
        fullchain_path=params['fullchain_path'], intermediates_path=params['intermediates_path'],
        wanted=wanted or wanted_from_params(params), key_type=params['key_type'],
        force=params['force'], san_policy=params['san_policy'], wait_timeout=params['wait_timeout'],
        key_mode=octal_mode(module, params['private_key_mode'], 'private_key_mode'),
        pkcs12_path=params['pkcs12_path'], pkcs12_passphrase=params['pkcs12_passphrase'],
    )
    options.update(extra)
    return options


class AnsibleFiles:
    """The engine's file interface on top of :class:`FileWriter` (check mode, backup, owner/group/mode)."""

    def __init__(self, module, writer, backup):
        self.module = module
        self.writer = writer
        self.backup = backup

    def write(self, path, data, mode=None, secret=False, bookkeeping=False):
        if bookkeeping:
            # The decision record is not a result of the task: it never makes it "changed".
            self.writer.write(path, data, mode=mode, diff=False, file_args=False, mode_param=False, quiet=True)
            return
        pending = path.endswith(('.pending.json', '.pending.key', '.pending.pem'))
        self.writer.write(path, data, mode=mode, backup=self.backup and not pending, diff=False,
                          file_args=not pending, mode_param=not secret and not pending)

    def remove(self, path):
        self.writer.remove(path)


def enrollment_module(extra_spec=None, subject=True, require_pair=True, **module_kwargs):
    """The AnsibleModule of an enrollment module: connection, enrollment (and subject) options plus its own.

    ``require_pair`` fails early unless O(path) and O(private_key_path) are set.
    """
    spec = connection_argument_spec(**ENROLLMENT_ARGUMENT_SPEC)
    if subject:
        spec.update(SUBJECT_ARGUMENT_SPEC)
    spec.update(extra_spec or {})
    module_kwargs['required_together'] = CONNECTION_REQUIRED_TOGETHER + list(module_kwargs.get('required_together', []))
    module = AnsibleModule(argument_spec=spec, required_by=CONNECTION_REQUIRED_BY, add_file_common_args=True,
                           supports_check_mode=True, **module_kwargs)
    if require_pair:
        # A key in a token (private_key_uri, where the module takes it) stands in for the key file.
        missing = [name for name in ('path', 'private_key_path') if not module.params[name]
                   and not (name == 'private_key_path' and module.params.get('private_key_uri'))]
        if missing:
            module.fail_json(msg='missing required arguments: %s' % ', '.join(missing), error_kind='invalid_input')
    return module


def run_module(module, readable=(), wanted=None, **option_kwargs):
    """Check the input files, build the job's options, run it and exit the module."""
    check_readable(module, 'ca_path', 'client_cert_path', 'client_key_path', 'intermediates_path', *readable)
    try:
        kwargs = common_options(module, wanted=wanted, **option_kwargs)
    except ESTError as exc:
        fail(module, exc)
    from .enroll import Options
    if module.params.get('private_key_uri'):
        _run_with_token_key(module, kwargs)
    _exit_if_unchanged(module, kwargs)
    run_enrollment(module, Options(**kwargs))


def _run_with_token_key(module, kwargs):
    """Enroll with the key ``private_key_uri`` names in a PKCS#11 token: signed there, never written anywhere.

    A missing key, a rekey or another key type makes a new key in the token under ``<label>.pending``,
    which takes the label (the old key is destroyed) only once its certificate verified
    (:class:`~.tokenkeys.TokenKeyStore`). Renewal is ``/simplereenroll`` over mutual TLS with the current
    certificate when the key is in a TPM this host can present in TLS (:mod:`.tpmtls`); with any other
    token it is ``/simpleenroll`` with HTTP Basic (est_enroll), or an error (est_reenroll, which renews
    over mutual TLS only). See docs/hardware-keys.md.
    """
    import contextlib
    from .enroll import Options
    from . import tokenkeys, tpmtls
    params = module.params
    for name in ('pkcs12_path', 'client_key_path'):
        if params.get(name):
            module.fail_json(msg='%s cannot be used with private_key_uri: the key does not leave the token' % name,
                             error_kind='invalid_input')
    try:
        ref = tokenkeys.TokenRef.from_params(uri=params['private_key_uri'], pkcs11_module=params.get('pkcs11_module'),
                                             pin=params.get('pin'))
        with tokenkeys.session(ref, rw=True) as session, contextlib.ExitStack() as stack:
            store = tokenkeys.TokenKeyStore(session, ref)
            if kwargs.get('reenroll', 'auto') != 'never' and not kwargs.get('fullcmc'):
                reason = tpmtls.attach_client_key(store, stack)
                if reason is not None:
                    if kwargs.get('renew_only'):
                        raise ESTError('not_supported', 'this module renews over mutual TLS, and %s; renew with '
                                                        'pki.est.est_enroll and username/password instead' % reason)
                    kwargs['reenroll'] = 'never'
            kwargs.update(key_path=None, external_keys=store)
            run_enrollment(module, Options(**kwargs))  # exits the module, inside the session
    except ESTError as exc:
        fail(module, exc)


def _exit_if_unchanged(module, kwargs):
    """The idempotent run: the decision record says nothing changed and nothing is due (see statecache).

    Answered before the enrollment engine is even loaded, so the run costs little more than
    Ansible's own start-up.
    """
    if kwargs.get('force') or kwargs.get('replace_revoked') or kwargs.get('external_csr') is not None or not kwargs.get('cert_path'):
        return
    from .statecache import unchanged
    facts = unchanged(kwargs['cert_path'], kwargs['key_path'], kwargs['chain_path'], kwargs['wanted'],
                      (kwargs['fullchain_path'], kwargs['pkcs12_path']))
    if facts is not None:
        module.exit_json(changed=False, action='none', reasons=[], pending=False, requests_made=0, waited_seconds=0.0, retries=0,
                         **facts)


def octal_mode(module, value, name):
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        module.fail_json(msg='%s must be an octal mode such as 0600, got %r' % (name, value), error_kind='invalid_input')


def wanted_from_params(params):
    """The :class:`~.hoststate.Wanted` description from user options (see :func:`.hoststate.wanted_from`)."""
    from .hoststate import wanted_from
    return wanted_from(params)


def _cert_summary(facts):
    keys = ('subject', 'subject_alt_name', 'issuer', 'serial', 'not_before', 'not_after', 'sha256_fingerprint')
    return ''.join('%s: %s\n' % (k, facts[k]) for k in keys if k in facts)


def run_enrollment(module, options):
    """Plan, honour check mode, run, and exit the module with the result."""
    from .certinfo import cert_facts
    from .csr import extension_values
    from .enroll import Enrollment
    require_libraries(module, network=False)
    # Missing directories of the output files are made when the first file goes there (see FileWriter).
    writer = FileWriter(module, make_dirs=True)
    job = Enrollment(options, connection_kwargs(module.params), files=AnsibleFiles(module, writer, module.params.get('backup')))
    try:
        action, reasons = job.plan()
        before = dict(job.cached_facts or {})
        if job.state is not None and job.state.cert is not None:
            before = cert_facts(job.state.cert)
            before['subject_alt_name'] = extension_values(job.state.cert)['sans']
        if action == 'none':
            result = job.run()
        elif module.check_mode:
            result = dict(changed=True, action=CHECK_MODE_ACTIONS.get(action, action), reasons=reasons, pending=False)
            result.update(before)
        else:
            require_libraries(module, network=True)
            result = job.run()
    except ESTError as exc:
        fail(module, exc, changed=writer.changed, requests_made=job.requests_made, **job.waiter.facts())
    except (OSError, ValueError, TypeError) as exc:  # a host or library condition the engine did not foresee
        unexpected(module, exc, changed=writer.changed, requests_made=job.requests_made, **job.waiter.facts())
    for warning in job.warnings:
        module.warn(warning)
    result['requests_made'] = job.requests_made
    result.update(job.waiter.facts())  # time spent waiting for a pending or busy server (see waiting.py)
    result['changed'] = bool(result['changed'] or writer.changed)
    if writer.backup_files:
        result['backup_files'] = writer.backup_files
    if module._diff and result['changed']:
        after = result if result.get('action') not in ('pending',) and not module.check_mode else {}
        result['diff'] = {'before': _cert_summary(before),
                          'after': _cert_summary(after) if after else '(%s: %s)\n' % (result['action'], '; '.join(reasons))}
    module.exit_json(**result)
