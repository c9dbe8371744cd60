# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTPS transport for EST (RFC 7030 §3).

One :class:`ESTTransport` per server: a ``requests`` session with TLS 1.2 or newer,
hostname verification, trust from the CA file the user names (or none at all in bootstrap
mode), client certificate and HTTP Basic authentication, timeouts, and the mapping of HTTP
answers onto :mod:`.errors`. It knows URLs and status codes, not EST message contents.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import email.utils
import re
import ssl
import warnings

from .errors import ESTBusy, ESTError, ESTPending
from .waiting import Waiter

try:  # The engine runs on hosts that may lack requests; modules report that cleanly.
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.ssl_ import create_urllib3_context
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    requests = None
    HTTPAdapter = object
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc

try:
    from urllib.parse import urlsplit, quote
except ImportError:  # pragma: no cover - Python 2 is not supported, kept for sanity's compile test
    from urlparse import urlsplit  # type: ignore
    from urllib import quote  # type: ignore

WELL_KNOWN = '/.well-known/est'
OPERATIONS = ('cacerts', 'simpleenroll', 'simplereenroll', 'fullcmc', 'serverkeygen', 'csrattrs')
USER_AGENT = 'pki.est/0.1 (Ansible collection; RFC 7030)'
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_REDIRECTS = 3
DEFAULT_TIMEOUT = 30
# The longest wait a Retry-After may ask for (one day); a larger value, in seconds or as a date, is capped.
MAX_RETRY_AFTER = 86400
# RFC 9110 §10.2.3 delay-seconds = 1*DIGIT, ASCII digits only (str.isdigit() and int() take '\u0663' for 3).
_DELAY_SECONDS = re.compile(r'\A[0-9]+\Z')
# An HTTP-date is printable ASCII; email.utils would read other digits too (int() again).
_PRINTABLE_ASCII = re.compile(r'\A[\x20-\x7e]+\Z')
# The server is overloaded (RFC 9110 §15.6.4) or throttles the client (RFC 6585 §4): nothing was done, ask again later.
_BUSY = (429, 503)
# Redirects that keep the method and the body (RFC 9110 §15.4.8, §15.4.9).
_REDIRECTS_KEEPING_METHOD = (307, 308)
_REDIRECTS = (301, 302, 303, 307, 308)


def build_base_url(url, ca_label=None):
    """``https://host[:port]/.well-known/est[/label]`` from the user's ``url`` and ``ca_label``.

    ``url`` may be a bare origin (``https://est.example.com:8443``) or already end in
    ``/.well-known/est``; any other path is kept as a prefix for servers mounted below one.
    """
    if not url:
        raise ESTError('invalid_input', 'url is required')
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced '[' of an IPv6 address
        raise ESTError('invalid_input', 'url %r cannot be parsed: %s' % (url, exc))
    if parts.scheme.lower() != 'https':
        raise ESTError('invalid_input', 'url must use https:// (EST runs over TLS only), got %r' % url)
    if not parts.hostname:
        raise ESTError('invalid_input', 'url %r has no host name' % url)
    if parts.query or parts.fragment:
        raise ESTError('invalid_input', 'url %r must not carry a query or fragment' % url)
    try:
        port = parts.port
    except ValueError:
        raise ESTError('invalid_input', 'url %r has an invalid port' % url)
    host = parts.hostname
    if ':' in host:
        host = '[%s]' % host
    origin = 'https://%s%s' % (host, ':%d' % port if port else '')
    path = parts.path.rstrip('/')
    if not path.endswith(WELL_KNOWN):
        path += WELL_KNOWN
    if ca_label:
        if '/' in ca_label or ca_label in ('.', '..'):
            raise ESTError('invalid_input', 'ca_label %r must be a single path segment' % ca_label)
        path += '/' + quote(ca_label, safe='')
    return origin + path


def parse_retry_after(value, now=None):
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

    delay-seconds are ASCII digits only (``[0-9]+``; other Unicode digits, signs, blanks inside,
    fractions are not a value). An HTTP-date is read with :mod:`email.utils` and must be
    printable ASCII; a date in the past means no wait (0). The result is capped at
    :data:`MAX_RETRY_AFTER` seconds: a larger value is not an error, the client just does not
    wait longer than that before it asks again. Returns None for a missing or unreadable
    header; never a negative number.
    """
    if value is None:
        return None
    value = value.strip(' \t')
    if not value:
        return None
    if _DELAY_SECONDS.match(value):
        # Cap before converting: a huge run of digits is capped, not refused (int() limits its length).
        digits = value.lstrip('0') or '0'
        if len(digits) > len(str(MAX_RETRY_AFTER)):
            return MAX_RETRY_AFTER
        return min(int(digits), MAX_RETRY_AFTER)
    if not _PRINTABLE_ASCII.match(value):
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        seconds = (when - now).total_seconds()
    except OverflowError:  # pragma: no cover - datetime keeps both within years 1..9999
        return None
    return int(max(0, min(round(seconds), MAX_RETRY_AFTER)))


class ESTResponse:
    """A successful (2xx) answer: status, headers, body bytes and the parsed media type."""

    def __init__(self, status, headers, body, url):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def content_type(self):
        return self.headers.get('Content-Type', '')


class _TLSAdapter(HTTPAdapter):
    """Pins the TLS floor at 1.2 without loading any default trust into the context.

    The trust itself (``verify``) is still passed with every request; this context only
    needs to know whether certificates are checked at all (bootstrap mode does not).
    """

    def __init__(self, verify=True, client=None, **kwargs):
        self._verify = verify
        # (client_key, cert_path): a client key that is not a file (:class:`~.tpmtls.TPMClientKey`) is loaded
        # into the context once, here, instead of by urllib3 at each connection.
        self._client = client
        super(_TLSAdapter, self).__init__(**kwargs)

    def _context(self):
        context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if self._verify else ssl.CERT_NONE)
        if not self._verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self._verify:
            # Any certificate of the trust bundle is an anchor of its own (as on Python 3.13 and with
            # urllib3 2.x), so a pinned intermediate works. Set explicitly so that the Python version
            # does not decide; what lands in a bundle has passed path validation (pathvalid.py).
            context.verify_flags |= getattr(ssl, 'VERIFY_X509_PARTIAL_CHAIN', 0)
        if self._client is not None:
            client_key, cert_path = self._client
            client_key.load_into(context, cert_path)
        return context

    def init_poolmanager(self, *args, **kwargs):
        kwargs['ssl_context'] = self._context()
        return super(_TLSAdapter, self).init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args, **kwargs):
        kwargs['ssl_context'] = self._context()
        return super(_TLSAdapter, self).proxy_manager_for(*args, **kwargs)


def _server_text(response, body):
    """The server's own words for an error, short and printable."""
    ctype = response.headers.get('Content-Type', '').lower()
    if body and (ctype.startswith('text/') or not ctype or 'json' in ctype):
        text = body[:300].decode('utf-8', 'replace').strip()
        text = ''.join(ch if ch.isprintable() else ' ' for ch in text)
        return text + ('...' if len(body) > 300 else '')
    return ''


def _check_trust_file(path):
    """Fail before any request when ``ca_path`` holds no certificate (an empty or wrong file)."""
    import os.path
    from .fileio import read_bytes
    if os.path.isdir(path):
        return  # an OpenSSL hashed directory: requests hands it over as it is
    data = read_bytes(path)
    if data is None:
        raise ESTError('invalid_input', 'ca_path %s does not exist' % path)
    if b'-----BEGIN CERTIFICATE-----' not in data:
        raise ESTError('invalid_input', 'ca_path %s holds no PEM certificate to verify the server with' % path)


class ESTTransport:
    """Talks HTTPS to one EST server (one base URL, one CA label)."""

    def __init__(self, url, ca_label=None, ca_path=None, bootstrap=False, username=None, password=None,
                 client_cert_path=None, client_key_path=None, timeout=DEFAULT_TIMEOUT, session=None, client_key=None,
                 waiter=None):
        """``client_key``: a client key that is not a file (:class:`~.tpmtls.TPMClientKey`), for ``client_cert_path``;
        every request then runs inside its ``window()``. ``waiter``: the :class:`~.waiting.Waiter` whose budget
        a request that meets a busy server (503, 429) is sent again within; without one (or with a budget of 0)
        the first busy answer raises ``busy``."""
        if not HAS_REQUESTS:
            raise ESTError('invalid_input', 'the Python library "requests" is required on the host: %s' % REQUESTS_IMPORT_ERROR)
        self.base_url = build_base_url(url, ca_label)
        if bootstrap and ca_path:
            raise ESTError('invalid_input', 'bootstrap mode and ca_path exclude each other')
        if (client_key_path or client_key is not None) and not client_cert_path:
            raise ESTError('invalid_input', 'client_key_path needs client_cert_path')
        if client_key_path and client_key is not None:
            raise ESTError('invalid_input', 'a client key file and a client key in a token exclude each other')
        if (username is None) != (password is None):
            raise ESTError('invalid_input', 'username and password go together')
        if ca_path:
            _check_trust_file(ca_path)
        self.bootstrap = bootstrap
        # The trust the user names wins: pass verify with every request so that
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment cannot replace it.
        self.verify = False if bootstrap else (ca_path or True)
        self.cert = None
        if client_cert_path and client_key is None:
            self.cert = (client_cert_path, client_key_path) if client_key_path else client_cert_path
        self.client_key = client_key
        self.client_cert_path = client_cert_path
        # Never offer a password to a server whose identity we have not verified (RFC 7030 §3.3.1).
        self.auth = (username, password) if username is not None and not bootstrap else None
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.session = session or requests.Session()
        adapter = _TLSAdapter(verify=self.verify is not False,
                              client=(client_key, client_cert_path) if client_key is not None else None)
        self.session.mount('https://', adapter)
        self.session.headers['User-Agent'] = USER_AGENT
        self.requests_made = 0
        # A job shares one Waiter among its transports (see enroll.Enrollment): one budget for all its waits.
        self.waiter = waiter if waiter is not None else Waiter()

    def tls_window(self):
        """The span a connection with this transport's client key is made in (see :mod:`.tpmtls`)."""
        if self.client_key is None:
            return _NO_WINDOW
        return self.client_key.window()

    def url_for(self, operation):
        return '%s/%s' % (self.base_url, operation)

    def get(self, operation, accept=None):
        headers = {'Accept': accept} if accept else {}
        return self._request('GET', operation, headers, None)

    def post(self, operation, der, content_type, accept=None):
        """POST ``der`` base64-encoded, with Content-Type, Content-Transfer-Encoding and Content-Length."""
        from .codecs import encode_body
        body = encode_body(der)
        headers = {
            'Content-Type': content_type,
            'Content-Transfer-Encoding': 'base64',
            'Content-Length': str(len(body)),
        }
        if accept:
            headers['Accept'] = accept
        return self._request('POST', operation, headers, body)

    def _request(self, method, operation, headers, body):
        """:meth:`_request_once`, sent again after a busy answer (503, 429) as long as :attr:`waiter` allows."""
        return self.waiter.call(self._request_once, method, operation, headers, body)

    def _request_once(self, method, operation, headers, body):
        """Send, follow same-origin redirects (at most :data:`MAX_REDIRECTS`), and classify the answer.

        Redirects (RFC 9110 §15.4) are followed only within the origin of ``url`` (RFC 7030
        §3.2.1), with the same credentials and trust. A GET follows 301, 302, 303, 307 and 308
        alike. A POST follows only 307 and 308, which keep the method and the body; it is
        never re-sent as a GET: 303 means "GET this other resource instead" (RFC 9110
        §15.4.4), and 301 and 302 allow a user agent to do the same (§15.4.2, §15.4.3), but EST
        gives a GET of an enrollment URL no meaning (RFC 7030 §4.2, §4.3, §4.4: these
        operations are POSTs), so a POST answered 301, 302 or 303 fails with ``http`` (an HTTP
        status the protocol gives no meaning to, see :mod:`.errors`) naming the status and the
        Location, and nothing is sent there. A GET that follows a 303 is still a GET, so
        ``/cacerts`` and ``/csrattrs`` follow all five.
        """
        url = self.url_for(operation)
        for _hop in range(MAX_REDIRECTS + 1):
            with self.tls_window():
                response = self._send(method, url, headers, body)
                payload = self._read(response)
            status = response.status_code
            if status in _REDIRECTS:
                if method != 'GET' and status not in _REDIRECTS_KEEPING_METHOD:
                    raise self._method_changing_redirect(method, operation, url, response)
                url = self._redirect_target(url, response)
                continue
            return self._classify(operation, url, response, payload)
        raise ESTError('http', 'too many redirects for %s %s' % (method, self.url_for(operation)))

    @staticmethod
    def _method_changing_redirect(method, operation, url, response):
        """The error for a 301, 302 or 303 answer to a POST (see :meth:`_request`)."""
        status = response.status_code
        location = response.headers.get('Location')
        where = 'Location %s' % _printable(location) if location else 'no Location header'
        # No error.response: the body of a redirect is not an EST answer (cmc.py reads error bodies as CMC).
        return ESTError('http', 'HTTP %d from %s in answer to %s %s (%s): that redirect would turn the request into a GET, '
                                'which EST does not define for %s, so the request was not sent again; set url to the '
                                'server that answers %s (a server that moved should answer 307 or 308)'
                        % (status, url, method, operation, where, operation, operation), status=status)

    def _send(self, method, url, headers, body):
        self.requests_made += 1
        try:
            with warnings.catch_warnings():
                if self.verify is False:
                    warnings.simplefilter('ignore')
                # In bootstrap mode a do-nothing auth keeps requests from adding ~/.netrc credentials.
                auth = _no_auth if self.auth is None and self.bootstrap else self.auth
                return self.session.request(method, url, headers=headers, data=body, verify=self.verify,
                                            cert=self.cert, auth=auth, timeout=self.timeout,
                                            allow_redirects=False, stream=True)
        except requests.exceptions.SSLError as exc:
            raise ESTError('tls', 'TLS with %s failed: %s' % (url, _reason(exc)))
        except requests.exceptions.Timeout as exc:
            raise ESTError('connection', 'timed out after %ss talking to %s: %s' % (self.timeout, url, _reason(exc)))
        except requests.exceptions.ConnectionError as exc:
            raise ESTError('connection', 'could not talk to %s: %s' % (url, _reason(exc)))
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise ESTError('connection', 'request to %s failed: %s' % (url, _reason(exc)))

    def _read(self, response):
        try:
            chunks = []
            size = 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise ESTError('bad_response', 'the answer from %s is larger than %d bytes' % (response.url, MAX_RESPONSE_BYTES))
                chunks.append(chunk)
            return b''.join(chunks)
        except requests.exceptions.RequestException as exc:
            raise ESTError('connection', 'the answer from %s was cut off: %s' % (response.url, _reason(exc)))
        finally:
            response.close()

    def _redirect_target(self, url, response):
        location = response.headers.get('Location')
        if not location:
            raise ESTError('http', 'HTTP %d from %s without a Location header' % (response.status_code, url))
        try:
            target = requests.compat.urljoin(url, location)
            here, there = urlsplit(url), urlsplit(target)
            same_origin = _origin(there) == _origin(here)
        except ValueError:  # e.g. a port that is not a number
            raise ESTError('http', 'HTTP %d from %s with an unusable Location header %r' % (response.status_code, url, location),
                           status=response.status_code)
        # RFC 7030 §3.2.1: redirects to another origin need the user's say-so; we never follow them.
        if not same_origin:
            raise ESTError('http', 'the server at %s redirects to another origin (%s); set url to that server if it is trusted'
                           % (url, target), status=response.status_code)
        return target

    def _classify(self, operation, url, response, payload):
        status = response.status_code
        if status in (200, 201, 204):
            return ESTResponse(status, response.headers, payload, url)
        if status == 202:
            retry_after = parse_retry_after(response.headers.get('Retry-After'))
            pending = ESTPending('the server accepted the %s request and will decide later (HTTP 202%s)'
                                 % (operation, ', retry after %ss' % retry_after if retry_after is not None else ''),
                                 retry_after=retry_after)
            pending.response = ESTResponse(status, response.headers, payload, url)  # a CMC answer may say more
            raise pending
        text = _server_text(response, payload)
        suffix = ': %s' % text if text else ''
        if status in _BUSY:
            retry_after = parse_retry_after(response.headers.get('Retry-After'))
            busy = ESTBusy('the server is busy and did not take the %s request (HTTP %d, %s)%s'
                           % (operation, status, 'retry after %s s' % retry_after if retry_after is not None
                              else 'no usable Retry-After', suffix), retry_after=retry_after, status=status)
            busy.response = ESTResponse(status, response.headers, payload, url)
            raise busy
        if status == 401:
            challenge = response.headers.get('WWW-Authenticate', '')
            raise ESTError('auth_required', 'the server requires authentication for %s (HTTP 401%s)%s'
                           % (operation, ', WWW-Authenticate: %s' % challenge if challenge else '', suffix),
                           status=status, details={'www_authenticate': challenge})
        if status == 403:
            raise ESTError('forbidden', 'the server refused %s (HTTP 403)%s' % (operation, suffix), status=status)
        if status in (404, 501):
            raise ESTError('not_supported', 'the server does not support %s at %s (HTTP %d)%s'
                           % (operation, url, status, suffix), status=status)
        if status in (400, 409, 413, 415, 422):
            error = ESTError('bad_request', 'the server rejected the %s request (HTTP %d)%s' % (operation, status, suffix), status=status)
        else:
            error = ESTError('http', 'HTTP %d from %s%s' % (status, url, suffix), status=status)
        # Some answers carry a body the caller can read further (a CMC failure, RFC 7030 §4.3.2).
        error.response = ESTResponse(status, response.headers, payload, url)
        raise error


class _NoWindow:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


_NO_WINDOW = _NoWindow()


def _printable(text, limit=200):
    """``text`` quoted, with characters that are not printable escaped, and cut to ``limit`` characters."""
    shown = repr(text[:limit])
    return shown + ('...' if len(text) > limit else '')


def _no_auth(request):
    """An auth hook that adds nothing (passing none would let requests read ~/.netrc)."""
    return request


def _origin(parts):
    """(scheme, host, port) with the scheme's default port filled in, for same-origin checks."""
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or '').lower(), parts.port or {'https': 443, 'http': 80}.get(scheme)


def _reason(exc):
    """The innermost readable reason of a requests/urllib3 exception chain."""
    seen = exc
    while True:
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        inner = inner or getattr(seen, 'reason', None)
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    text = str(seen) or seen.__class__.__name__
    return text if len(text) <= 300 else text[:300] + '...'
