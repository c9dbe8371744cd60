# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simple enrollment and re-enrollment (RFC 7030 §4.2) from request to installed files.

:func:`request_certificate` POSTs a CSR and polls while the server answers 202 (within a
time budget); :func:`select_and_verify` picks the issued certificate by its public key and
checks it before anything is installed; :class:`Enrollment` runs the whole job against the
host state and a small file interface, so the same code serves the modules (through
Ansible's file handling) and the host-side renewal agent (through :mod:`.fileio`).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import time

from . import codecs
from .errors import ESTError, ESTPending
from .waiting import Waiter


def post_with_polling(transport, operation, csr_der, wait_timeout=0, sleep=time.sleep, clock=time.monotonic, send=None,
                      waiter=None):
    """POST the CSR to ``operation`` and return the first non-202 answer.

    While the server answers 202 and the time budget lasts, wait for its ``Retry-After`` (or 5 s)
    and send the same request again; then raise the last :class:`ESTPending`. The budget is
    ``waiter``'s (a job's :class:`~.waiting.Waiter`, whose transports also retry busy answers
    within it), else ``wait_timeout`` seconds from now. ``send()``, when given, sends the request
    instead (a linked request builds its CSR anew for each connection, see :mod:`.linking`).
    """
    waiter = waiter or Waiter(wait_timeout, sleep, clock)
    waiter.begin()
    while True:
        try:
            if send is not None:
                return send()
            return transport.post(operation, csr_der, codecs.PKCS10_MEDIA_TYPE)
        except ESTPending as pending:
            waiter.pause(pending)


def request_certificate(transport, operation, csr_der, wait_timeout=0, sleep=time.sleep, clock=time.monotonic, send=None,
                        waiter=None):
    """POST the CSR (polling while pending, see :func:`post_with_polling`); the answer's certificates."""
    response = post_with_polling(transport, operation, csr_der, wait_timeout, sleep, clock, send, waiter)
    if response.status == 204 or not response.body:
        raise ESTError('bad_response', 'the server answered %s with HTTP %d and no certificate' % (operation, response.status))
    if not codecs.media_type_is(response.content_type, codecs.PKCS7_MEDIA_TYPES):
        raise ESTError('unexpected_content_type', 'the %s answer has Content-Type %r, expected application/pkcs7-mime'
                       % (operation, response.content_type))
    return codecs.load_certs_only(codecs.decode_body(response.body, operation), '%s answer' % operation)


class Trust:
    """What an issued certificate is validated with: explicit ``anchors`` and a ``pool`` of validated CA certificates."""

    def __init__(self, anchors, pool=()):
        self.anchors = list(anchors)
        self.pool = list(pool)


def validated_chain(cert, pool, anchors, now=None, hint=True):
    """The chain of ``cert`` (issuers, nearest first, up to the anchor), after RFC 5280 path validation."""
    from .pathvalid import verify_issued
    try:
        return verify_issued(cert, pool, anchors, now)
    except ESTError as exc:
        if hint:
            exc.message += '; if the server leaves its issuing CA out of /cacerts, give it in intermediates_path'
            exc.args = (exc.message,)
        raise


def select_and_verify(certs, public_key, anchors, wanted_sans=None, san_policy='fail', now=None, intermediates=(), hint=True):
    """``(cert, chain, warnings)``: the issued certificate for ``public_key``, checked.

    The certificate is found by its key, never by position. It must pass RFC 5280 path
    validation to one of ``anchors`` (the pinned or stored CA certificates, or the roots of a
    verified /cacerts answer) through the certificates of the answer and ``intermediates``
    (validated /cacerts extras, the operator's ``intermediates_path``), be valid now, and hold
    the wanted SANs (``san_policy`` ``fail`` or ``warn``).
    """
    from .certinfo import not_after, not_before
    from .csr import extension_values
    cert = codecs.find_certificate_for_key(certs, public_key)
    if cert is None:
        raise ESTError('verification', 'the server returned %d certificate(s), none for the key of this request '
                       '(subjects: %s)' % (len(certs), '; '.join(c.subject.rfc4514_string() for c in certs)))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if not_after(cert) <= now:
        raise ESTError('verification', 'the issued certificate expired at %s' % not_after(cert).isoformat())
    # Validated as of a moment inside its validity: a CA's clock running a little ahead must not refuse it here.
    moment = max(now, not_before(cert))
    chain = validated_chain(cert, [c for c in certs if c is not cert] + list(intermediates), anchors, moment, hint)
    warnings = []
    if not_before(cert) > now + datetime.timedelta(minutes=5):
        warnings.append('the issued certificate is not valid before %s' % not_before(cert).isoformat())
    missing = sorted(set(wanted_sans or []) - set(extension_values(cert)['sans']))
    if missing:
        message = 'the issued certificate lacks the requested subjectAltName %s' % ', '.join(missing)
        if san_policy == 'fail':
            raise ESTError('verification', message + ' (san_policy=warn installs it anyway)',
                           details={'missing_subject_alt_name': missing})
        warnings.append(message)
    return cert, chain, warnings


class _Reposted:
    """A transport whose ``post`` always sends one content type (full CMC reuses the polling loop)."""

    def __init__(self, transport, content_type):
        self.transport = transport
        self.content_type = content_type

    def post(self, operation, der, _content_type=None):
        return self.transport.post(operation, der, self.content_type)


class Files:
    """How :class:`Enrollment` touches the host. The default writes with :mod:`.fileio`."""

    def write(self, path, data, mode=None, secret=False, bookkeeping=False):  # pylint: disable=unused-argument
        """Replace ``path``. ``secret`` marks key material; ``bookkeeping`` files are not results."""
        from .fileio import atomic_write
        atomic_write(path, data, mode)

    def remove(self, path):
        from .fileio import remove_file
        remove_file(path)


class Options:
    """What an enrollment job is asked to do (plain values, validated by the caller)."""

    def __init__(self, cert_path=None, key_path=None, chain_path=None, fullchain_path=None, wanted=None, intermediates_path=None,
                 key_type=None, rekey=False, force=False, reenroll='auto', invalid_certificate='fail',
                 san_policy='fail', wait_timeout=0, key_mode=0o600, cert_mode=None, challenge_password=None,
                 external_csr=None, renew_only=False, csr_attributes='ignore', server_keygen=False,
                 decrypt_cert_path=None, decrypt_key_path=None, pkcs12_path=None, pkcs12_passphrase=None,
                 fullcmc=False, ra_cert_path=None, ra_key_path=None, identification=None, extra_csrs=(),
                 cmc_response_check='strict', csr_attributes_unmet='fail', pop_linking='auto', external_keys=None,
                 replace_revoked=False, revocation_timeout=10):
        from .hoststate import Wanted
        self.cert_path = cert_path
        self.key_path = key_path
        self.chain_path = chain_path
        self.fullchain_path = fullchain_path
        self.intermediates_path = intermediates_path
        self.wanted = wanted or Wanted()
        self.key_type = key_type
        self.rekey = rekey
        self.force = force
        self.reenroll = reenroll
        self.invalid_certificate = invalid_certificate
        self.san_policy = san_policy
        self.wait_timeout = wait_timeout
        self.key_mode = key_mode
        self.cert_mode = cert_mode
        self.challenge_password = challenge_password
        self.external_csr = external_csr
        self.renew_only = renew_only
        self.csr_attributes = csr_attributes
        self.server_keygen = server_keygen
        self.decrypt_cert_path = decrypt_cert_path
        self.decrypt_key_path = decrypt_key_path
        self.pkcs12_path = pkcs12_path
        self.pkcs12_passphrase = pkcs12_passphrase
        self.fullcmc = fullcmc
        self.ra_cert_path = ra_cert_path
        self.ra_key_path = ra_key_path
        self.identification = identification
        self.extra_csrs = list(extra_csrs)
        self.cmc_response_check = cmc_response_check
        self.csr_attributes_unmet = csr_attributes_unmet
        self.pop_linking = pop_linking
        # A :class:`~.tokenkeys.TokenKeyStore` (the key in a PKCS#11 token) instead of the key file ``key_path``.
        self.external_keys = external_keys
        # Check the current certificate's revocation status when nothing else is due (see Enrollment._check_revoked).
        self.replace_revoked = replace_revoked
        self.revocation_timeout = revocation_timeout


class Enrollment:
    """One host's enrollment job: plan without the network, then run."""

    def __init__(self, options, connection, files=None, transport_factory=None, sleep=time.sleep, clock=time.monotonic, rng=None):
        self.options = options
        self.connection = dict(connection)
        self.files = files or Files()
        # requests costs about 0.1 s to import: only a run that talks to the server pays for it.
        self.transport_factory = transport_factory
        # Every wait of the job (202 polls, busy retries of any request) comes out of one wait_timeout.
        self.waiter = Waiter(options.wait_timeout, sleep, clock, rng)
        self.state = None
        self.action = None
        self.reasons = []
        self.warnings = []
        self.requests_made = 0
        self.cached_facts = None
        self._transports = {}
        self.extra_certificates = []
        self.cmc_query = None  # (pendToken, transactionId) of a CMC request the server holds
        self.revocation = None  # the answer of revocation.status_for when replace_revoked checked it

    # -- planning (no network) -------------------------------------------------------------
    def plan(self):
        """``(action, reasons)`` with action ``none``, ``enroll``, ``reenroll`` or ``resume``."""
        from . import hoststate
        opts = self.options
        if opts.external_csr is not None:
            self.state = hoststate.inspect(opts.cert_path, None) if opts.cert_path else hoststate.HostState()
            self.action, self.reasons = self._plan_external()
            return self.action, self.reasons
        if not opts.force and opts.external_keys is None and not opts.replace_revoked:
            # A token key is compared with the certificate on every run: the record knows only files.
            # replace_revoked asks the CA on every run: the record cannot know about a revocation.
            from . import statecache
            self.cached_facts = statecache.unchanged(opts.cert_path, opts.key_path, opts.chain_path, opts.wanted,
                                                     (opts.fullchain_path, opts.pkcs12_path))
            if self.cached_facts is not None:
                self.action, self.reasons = 'none', []
                return self.action, self.reasons
        return self._plan_from_disk()

    def _plan_from_disk(self):
        """Plan from the key, certificate and pending files as they are now."""
        from . import hoststate
        opts = self.options
        self.state = hoststate.inspect(opts.cert_path, opts.key_path, opts.chain_path, (opts.fullchain_path, opts.pkcs12_path),
                                       external_keys=opts.external_keys)
        self.action, self.reasons = hoststate.decide(self.state, opts.wanted, force=opts.force, reenroll=opts.reenroll,
                                                     invalid_certificate=opts.invalid_certificate)
        if opts.replace_revoked and self.action == 'none':
            self._check_revoked()
        # renew_only (the agent): a renewal needs a valid pair; with reenroll=never (a token key) a renewal is an 'enroll'.
        # A revoked pair is valid enough: it is replaced with /simpleenroll and HTTP Basic.
        if opts.renew_only and self.action == 'enroll' and not self._revoked() and not (
                opts.reenroll == 'never' and self.state.cert is not None and self.state.key is not None
                and self._current_pair_valid()):
            raise ESTError('host_state', 'there is no valid certificate to renew at %s (%s); enroll first'
                           % (opts.cert_path, '; '.join(self.reasons)))
        if self.action == 'none' and (self.state.debris or self.state.token_debris):
            self.action = 'clean'
            self.reasons = ['an interrupted run left %s' % ', '.join(
                self.state.debris + (['a new key in the token (%s.pending)' % opts.external_keys.label]
                                     if self.state.token_debris else []))]
        if self.action == 'none' and self._missing_outputs():
            self.action = 'complete'
            self.reasons = self._output_reasons
        return self.action, self.reasons

    def _check_revoked(self):
        """A current certificate that its CA revoked is due: enrolled anew (``enroll``) with a new key.

        The check runs only when nothing else is due and makes HTTP requests (OCSP or the CRL, see
        :mod:`.revocation`), also in check mode. Its issuer is looked up in the chain file, the trust
        anchors (``ca_path``) and ``intermediates_path``. An error (ESTError ``revocation_check``)
        propagates before anything was written: the key and certificate stay as they are.
        """
        from .revocation import status_for
        candidates = list(self.state.chain) + _stored_anchors(self.connection.get('ca_path')) + self._intermediates()
        self.revocation = status_for(self.state.cert, candidates, 'auto', self.options.revocation_timeout)
        if self.revocation['status'] == 'revoked':
            self.action = 'enroll'
            self.reasons = ['the certificate was revoked at %s (reason %s, says %s %s)'
                            % (self.revocation['revocation_time'], self.revocation['reason'], self.revocation['source'],
                               self.revocation['url'])]

    def _revoked(self):
        return self.revocation is not None and self.revocation['status'] == 'revoked'

    def _missing_outputs(self):
        """Chain, full chain or PKCS#12 files that are asked for but missing, or whose content is not
        the current certificate (with its key): they are written again (action ``complete``)."""
        opts = self.options
        reasons, paths = [], []
        for path in (opts.chain_path, opts.fullchain_path, opts.pkcs12_path):
            if not path:
                continue
            problem = '%s is missing' % path if not os.path.exists(path) else self._stale_output(path)
            if problem:
                paths.append(path)
                reasons.append(problem)
        self._output_reasons = reasons
        return paths

    def _stale_output(self, path):
        """Why the full chain or PKCS#12 file at ``path`` does not hold the current pair, or None."""
        from .fileio import read_bytes
        opts, state = self.options, self.state
        if state is None or state.cert is None:
            return None
        data = read_bytes(path) or b''
        if path == opts.fullchain_path:
            try:
                certs = codecs.load_pem_certs(data, 'full chain %s' % path)
            except ESTError:
                return '%s is not a PEM certificate file' % path
            if certs[0] != state.cert or (state.chain and certs[1:] != state.chain):
                return '%s does not hold the current certificate and chain' % path
        elif path == opts.pkcs12_path:
            from cryptography.hazmat.primitives.serialization import pkcs12
            try:
                bundle = pkcs12.load_pkcs12(data, opts.pkcs12_passphrase.encode('utf-8') if opts.pkcs12_passphrase else None)
            except (ValueError, TypeError):
                return '%s cannot be read with the given passphrase' % path
            if bundle.cert is None or bundle.cert.certificate != state.cert or bundle.key is None or \
                    state.key is None or codecs.public_key_der(bundle.key.public_key()) != codecs.public_key_der(state.key.public_key()):
                return '%s does not hold the current key and certificate' % path
        return None

    def _plan_external(self):
        from .hoststate import renewal_time
        opts, state = self.options, self.state
        if state.cert is None:
            return 'enroll', ['there is no certificate' if not state.cert_error else state.cert_error]
        if codecs.public_key_der(state.cert.public_key()) != codecs.public_key_der(opts.external_csr.public_key()):
            return 'enroll', ['the certificate is not for the key of the CSR']
        if opts.force:
            return 'enroll', ['force is set']
        due = renewal_time(state.cert, opts.wanted.window)
        if datetime.datetime.now(datetime.timezone.utc) >= due:
            return 'enroll', ['the certificate is inside its renewal window']
        return 'none', []

    def _new_key_type(self, requirements=None):
        """The type of a new key: ``key_type``, else what the CA demands in /csrattrs, else the current key's type."""
        from .keys import DEFAULT_KEY_TYPE, KEY_TYPES, key_type_of
        demanded = self._demanded_key_type(requirements)
        if self.options.key_type:
            if demanded and demanded != self.options.key_type:
                self._unmet('a %s key, but key_type is %s' % (demanded, self.options.key_type))
            return self.options.key_type
        if demanded:
            return demanded
        current = key_type_of(self.state.key) if self.state.key is not None else None
        return current if current in KEY_TYPES else DEFAULT_KEY_TYPE

    def _demanded_key_type(self, requirements):
        """The key type /csrattrs asks for (RFC 7030 4.5.2), or None; a demand that cannot be met is :meth:`_unmet`."""
        from .keys import key_type_for_demand
        key_type, problem = key_type_for_demand(requirements)
        if problem:
            self._unmet(problem)
        return key_type

    def _unmet(self, demand):
        """A /csrattrs demand this request cannot meet: an error, or with ``csr_attributes_unmet=warn`` a warning."""
        if self.options.csr_attributes_unmet == 'warn':
            message = 'the server asks in /csrattrs for %s; the request is sent without it (csr_attributes_unmet=warn)' % demand
            if message not in self.warnings:
                self.warnings.append(message)
            return
        raise ESTError('invalid_input', 'the server asks in /csrattrs for %s, which this request cannot meet; set '
                       'csr_attributes_unmet=warn to send the request anyway' % demand)

    def new_key_needed(self, requirements=None):
        from .keys import key_type_of
        opts, state = self.options, self.state
        if opts.external_csr is not None:
            return False
        # A revoked certificate's key may be the reason it was revoked (keyCompromise): never certify it again.
        if state.key is None or opts.rekey or self._revoked():
            return True
        if opts.key_type and key_type_of(state.key) != opts.key_type:
            return True
        # A CA that demands another key type (RFC 7030 4.5.2) gets a new key of that type.
        demanded = self._demanded_key_type(requirements) if requirements else None
        return bool(demanded and key_type_of(state.key) != demanded)

    # -- running -----------------------------------------------------------------------------
    def run(self):
        """Carry out the planned action; returns a result dict (see the modules' RETURN)."""
        if self.action is None:
            self.plan()
        if self.action == 'none':
            if self.cached_facts is not None:
                result = {'changed': False, 'action': 'none', 'reasons': [], 'pending': False}
                result.update(self.cached_facts)
                return result
            if self.options.external_csr is None:
                self._remember(self.state.cert)
            return self._result(False, 'none', self.state.cert)
        if self.options.external_csr is not None:
            return self._run_external()
        if self.action in ('recover', 'clean'):
            return self._run_repair()
        return self._run_planned()

    def _remove_debris(self):
        for path in self.state.debris:
            self.files.remove(path)
        if self.state.token_debris:
            self.options.external_keys.discard_pending()
            self.state.token_debris = False

    def _run_repair(self):
        """Finish what an interrupted run left (a staged pair to install, debris), then what is still due."""
        from .hoststate import pending_paths
        from .install import recover
        repaired = list(self.reasons)
        self._remove_debris()
        recovered = None
        if self.action == 'recover':
            recovered = recover(self.files, self.options, self.state)
            if recovered is None:
                self.warnings.append('the staged certificate %s matched no key on the host and was removed'
                                     % pending_paths(self.options.cert_path)['staged'])
        self._plan_from_disk()
        if self.action in ('recover', 'clean'):
            raise ESTError('host_state', 'could not repair the files beside %s: %s' % (self.options.cert_path, '; '.join(self.reasons)))
        if self.action == 'none':
            self._remember(self.state.cert)
            result = self._result(True, 'recovered' if recovered is not None else 'cleaned', self.state.cert)
        else:
            result = self.run()
        result.update(changed=True, repaired=repaired)
        return result

    def _run_planned(self):
        """Enroll, renew, resume or complete as planned."""
        self._remove_debris()
        if self.action == 'complete':
            return self._run_complete()
        if self.action != 'resume':
            self._check_refusal()
        if self.options.server_keygen:
            return self._run_server_keygen()
        from .hoststate import PendingState, pending_paths
        from .install import install
        from .keys import private_key_pem
        from .csr import csr_der, csr_pem, load_csr
        opts, state = self.options, self.state
        paths = pending_paths(opts.cert_path)
        previous = state.cert if (state.cert is not None and state.key is not None and self._current_pair_valid()) else None
        if self.action == 'resume':
            pending = state.pending
            operation, new_key = pending.operation, pending.new_key
            key = state.pending_key if new_key else state.key
            if key is None:
                raise ESTError('host_state', 'the pending request needs the private key %s, which is missing' % opts.key_path)
            csr = load_csr(pending.csr_pem.encode('ascii'), 'pending CSR %s' % paths['state'])
            if codecs.public_key_der(csr.public_key()) != codecs.public_key_der(key.public_key()):
                raise ESTError('host_state', 'the pending CSR in %s is not for the key it was made with; remove the pending '
                               'files to start over' % paths['state'])
            attempts = pending.attempts + 1
            created = pending.created
            requirements, linked = {}, pending.linked
        else:
            operation = 'simplereenroll' if self.action == 'reenroll' and previous is not None else 'simpleenroll'
            if opts.fullcmc:
                operation = 'fullcmc'
            # URL, credentials and trust are checked before a key is made (a failure there changes nothing).
            self._transport(operation)
            requirements = self._csr_requirements(operation, previous)
            new_key = self.new_key_needed(requirements)
            key = self._new_key(self._new_key_type(requirements)) if new_key else state.key
            linked = self._linking(operation, requirements)
            csr = self._build_csr(key, operation, previous, requirements, linked=linked)
            attempts = 1
            created = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        make_der, built = None, {}
        if linked:
            # RFC 7030 3.5: the CSR carries the tls-unique of the connection it is sent over, so it is
            # signed for each connection anew (a pending request too: its old session is gone).
            def make_der(challenge):
                built['csr'] = self._build_csr(key, operation, previous, requirements, challenge=challenge)
                return csr_der(built['csr'])
        # Nothing is written before the answer: a failed request leaves the host as it was. A new key
        # reaches the disk only with a 202 (to send the same request again) or a verified certificate.
        try:
            certs, trust = self._exchange(operation, csr_der(csr), key, key.public_key(), make_der)
        except ESTPending as exc:
            csr = built.get('csr', csr)
            record = PendingState(operation, csr_pem(csr).decode('ascii'), new_key, created, exc.retry_after, attempts)
            record.linked = linked
            if self.cmc_query is not None:
                import base64
                record.cmc_token = base64.b64encode(self.cmc_query[0]).decode('ascii')
                record.transaction_id = self.cmc_query[1]
            if new_key and self.action != 'resume' and opts.external_keys is None:  # a token key is in the token
                self.files.write(paths['key'], private_key_pem(key), 0o600, secret=True)
            self.files.write(paths['state'], record.to_json(), 0o600)
            result = self._result(True, 'pending', previous)
            result.update(pending=True, retry_after=exc.retry_after, pending_since=created, attempts=attempts)
            return result
        except ESTError as exc:
            self._drop_rejected_pending(paths, exc)
            raise
        try:
            cert, chain = self._select(certs, key.public_key(), trust)
        except ESTError as exc:
            self._drop_rejected_pending(paths, exc)
            raise
        install(self.files, opts, cert, chain, key, new_key, key_staged=self.action == 'resume')
        self._forget_refusal()
        self._remember(cert)
        if previous is None:
            action = 'enrolled'
        else:
            action = 'rekeyed' if new_key else 'renewed'
        result = self._result(True, action, cert)
        result['operation'] = operation
        if opts.extra_csrs:
            result['extra_certificates'] = self.extra_certificates
        return result

    def _new_key(self, key_type):
        """A new private key: generated here, or in the token under its pending label."""
        if self.options.external_keys is not None:
            return self.options.external_keys.create_pending(key_type)
        from .keys import generate_private_key
        return generate_private_key(key_type)

    def _linking(self, operation, requirements):
        """Whether this request is linked to its TLS session (RFC 7030 3.5, see :mod:`.linking`).

        ``pop_linking``: ``auto`` links when /csrattrs lists challengePassword and no static
        ``challenge_password`` is given; ``always`` links every request it can; ``never`` none.
        """
        mode = self.options.pop_linking
        if mode == 'never':
            return False
        if operation not in _LINKABLE:
            if mode == 'always':
                self.warnings.append('pop_linking=always: a %s request is not linked (only simpleenroll and simplereenroll '
                                     'are)' % operation)
            return False
        if mode == 'always':
            return True
        return bool(requirements and requirements.get('challenge_password_required') and not self.options.challenge_password)

    def _current_pair_valid(self):
        from .certinfo import not_after
        from .keys import keys_match
        state = self.state
        return keys_match(state.key, state.cert) and not_after(state.cert) > datetime.datetime.now(datetime.timezone.utc)

    def _build_csr(self, key, operation, previous, requirements=None, challenge=None, linked=False):
        """The CSR for ``key``; ``challenge`` (a linked request's tls-unique) goes into challengePassword.

        ``linked``: the request will be linked (this CSR is only the fallback), so no warning about it.
        """
        from .csr import build_csr, eku_oids, key_usage_names, name_pairs, normalize_san, subject_pairs
        from .keys import key_type_of
        wanted = self.options.wanted
        if operation == 'simplereenroll':
            # RFC 7030 §4.2.2: subject and subjectAltName identical to the current certificate.
            pairs = name_pairs(previous.subject)
            sans = _san_objects(previous)
        else:
            pairs, sans = list(wanted.subject), list(wanted.sans)
        key_usage, eku, hash_name = list(wanted.key_usage), list(wanted.eku), None
        req = requirements or {}
        if req:
            if operation != 'simplereenroll':
                # What the server asks for is added to what the user asked for; the user's values win.
                given = set(oid for oid, _value in pairs)
                for name, value in (req.get('subject') or {}).items():
                    if not value:
                        continue  # the client is to fill it in: the user's subject does
                    try:
                        extra = subject_pairs(None, {name: value})
                    except ESTError as exc:
                        self.warnings.append('the server asks for subject attribute %s, which cannot be used: %s'
                                             % (name, exc.message))
                        continue
                    pairs += [pair for pair in extra if pair[0] not in given]
                for asked in req.get('subject_alt_name') or []:
                    try:
                        san = normalize_san(asked)
                    except ESTError as exc:
                        self.warnings.append('the server asks for subject_alt_name %r, which cannot be used: %s'
                                             % (asked, exc.message))
                        continue
                    if san not in sans:
                        sans.append(san)
            key_usage = sorted(set(key_usage) | set(key_usage_names(req.get('key_usage'))))
            eku = sorted(set(eku) | set(eku_oids(req.get('extended_key_usage'))))
            if req.get('hash') in ('sha256', 'sha384', 'sha512'):
                hash_name = req['hash']
            demanded = self._demanded_key_type(req)
            if demanded and demanded != key_type_of(key) and operation != 'serverkeygen':
                self._unmet('a %s key; this request is signed with a %s key' % (demanded, key_type_of(key)))
            if req.get('challenge_password_required') and not self.options.challenge_password and challenge is None \
                    and not linked:
                self.warnings.append('the server lists challengePassword in /csrattrs, which asks for the tls-unique value of '
                                     'the TLS session (RFC 7030 3.5); this request is not linked (pop_linking=%s%s)'
                                     % (self.options.pop_linking, ', not possible for %s' % operation
                                        if operation not in _LINKABLE else ''))
            for oid in req.get('attributes') or []:
                self._unmet('attribute %s, which this client cannot fill in' % _oid_label(oid))
            extra = self._requested_extensions(req, sans, key_usage, eku)
        else:
            extra = []
        password = challenge if challenge is not None else self.options.challenge_password
        from .keys import ExternalKey
        if isinstance(key, ExternalKey):
            return _token_signed_csr(key, pairs, sans, _ku_names(key_usage), eku, password, extra)
        return build_csr(key, pairs, sans, _ku_names(key_usage), eku, password, hash_name, extra_extensions=extra)

    def _requested_extensions(self, req, sans, key_usage, eku):
        """Extensions /csrattrs asks for beyond SAN, keyUsage and extKeyUsage: passed through when the
        server gives their value, an unmet demand when it names only the OID."""
        from cryptography import x509
        handled = {'2.5.29.17': bool(sans), '2.5.29.15': bool(key_usage), '2.5.29.37': bool(eku)}
        extra, given = [], set()
        for ext in req.get('extension_values') or []:
            if ext['oid'] in handled or not ext.get('value_hex'):
                continue
            given.add(ext['oid'])
            extra.append((x509.UnrecognizedExtension(x509.ObjectIdentifier(ext['oid']), bytes.fromhex(ext['value_hex'])),
                          bool(ext.get('critical'))))
        for oid in req.get('extensions') or []:
            if oid in given:
                continue
            if oid in handled:
                # Names and usages are the operator's to give; the server only says it wants some.
                if not handled[oid]:
                    self.warnings.append('the server asks in /csrattrs for extension %s; give it in the task (the request '
                                         'has none)' % _oid_label(oid))
                continue
            self._unmet('extension %s without a value, which this client cannot fill in' % _oid_label(oid))
        return extra

    def _transport(self, operation):
        """The transport for ``operation``, made once per operation kind."""
        kind = 'reenroll' if operation == 'simplereenroll' else 'enroll'
        cache = self._transports
        if kind not in cache:
            connection = dict(self.connection)
            if kind == 'reenroll':
                # Re-enrollment authenticates with the certificate being renewed (RFC 7030 §3.3.2).
                connection.update(client_cert_path=self.options.cert_path, client_key_path=self.options.key_path)
                if self.options.external_keys is not None:  # its key is in a token (a TPM: see tpmtls)
                    connection['client_key'] = self.options.external_keys.tls_key
            factory = self.transport_factory
            if factory is None:
                from .transport import ESTTransport as factory
            cache[kind] = factory(**connection)
            cache[kind].waiter = self.waiter
        return cache[kind]

    def _counted(self, transport, call, *args, **kwargs):
        before = getattr(transport, 'requests_made', 0)
        try:
            return call(*args, **kwargs)
        finally:
            self.requests_made += getattr(transport, 'requests_made', 0) - before

    def _csr_requirements(self, operation, previous):
        """What /csrattrs asks for (RFC 7030 §4.5), when ``csr_attributes`` is ``apply``."""
        if self.options.csr_attributes != 'apply':
            return {}
        from .csrattrs import fetch_csrattrs, to_csr_requirements
        transport = self._transport(operation)
        parsed = self._counted(transport, fetch_csrattrs, transport)
        return to_csr_requirements(parsed) if parsed else {}

    def _exchange(self, operation, der, key=None, public_key=None, make_der=None):
        """Send the request; return its certificates and the :class:`Trust` to validate them with.

        With ``make_der(challenge)`` the request is linked (RFC 7030 3.5): each attempt builds the
        CSR for the tls-unique of its own connection (:mod:`.linking`).
        """
        transport = self._transport(operation)
        if operation == 'fullcmc':
            trust = self._server_trust(transport)
            return self._counted(transport, self._full_cmc, transport, der, key, trust.pool), trust
        send = None
        if make_der is not None:
            from .linking import linked_post

            def send():
                try:
                    return linked_post(transport, operation, make_der, codecs.PKCS10_MEDIA_TYPE)
                except ESTError as exc:
                    if exc.kind != 'tls' or self.options.pop_linking != 'auto':
                        raise
                    # No TLS 1.2 here (TLS 1.3 has no tls-unique): say so, and send the request unlinked.
                    message = ('the server lists challengePassword (RFC 7030 3.5 linking), but %s; the request is sent '
                               'unlinked over TLS 1.3. Allow TLS 1.2 on the server for linking, or set challenge_password '
                               'if it wants a static one' % exc.message)
                    if message not in self.warnings:
                        self.warnings.append(message)
                    return transport.post(operation, der, codecs.PKCS10_MEDIA_TYPE)
        try:
            certs = self._counted(transport, request_certificate, transport, operation, der, send=send, waiter=self.waiter)
        except ESTError as exc:
            if operation == 'simplereenroll' and exc.kind == 'tls':
                _hint_client_auth(exc, self.state.cert if self.state is not None else None)
            raise
        return certs, self._trust_for(transport, certs, public_key)

    def _server_trust(self, transport):
        """The CA certificates of a verified /cacerts answer that pass path validation, and its roots as anchors."""
        from .cacerts import fetch_trusted_cacerts
        answer = self._counted(transport, fetch_trusted_cacerts, transport)
        for reason in answer.reasons:
            self.warnings.append('dropped a /cacerts certificate that does not validate: %s' % reason)
        return Trust(answer.anchors, answer.certs)

    def _trust_for(self, transport, certs, public_key):
        """What validates the issued certificate.

        The trust anchors in ``ca_path`` are the stored EST CA database (RFC 7030 §4.1.2 asks
        clients to refresh it before it expires, not before every request): when the issued
        certificate validates to them, no /cacerts request is needed. Otherwise, or without
        ``ca_path``, the server's current /cacerts decides (RFC 7030 §4.1.3).
        """
        stored = _stored_anchors(self.connection.get('ca_path'))
        issued = codecs.find_certificate_for_key(certs, public_key) if public_key is not None and stored else None
        if issued is not None:
            from .certinfo import not_before
            moment = max(datetime.datetime.now(datetime.timezone.utc), not_before(issued))
            try:
                validated_chain(issued, [c for c in certs if c is not issued] + self._intermediates(), stored, moment, False)
                return Trust(stored)
            except ESTError:
                pass
        return self._server_trust(transport)

    def _full_cmc(self, transport, csr_der_bytes, key, ca_certs):
        """Full CMC (RFC 7030 §4.3): the CSR in a signed PKIData; the certificates of the PKIResponse."""
        from . import cmc
        opts = self.options
        signer, signer_cert = key, None
        if opts.ra_cert_path:
            from .codecs import load_pem_certs
            from .fileio import read_bytes
            from .keys import load_private_key
            signer_cert = load_pem_certs(read_bytes(opts.ra_cert_path) or b'', 'RA certificate %s' % opts.ra_cert_path)[0]
            signer = load_private_key(read_bytes(opts.ra_key_path) or b'', 'the RA key %s' % opts.ra_key_path)
        from .csr import csr_der
        extra = [csr_der(c) for c in opts.extra_csrs]
        reposted = _Reposted(transport, cmc.CMC_REQUEST_CONTENT_TYPE)

        def post(der):
            return reposted.post('fullcmc', der)

        # A request the server holds (CMC pending) is asked about with its pendToken in the same
        # transaction (RFC 5272 6.13), in this run (wait_timeout) and in later ones (the pending file).
        pending = self.state.pending if self.action == 'resume' and self.state is not None else None
        if pending is not None and pending.cmc_token:
            import base64
            self.cmc_query = (base64.b64decode(pending.cmc_token), pending.transaction_id)
        while True:
            token, transaction_id = self.cmc_query or (None, None)
            try:
                certificates = cmc.exchange_full_pki_request([csr_der_bytes] + extra, signer, signer_cert, ca_certs, post,
                                                             identification=opts.identification, query_pending=token,
                                                             transaction_id=transaction_id,
                                                             strict=opts.cmc_response_check != 'lenient')
                break
            except ESTPending as exc:
                state = getattr(exc, 'cmc', None) or {}
                if state.get('token'):
                    self.cmc_query = (state['token'], state['transaction_id'])
                self.waiter.pause(exc)
        # Further requests of the same PKIData: their certificates are returned, found by key, not installed.
        for other in opts.extra_csrs:
            issued = codecs.find_certificate_for_key(certificates, other.public_key())
            self.extra_certificates.append(codecs.certs_to_pem([issued]) if issued is not None else None)
        return certificates

    def _intermediates(self):
        """The operator's extra CA certificates (``intermediates_path``): chain material, never anchors."""
        path = self.options.intermediates_path
        if not path:
            return []
        if not hasattr(self, '_intermediate_certs'):
            from .fileio import read_bytes
            data = read_bytes(path)
            if data is None:
                raise ESTError('invalid_input', 'intermediates_path %s does not exist' % path)
            self._intermediate_certs = codecs.load_pem_certs(data, 'intermediates_path %s' % path)
        return list(self._intermediate_certs)

    def _select(self, certs, public_key, trust):
        """The issued certificate and its chain, verified; a SAN refusal is remembered (see :meth:`_check_refusal`)."""
        opts = self.options
        try:
            cert, chain, warnings = select_and_verify(certs, public_key, trust.anchors, opts.wanted.sans, opts.san_policy,
                                                      intermediates=trust.pool + self._intermediates(),
                                                      hint=not self._intermediates())
        except ESTError as exc:
            if 'missing_subject_alt_name' in exc.details and opts.cert_path:
                from .statecache import refusal_record
                record = refusal_record(self._request_digest(), exc.message)
                self.files.write(_refusal_path(opts.cert_path), record, opts.cert_mode, bookkeeping=True)
            raise
        self.warnings.extend(warnings)
        return cert, chain

    def _request_digest(self):
        """What identifies "the same request again": what is wanted and where it goes."""
        from .statecache import request_digest
        opts = self.options
        return request_digest(opts.wanted, opts.chain_path, self.connection.get('url'), self.connection.get('ca_label'),
                              'serverkeygen' if opts.server_keygen else 'fullcmc' if opts.fullcmc else 'simple')

    def _check_refusal(self):
        """Fail without a request when the CA refused this very request before (it dropped wanted SANs)."""
        opts = self.options
        if opts.force or not opts.cert_path or opts.san_policy != 'fail':
            return
        from .statecache import refusal_lookup
        refused = refusal_lookup(_refusal_path(opts.cert_path), self._request_digest())
        if refused is not None:
            raise ESTError('verification', '%s; the CA refused this request on %s already, so none was sent. Change the request, '
                           'set san_policy=warn, or use force to ask again' % (refused['message'], refused['since']),
                           details={'refused_since': refused['since']})

    def _forget_refusal(self):
        if self.options.cert_path and os.path.exists(_refusal_path(self.options.cert_path)):
            self.files.remove(_refusal_path(self.options.cert_path))

    def _drop_rejected_pending(self, paths, exc):
        """A pending request the server has now refused for good is forgotten, so the next run starts over.

        Transient failures (connection, TLS, 5xx, credentials) keep it for the next try.
        """
        final = ('bad_request', 'forbidden', 'verification', 'bad_response', 'unexpected_content_type')
        if self.action != 'resume' or exc.kind not in final:
            return
        self.files.remove(paths['state'])
        self.files.remove(paths['key'])
        if self.options.external_keys is not None and self.state.pending is not None and self.state.pending.new_key:
            self.options.external_keys.discard_pending()
        exc.message += '; the pending request was discarded, the next run sends a new one'
        exc.args = (exc.message,)

    def _remember(self, cert):
        """Leave the record that lets the next run decide without parsing (see :mod:`.statecache`)."""
        from . import statecache
        from .hoststate import renewal_time
        opts = self.options
        facts = self._result(False, 'none', cert)
        facts = dict((k, v) for k, v in facts.items() if k not in ('changed', 'action', 'reasons', 'pending', 'revocation'))
        text = statecache.record(opts.cert_path, opts.key_path, opts.chain_path, opts.wanted, facts,
                                 renewal_time(cert, opts.wanted.window), outputs=(opts.fullchain_path, opts.pkcs12_path))
        self.files.write(statecache.cache_path(opts.cert_path), text, opts.cert_mode, bookkeeping=True)

    def _run_complete(self):
        """The certificate is current but a chain, full chain or PKCS#12 file is missing: write them again."""
        cert = self.state.cert
        transport = self._transport('simpleenroll')
        trust = self._trust_for(transport, [cert], cert.public_key())
        try:
            chain = validated_chain(cert, trust.pool + self._intermediates(), trust.anchors, hint=False)
        except ESTError as exc:
            raise ESTError('verification', '%s; the CA certificates the server sends now do not validate the current '
                           'certificate: use force to enroll again' % exc.message)
        from .install import apply
        apply(self.files, self.options, cert, chain, self.state.key, False, only_missing=self._missing_outputs())
        self._remember(cert)
        return self._result(True, 'completed', cert)

    def _run_server_keygen(self):
        """Server-side key generation (RFC 7030 §4.4): the server makes the key and returns it with the certificate."""
        from .csr import csr_der
        from .keys import generate_private_key
        from .install import install
        from .serverkeygen import ask_for_encrypted_key, check_key_matches, load_decrypt_key, parse_serverkeygen_response
        opts, state = self.options, self.state
        previous = state.cert if (state.cert is not None and state.key is not None and self._current_pair_valid()) else None
        transport = self._transport('serverkeygen')
        requirements = self._csr_requirements('serverkeygen', previous)
        # The server ignores the CSR's key and signature (§4.4.1); a throwaway key of the wanted type signs it.
        throwaway = generate_private_key(self._new_key_type(requirements))
        der = csr_der(self._build_csr(throwaway, 'serverkeygen', previous, requirements))
        decrypt_key = None
        if opts.decrypt_cert_path:
            decrypt_key = load_decrypt_key(opts.decrypt_cert_path, opts.decrypt_key_path)
            der = ask_for_encrypted_key(der, throwaway, decrypt_key[0])
        try:
            response = self._counted(transport, post_with_polling, transport, 'serverkeygen', der, waiter=self.waiter)
        except ESTPending as exc:
            result = self._result(False, 'pending', previous)
            result.update(pending=True, retry_after=exc.retry_after)
            return result
        parsed = parse_serverkeygen_response(response.content_type, response.body, decrypt_key)
        key = parsed['private_key']
        check_key_matches(key, parsed['certificates'])
        trust = self._trust_for(transport, parsed['certificates'], key.public_key())
        cert, chain = self._select(parsed['certificates'], key.public_key(), trust)
        install(self.files, opts, cert, chain, key, True)
        self._forget_refusal()
        self._remember(cert)
        result = self._result(True, 'enrolled' if previous is None else 'rekeyed', cert)
        result.update(operation='serverkeygen', key_encrypted=parsed['encrypted'])
        return result

    def _run_external(self):
        from .csr import csr_der
        opts = self.options
        certs, trust = self._exchange('simpleenroll', csr_der(opts.external_csr), None, opts.external_csr.public_key())
        cert, chain = self._select(certs, opts.external_csr.public_key(), trust)
        if opts.cert_path:
            from .install import apply
            apply(self.files, opts, cert, chain, None, False)
        result = self._result(True, 'enrolled', cert)
        from .codecs import certs_to_pem
        result['certificate_pem'] = certs_to_pem([cert])
        result['chain_pem'] = certs_to_pem(chain)
        return result

    def _result(self, changed, action, cert):
        from .certinfo import cert_facts
        from .csr import extension_values
        result = {'changed': changed, 'action': action, 'reasons': list(self.reasons), 'pending': False}
        if self.revocation is not None:
            result['revocation'] = dict(self.revocation)
        if cert is not None:
            facts = cert_facts(cert)
            facts['subject_alt_name'] = extension_values(cert)['sans']
            result.update(facts)
        return result


def _token_signed_csr(key, pairs, sans, key_usage, eku, password, extra):
    """A CSR for a key in a token: built by ``cryptography`` with a throwaway key, then given the token's
    public key and signed in the token (:func:`.csr_asn1.rebuild_csr`; SHA-256 with RSA or ECDSA)."""
    from .csr import build_csr, csr_der, load_csr
    from .csr_asn1 import rebuild_csr
    from .keys import generate_private_key
    draft = build_csr(generate_private_key('ec-p256'), pairs, sans, key_usage, eku, password, extra_extensions=extra)
    der = rebuild_csr(csr_der(draft), key, public_key=key.public_key())
    return load_csr(der, 'CSR signed in the token with %s' % key.uri)  # its signature must verify


def _refusal_path(cert_path):
    return cert_path + '.refused.json'


def _stored_anchors(path):
    """The certificates in the trust anchor file ``path`` ([] when unset or unreadable)."""
    if not path:
        return []
    from .fileio import read_bytes
    try:
        return codecs.load_pem_certs(read_bytes(path) or b'', 'trust anchors %s' % path)
    except ESTError:
        return []


_LINKABLE = ('simpleenroll', 'simplereenroll')


def _hint_client_auth(exc, cert):
    """Say why a server refuses the current certificate as a TLS client certificate, when it can be seen."""
    from .csr import extension_values
    if cert is None:
        return
    ekus = extension_values(cert)['eku']
    if ekus and '1.3.6.1.5.5.7.3.2' not in ekus and '2.5.29.37.0' not in ekus:
        exc.message += ('; the certificate renewed here has an extendedKeyUsage without clientAuth, so TLS servers refuse it '
                        'as a client certificate: request clientAuth too, or renew with /simpleenroll (reenroll=never)')
        exc.args = (exc.message,)


def _oid_label(oid):
    """``name (dotted OID)`` for messages."""
    from .csrattrs import oid_name
    name = oid_name(oid)
    return '%s (%s)' % (name, oid) if name and name != oid else oid


def _san_objects(cert):
    """The subjectAltName entries of ``cert`` as GeneralName objects (none: an empty list)."""
    from cryptography import x509
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _ku_names(attrs):
    """Key usage attribute names back to the names build_csr accepts (it normalises either form)."""
    return [a.replace('_', '') for a in attrs]
