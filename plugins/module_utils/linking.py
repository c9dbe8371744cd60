# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linking identity and proof-of-possession (RFC 7030 section 3.5) with tls-unique.

A server that lists challengePassword in /csrattrs asks the client to put the base64
tls-unique value (RFC 5929) of the TLS session into the CSR's challengePassword attribute,
and to send the CSR over that same session: the server then knows the key holder and the
authenticated TLS client are one. The CSR therefore has to be signed after the handshake and
before the request, on a connection the client holds itself, which ``requests`` does not
offer; :func:`linked_post` makes that one connection with the standard library, with the
transport's trust, client certificate and credentials.

tls-unique exists only up to TLS 1.2 (RFC 9266: TLS 1.3 has no such value), so the linked
connection is made with TLS 1.2 exactly. A server that accepts only TLS 1.3 cannot be linked
with; the caller reports that plainly. Proxies from the environment are not used for a linked
request (a TLS-terminating proxy would break the link anyway), nor are redirects followed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import socket
import ssl

from .errors import ESTError


class _Answer:
    """What :meth:`ESTTransport._classify` reads from an answer: status code and headers."""

    def __init__(self, status, headers):
        self.status_code = status
        self.headers = headers


def _context(transport):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    verify = transport.verify
    if verify is False:
        raise ESTError('invalid_input', 'a linked request needs a verified server (ca_path), not bootstrap mode')
    if verify is True:
        from requests.utils import DEFAULT_CA_BUNDLE_PATH
        context.load_verify_locations(cafile=DEFAULT_CA_BUNDLE_PATH)
    else:
        import os.path
        if os.path.isdir(verify):
            context.load_verify_locations(capath=verify)
        else:
            context.load_verify_locations(cafile=verify)
    context.verify_flags |= getattr(ssl, 'VERIFY_X509_PARTIAL_CHAIN', 0)
    if transport.client_key is not None:
        transport.client_key.load_into(context, transport.client_cert_path)
    elif transport.cert:
        cert, key = transport.cert if isinstance(transport.cert, tuple) else (transport.cert, None)
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ESTError('invalid_input', 'cannot use the client certificate %s: %s' % (cert, exc))
    return context


def linked_post(transport, operation, make_der, content_type):
    """POST the body ``make_der(challenge)`` builds, ``challenge`` being the base64 tls-unique of the
    connection it goes over; the answer as :meth:`ESTTransport._classify` gives it. A busy answer
    (503, 429) is sent again, on a new connection with a new CSR, as the transport's waiter allows."""
    return transport.waiter.call(_linked_post_once, transport, operation, make_der, content_type)


def _linked_post_once(transport, operation, make_der, content_type):
    import http.client
    from urllib.parse import urlsplit
    url = transport.url_for(operation)
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=_context(transport),
                                             timeout=transport.timeout)
    try:
        with transport.tls_window():
            status, headers, payload = _exchange(transport, connection, operation, parts, make_der, content_type)
    finally:
        connection.close()
    transport.requests_made += 1
    if 300 <= status < 400:
        raise ESTError('http', 'the server answered the linked %s request with a redirect (HTTP %d); a linked request '
                       'is not redirected, set url to the server that answers it' % (operation, status), status=status)
    return transport._classify(operation, url, _Answer(status, headers), payload)  # pylint: disable=protected-access


def _exchange(transport, connection, operation, parts, make_der, content_type):
    """Handshake, sign the CSR for this session's tls-unique, send it: (status, headers, body)."""
    import http.client
    from .codecs import encode_body
    from .transport import USER_AGENT
    try:
        connection.connect()
    except ssl.SSLError as exc:
        raise ESTError('tls', 'TLS 1.2 with %s failed (%s); linking (RFC 7030 3.5) needs TLS 1.2, which has tls-unique'
                       % (parts.netloc, getattr(exc, 'reason', None) or exc))
    except (OSError, socket.timeout) as exc:
        raise ESTError('connection', 'could not connect to %s: %s' % (parts.netloc, exc))
    binding = connection.sock.get_channel_binding('tls-unique')
    if not binding:
        raise ESTError('not_supported', 'the TLS session with %s gives no tls-unique value' % parts.netloc)
    body = encode_body(make_der(base64.b64encode(binding).decode('ascii')))
    headers = {'Content-Type': content_type, 'Content-Transfer-Encoding': 'base64', 'Content-Length': str(len(body)),
               'User-Agent': USER_AGENT, 'Accept': '*/*'}
    if transport.auth:
        token = ('%s:%s' % transport.auth).encode('utf-8')
        headers['Authorization'] = 'Basic ' + base64.b64encode(token).decode('ascii')
    try:
        connection.request('POST', parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    except (OSError, http.client.HTTPException, socket.timeout) as exc:
        raise ESTError('connection', 'the linked %s request to %s failed: %s' % (operation, parts.netloc, exc))
