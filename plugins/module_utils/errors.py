# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One error taxonomy for the whole EST engine.

Every failure the engine can meet is an :class:`ESTError` carrying a ``kind`` from
:data:`ERROR_KINDS`. Modules turn it into ``fail_json(msg=..., error_kind=...)``; the
host-side renewal agent turns it into an exit status. Nothing here imports Ansible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


ERROR_KINDS = (
    'tls',                      # TLS handshake or certificate verification failed
    'connection',               # could not connect, connection dropped, timeout
    'http',                     # an HTTP status the protocol does not give a meaning to
    'auth_required',            # 401: the server wants (other) credentials
    'forbidden',                # 403: authenticated, but not allowed
    'unexpected_content_type',  # a success answer with a media type we cannot use
    'bad_response',             # a success answer whose body cannot be decoded
    'pending',                  # 202: the request is accepted but not yet decided
    'busy',                     # 503 / 429: the server is overloaded or throttles us; retry_after says when to come back
    'not_supported',            # 404 / 501: the server does not offer this operation
    'bootstrap_mismatch',       # the CA the server offers is not the one expected
    'bad_request',              # the server rejected what we sent (400 and friends)
    'invalid_input',            # the user gave us something unusable
    'key_store',                # a private key could not be read, written or used
    'host_state',               # files on the host are inconsistent or unreadable
    'verification',             # an issued certificate failed our checks
    'revocation_check',         # a certificate's revocation status could not be had or trusted (revocation.py)
    # PKCS#11 tokens (tokenkeys.py, the tpm_key module, enrollment with token keys):
    'token_library',            # the PKCS#11 library is missing, not loadable, or not a PKCS#11 library
    'token_not_found',          # no token with that label / slot (the message lists the tokens there are)
    'token_login',              # wrong PIN, PIN locked or not initialised, or no PIN given
    'key_conflict',             # a token key under that label / id exists but is not the one asked for
    # (modules also report 'internal' for a failure outside this list, with the traceback only at -vvv)
)


class ESTError(Exception):
    """An EST operation failed. ``kind`` is one of :data:`ERROR_KINDS`."""

    def __init__(self, kind, message, status=None, details=None):
        if kind not in ERROR_KINDS:
            raise ValueError('unknown EST error kind %r' % (kind,))
        super(ESTError, self).__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.details = details or {}
        self.response = None  # the error answer (transport.ESTResponse) when there was one

    def __str__(self):
        return self.message

    def as_dict(self):
        """Facts a module returns next to ``msg`` when it fails."""
        result = {'error_kind': self.kind}
        if self.status is not None:
            result['http_status'] = self.status
        result.update(self.details)
        return result


class ESTPending(ESTError):
    """The server accepted the request and asks us to come back later (HTTP 202)."""

    def __init__(self, message, retry_after=None, status=202):
        super(ESTPending, self).__init__('pending', message, status=status,
                                         details={'retry_after': retry_after})
        self.retry_after = retry_after


class ESTBusy(ESTError):
    """The server did not take the request because it is overloaded or throttles this client (HTTP 503, 429).

    Nothing was done on the server: the same request may be sent again, after ``retry_after``
    seconds when the server named them (RFC 9110 §10.2.3, §15.6.4; RFC 6585 §4). See :mod:`.waiting`.
    """

    def __init__(self, message, retry_after=None, status=503):
        super(ESTBusy, self).__init__('busy', message, status=status, details={'retry_after': retry_after})
        self.retry_after = retry_after
