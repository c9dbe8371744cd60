# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ESTTransport against a fake requests adapter: what is sent, and how answers are mapped (RFC 7030 §3)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import email.utils
import ssl

import pytest
import requests
import urllib3

from ansible_collections.pki.est.plugins.module_utils import transport
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError, ESTPending
from ansible_collections.pki.est.plugins.module_utils.transport import ESTTransport, build_base_url, parse_retry_after
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fakehttp import Answer, fake_transport

BASE = 'https://est.example.com/.well-known/est'
PKCS7 = {'Content-Type': 'application/pkcs7-mime; smime-type=certs-only', 'Content-Transfer-Encoding': 'base64'}
TEXT = {'Content-Type': 'text/plain; charset=utf-8'}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No proxy, CA bundle or netrc from the machine running the tests."""
    for name in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy',
                 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('NETRC', str(tmp_path / 'no-netrc'))


def _raises(kind, call, *args, **kwargs):
    with pytest.raises(ESTError) as info:
        call(*args, **kwargs)
    assert info.value.kind == kind, info.value.message
    return info.value


# -- build_base_url ------------------------------------------------------------------------------

@pytest.mark.parametrize('url, label, expected', [
    ('https://est.example.com', None, BASE),
    ('https://est.example.com/', None, BASE),
    ('https://EST.Example.COM:8443', None, 'https://est.example.com:8443/.well-known/est'),
    ('https://est.example.com/.well-known/est', None, BASE),
    ('https://est.example.com/.well-known/est/', None, BASE),
    ('https://est.example.com:8443/.well-known/est', 'arbitraryLabel1', 'https://est.example.com:8443/.well-known/est/arbitraryLabel1'),
    ('https://est.example.com/pki/est-service', None, 'https://est.example.com/pki/est-service/.well-known/est'),
    ('https://est.example.com/pki/.well-known/est/', 'ra', 'https://est.example.com/pki/.well-known/est/ra'),
    ('https://[2001:db8::1]:8443', None, 'https://[2001:db8::1]:8443/.well-known/est'),
    ('https://[::1]/', 'ca', 'https://[::1]/.well-known/est/ca'),
    ('https://192.0.2.7:443', None, 'https://192.0.2.7:443/.well-known/est'),
    ('HTTPS://est.example.com', None, BASE),
    ('https://est.example.com', 'my ca+1', BASE + '/my%20ca%2B1'),
    ('https://est.example.com', 'caf\u00e9', BASE + '/caf%C3%A9'),
    ('https://est.example.com', '?#%', BASE + '/%3F%23%25'),
    ('https://est.example.com', '', BASE),
])
def test_build_base_url(url, label, expected):
    assert build_base_url(url, label) == expected


@pytest.mark.parametrize('url, label, fragment', [
    ('http://est.example.com', None, 'https://'),
    ('est.example.com', None, 'https://'),
    ('ftp://est.example.com', None, 'https://'),
    ('', None, 'required'),
    (None, None, 'required'),
    ('https://', None, 'no host'),
    ('https:///.well-known/est', None, 'no host'),
    ('https://est.example.com/?x=1', None, 'query or fragment'),
    ('https://est.example.com/#frag', None, 'query or fragment'),
    ('https://est.example.com:99999', None, 'invalid port'),
    ('https://est.example.com:port', None, 'invalid port'),
    ('https://est.example.com', 'a/b', 'single path segment'),
    ('https://est.example.com', '/', 'single path segment'),
    ('https://est.example.com', '.', 'single path segment'),
    ('https://est.example.com', '..', 'single path segment'),
    ('https://[2001:db8::1', None, 'cannot be parsed'),
    ('https://2001:db8::1]/', None, 'cannot be parsed'),
    ('https://[not-an-address]/', None, 'cannot be parsed'),
])
def test_build_base_url_rejects(url, label, fragment):
    error = _raises('invalid_input', build_base_url, url, label)
    assert fragment in error.message


def test_url_for_operations():
    est = ESTTransport('https://est.example.com:8443', ca_label='ra1')
    assert est.url_for('simpleenroll') == 'https://est.example.com:8443/.well-known/est/ra1/simpleenroll'


# -- parse_retry_after ---------------------------------------------------------------------------

NOW = datetime.datetime(2015, 10, 21, 7, 28, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize('value, expected', [
    ('120', 120),
    ('0', 0),
    (' 30 ', 30),
    ('007', 7),
    ('86400', 86400),
    ('86401', transport.MAX_RETRY_AFTER),               # capped, not refused
    ('86400000', transport.MAX_RETRY_AFTER),
    ('99999999999', transport.MAX_RETRY_AFTER),
    ('000000000000000000000000000120', 120),            # leading zeros are not a large number
    ('\t45\t', 45),
    ('Wed, 21 Oct 2015 07:29:00 GMT', 60),              # IMF-fixdate
    ('Wednesday, 21-Oct-15 07:38:00 GMT', 600),          # obsolete RFC 850 form
    ('Wed Oct 21 08:28:00 2015', 3600),                 # asctime form, no zone: UTC
    ('Wed, 21 Oct 2015 09:28:00 +0200', 0),             # the same instant as NOW
    ('Wed, 21 Oct 2015 07:28:00 -0000', 0),
    ('Wed, 21 Oct 2015 07:28:01 GMT', 1),
    ('Wed, 21 Oct 2015 07:27:00 GMT', 0),               # in the past: no waiting, never negative
    ('Thu, 01 Jan 1970 00:00:00 GMT', 0),
    ('Thu, 22 Oct 2015 07:28:00 GMT', 86400),           # exactly the cap
    ('Thu, 22 Oct 2015 07:28:01 GMT', transport.MAX_RETRY_AFTER),
    ('Fri, 31 Dec 9999 23:59:59 GMT', transport.MAX_RETRY_AFTER),
    (None, None),
    ('', None),
    ('   ', None),
    ('soon', None),
    ('-5', None),
    ('1.5', None),
    ('+60', None),
    ('0x10', None),
    ('Wed, 32 Oct 2015 07:28:00 GMT', None),
    ('Wed, 21 Foo 2015 07:28:00 GMT', None),
    ('Mon, 01 Jan 99999999999999999999 00:00:00 GMT', None),
    ('Mon, 01 Jan 1 00:00:00 +9999', None),
    ('\u00b2', None),                                    # a Latin-1 header byte that str.isdigit() likes
    ('\u00b9\u00b2\u00b3', None),
    ('\u0663', None),                                    # ARABIC-INDIC DIGIT THREE: int() reads 3
    ('\u0661\u0662\u0660', None),
    ('\uff11\uff12\uff10', None),                        # fullwidth digits
    ('\u0967\u0968', None),                              # Devanagari digits
    ('1\u00a0', None),                                   # a no-break space is not optional whitespace
    ('1 2', None),
    ('Wed, \u0662\u0661 Oct 2015 07:29:00 GMT', None),   # email.utils would read the day with int()
    ('9' * 5000, transport.MAX_RETRY_AFTER),              # more digits than int() converts: capped, not refused
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_default_now():
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3600)
    assert 3590 <= parse_retry_after(email.utils.format_datetime(future, usegmt=True)) <= 3600


# -- construction --------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, fragment', [
    (dict(bootstrap=True, ca_path='/etc/ca.pem'), 'exclude each other'),
    (dict(client_key_path='/k.pem'), 'needs client_cert_path'),
    (dict(username='alice'), 'go together'),
    (dict(password='secret'), 'go together'),
])
def test_constructor_rejects(kwargs, fragment):
    error = _raises('invalid_input', ESTTransport, 'https://est.example.com', **kwargs)
    assert fragment in error.message


def test_constructor_rejects_bad_url():
    _raises('invalid_input', ESTTransport, 'http://est.example.com')


def test_accepts_given_session_and_keeps_its_settings():
    session = requests.Session()
    session.headers['X-Extra'] = 'kept'
    est = ESTTransport('https://est.example.com', session=session)
    assert est.session is session
    assert isinstance(session.get_adapter('https://est.example.com/'), transport._TLSAdapter)
    assert session.headers['User-Agent'] == transport.USER_AGENT


def test_tls_adapter_context():
    """TLS 1.2 at least, and no default trust loaded into the context (verify= brings the trust)."""
    adapter = transport._TLSAdapter()
    contexts = [adapter.poolmanager.connection_pool_kw['ssl_context'],
                adapter.proxy_manager_for('http://proxy.example.com:3128').connection_pool_kw['ssl_context']]
    for context in contexts:
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
        assert context.cert_store_stats()['x509_ca'] == 0
        # Set explicitly, whatever the Python version: every certificate of the bundle is an anchor.
        assert context.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN


# -- what is sent ---------------------------------------------------------------------------------

def test_post_sends_base64_with_headers(pki):
    der = _pki.der(pki.csr)
    est, adapter = fake_transport(Answer(200, PKCS7, b'MIIB'), ca_path='/etc/pki/est-ca.pem')
    response = est.post('simpleenroll', der, 'application/pkcs10', accept='application/pkcs7-mime')
    assert response.status == 200
    (sent,) = adapter.sent
    request = sent.request
    assert request.method == 'POST'
    assert request.url == BASE + '/simpleenroll'
    assert request.headers['Content-Type'] == 'application/pkcs10'
    assert request.headers['Content-Transfer-Encoding'] == 'base64'
    assert request.headers['Accept'] == 'application/pkcs7-mime'
    assert request.headers['User-Agent'] == transport.USER_AGENT
    body = request.body
    assert isinstance(body, bytes)
    assert request.headers['Content-Length'] == str(len(body))
    assert body.endswith(b'\n') and b'\r' not in body
    lines = body[:-1].split(b'\n')
    assert all(len(line) == 64 for line in lines[:-1]) and 0 < len(lines[-1]) <= 64
    assert base64.b64decode(b''.join(lines), validate=True) == der
    assert sent.stream is True
    assert sent.timeout == transport.DEFAULT_TIMEOUT


def test_get_sends_no_body():
    est, adapter = fake_transport(Answer(200, PKCS7, b'MIIB'))
    est.get('cacerts', accept='application/pkcs7-mime')
    est.get('csrattrs')
    first, second = adapter.sent
    assert first.request.method == 'GET' and first.request.url == BASE + '/cacerts'
    assert first.request.body is None
    assert first.request.headers['Accept'] == 'application/pkcs7-mime'
    assert second.request.url == BASE + '/csrattrs'
    assert second.request.headers['Accept'] == '*/*'
    assert est.requests_made == 2


@pytest.mark.parametrize('timeout, expected', [(None, 30), (0, 30), (5, 5)])
def test_timeout_passed(timeout, expected):
    est, adapter = fake_transport(Answer(200, PKCS7, b'x'), timeout=timeout)
    est.get('cacerts')
    assert adapter.sent[0].timeout == expected


def test_verify_is_ca_path_despite_environment(monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/etc/ssl/requests-bundle.pem')
    monkeypatch.setenv('CURL_CA_BUNDLE', '/etc/ssl/curl-bundle.pem')
    est, adapter = fake_transport(Answer(200, PKCS7, b'x'), ca_path='/etc/pki/est-ca.pem')
    est.get('cacerts')
    est.post('simpleenroll', b'\x30\x00', 'application/pkcs10')
    assert [sent.verify for sent in adapter.sent] == ['/etc/pki/est-ca.pem', '/etc/pki/est-ca.pem']


def test_bootstrap_does_not_verify_and_sends_no_credentials(monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/etc/ssl/requests-bundle.pem')
    monkeypatch.setenv('CURL_CA_BUNDLE', '/etc/ssl/curl-bundle.pem')
    est, adapter = fake_transport(Answer(200, PKCS7, b'x'), bootstrap=True, username='alice', password='secret')
    est.get('cacerts')
    (sent,) = adapter.sent
    assert sent.verify is False
    assert 'Authorization' not in sent.headers


def test_bootstrap_does_not_send_netrc_credentials(monkeypatch, tmp_path):
    """RFC 7030 §3.3.1: no password to a server whose identity is unverified, not even one from ~/.netrc."""
    netrc = tmp_path / 'netrc'
    netrc.write_text('machine est.example.com login alice password secret\n')
    netrc.chmod(0o600)
    monkeypatch.setenv('NETRC', str(netrc))
    est, adapter = fake_transport(Answer(200, PKCS7, b'x'), bootstrap=True)
    est.get('cacerts')
    assert 'Authorization' not in adapter.sent[0].headers


def test_basic_auth_sent_when_verified():
    est, adapter = fake_transport(Answer(200, PKCS7, b'x'), ca_path='/etc/pki/est-ca.pem', username='alice', password='s3cr:t')
    est.post('simpleenroll', b'\x30\x00', 'application/pkcs10')
    expected = 'Basic ' + base64.b64encode(b'alice:s3cr:t').decode('ascii')
    assert adapter.sent[0].headers['Authorization'] == expected
    assert adapter.sent[0].verify == '/etc/pki/est-ca.pem'


def test_no_auth_without_credentials():
    est, adapter = fake_transport(Answer(200, PKCS7, b'x'))
    est.get('cacerts')
    assert 'Authorization' not in adapter.sent[0].headers
    assert adapter.sent[0].verify is True


@pytest.mark.parametrize('kwargs, expected', [
    (dict(client_cert_path='/c.pem', client_key_path='/k.pem'), ('/c.pem', '/k.pem')),
    (dict(client_cert_path='/both.pem'), '/both.pem'),
    (dict(), None),
])
def test_client_certificate_passed_through(kwargs, expected):
    est, adapter = fake_transport(Answer(200, PKCS7, b'x'), ca_path='/ca.pem', **kwargs)
    est.post('simplereenroll', b'\x30\x00', 'application/pkcs10')
    assert adapter.sent[0].cert == expected


# -- answers: success ------------------------------------------------------------------------------

@pytest.mark.parametrize('status', [200, 201, 204])
def test_success_statuses(status):
    body = b'' if status == 204 else b'MIIBAAAA\r\n'
    est, _adapter = fake_transport(Answer(status, PKCS7 if body else {}, body))
    response = est.get('cacerts')
    assert response.status == status
    assert response.body == body
    assert response.url == BASE + '/cacerts'
    assert response.content_type == (PKCS7['Content-Type'] if body else '')


def test_success_body_read_completely():
    body = b'A' * 200000
    est, _adapter = fake_transport(Answer(200, PKCS7, body))
    assert est.get('cacerts').body == body


def test_oversized_answer(monkeypatch):
    monkeypatch.setattr(transport, 'MAX_RESPONSE_BYTES', 1000)
    est, _adapter = fake_transport(Answer(200, PKCS7, b'A' * 1001))
    error = _raises('bad_response', est.get, 'cacerts')
    assert 'larger than 1000 bytes' in error.message


class _CutOff:
    """A raw body that breaks after the first chunk."""

    def __init__(self):
        self.calls = 0

    def read(self, size=-1, **_kwargs):
        self.calls += 1
        if self.calls == 1:
            return b'MIIB'
        raise requests.exceptions.ChunkedEncodingError('Connection broken: IncompleteRead(4 bytes read, 100 more expected)')

    def close(self):
        pass


def test_answer_cut_off():
    est, _adapter = fake_transport(Answer(200, PKCS7, raw=_CutOff()))
    error = _raises('connection', est.get, 'cacerts')
    assert 'cut off' in error.message and 'IncompleteRead' in error.message


# -- answers: 202 -----------------------------------------------------------------------------------

def _pending(headers):
    est, _adapter = fake_transport(Answer(202, headers, b'queued'))
    with pytest.raises(ESTPending) as info:
        est.post('simpleenroll', b'\x30\x00', 'application/pkcs10')
    error = info.value
    assert isinstance(error, ESTError)
    assert error.kind == 'pending' and error.status == 202
    assert error.details == {'retry_after': error.retry_after}
    return error


def test_202_retry_after_seconds():
    error = _pending({'Retry-After': '600'})
    assert error.retry_after == 600
    assert 'retry after 600s' in error.message
    assert error.as_dict() == {'error_kind': 'pending', 'http_status': 202, 'retry_after': 600}


def test_202_retry_after_http_date():
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=120)
    error = _pending({'Retry-After': email.utils.format_datetime(when, usegmt=True)})
    assert isinstance(error.retry_after, int)
    assert 110 <= error.retry_after <= 120


def test_202_retry_after_past_date():
    assert _pending({'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT'}).retry_after == 0


@pytest.mark.parametrize('value', ['tomorrow', '-1', '\u00b2', '\u0663', 'Mon, 01 Jan 99999999999999999999 00:00:00 GMT'])
def test_202_retry_after_garbage(value):
    error = _pending({'Retry-After': value})
    assert error.retry_after is None
    assert 'retry after' not in error.message


@pytest.mark.parametrize('value', ['9' * 5000, '99999999999', 'Fri, 31 Dec 9999 23:59:59 GMT'])
def test_202_retry_after_capped(value):
    error = _pending({'Retry-After': value})
    assert error.retry_after == transport.MAX_RETRY_AFTER == 86400
    assert 'retry after 86400s' in error.message


def test_202_without_retry_after():
    assert _pending({}).retry_after is None


def test_202_recorded():
    est, _adapter = fake_transport(Answer.recorded('simpleenroll_202.bin'))
    with pytest.raises(ESTPending) as info:
        est.post('simpleenroll', b'\x30\x00', 'application/pkcs10')
    assert info.value.retry_after == 600


# -- answers: errors ----------------------------------------------------------------------------------

def test_401_with_challenge():
    challenge = 'Basic realm="estrealm", Digest realm="est", qop="auth", nonce="abc"'
    est, _adapter = fake_transport(Answer(401, dict(TEXT, **{'WWW-Authenticate': challenge}), b'who are you?'))
    error = _raises('auth_required', est.post, 'simpleenroll', b'\x30\x00', 'application/pkcs10')
    assert error.status == 401
    assert challenge in error.message
    assert 'who are you?' in error.message
    assert error.details == {'www_authenticate': challenge}
    assert error.as_dict() == {'error_kind': 'auth_required', 'http_status': 401, 'www_authenticate': challenge}


def test_401_without_challenge():
    est, _adapter = fake_transport(Answer(401, {}, b''))
    error = _raises('auth_required', est.get, 'cacerts')
    assert 'WWW-Authenticate' not in error.message
    assert error.details == {'www_authenticate': ''}


def test_401_recorded():
    est, _adapter = fake_transport(Answer.recorded('simpleenroll_401.bin'))
    error = _raises('auth_required', est.post, 'simpleenroll', b'\x30\x00', 'application/pkcs10')
    assert error.details['www_authenticate'] == 'Basic realm="estrealm"'
    assert 'authentication required' in error.message


def test_403():
    est, _adapter = fake_transport(Answer(403, TEXT, b'certificate not authorized for this RA'))
    error = _raises('forbidden', est.post, 'simplereenroll', b'\x30\x00', 'application/pkcs10')
    assert error.status == 403
    assert 'certificate not authorized for this RA' in error.message


@pytest.mark.parametrize('status', [404, 501])
def test_not_supported(status):
    est, _adapter = fake_transport(Answer(status, TEXT, b'no such operation'))
    error = _raises('not_supported', est.get, 'csrattrs')
    assert error.status == status
    assert 'csrattrs' in error.message and BASE + '/csrattrs' in error.message
    assert 'no such operation' in error.message


@pytest.mark.parametrize('status', [400, 409, 413, 415, 422])
def test_bad_request(status):
    est, _adapter = fake_transport(Answer(status, TEXT, b'CSR signature invalid\n'))
    error = _raises('bad_request', est.post, 'simpleenroll', b'\x30\x00', 'application/pkcs10')
    assert error.status == status
    assert 'HTTP %d' % status in error.message
    assert error.message.endswith(': CSR signature invalid')


@pytest.mark.parametrize('ctype', ['Text/Plain', 'TEXT/HTML; charset=ISO-8859-1', 'application/json', 'application/problem+json', ''])
def test_server_text_for_textual_types(ctype):
    headers = {'Content-Type': ctype} if ctype else {}
    est, _adapter = fake_transport(Answer(400, headers, b'the reason'))
    error = _raises('bad_request', est.get, 'csrattrs')
    assert error.message.endswith(': the reason')


def test_server_text_not_for_binary_types():
    est, _adapter = fake_transport(Answer(400, {'Content-Type': 'application/pkcs7-mime'}, b'\x30\x82binary'))
    error = _raises('bad_request', est.get, 'csrattrs')
    assert error.message == 'the server rejected the csrattrs request (HTTP 400)'


@pytest.mark.parametrize('status, kind', [(400, 'bad_request'), (500, 'http')])
def test_error_answer_is_kept_for_the_caller(status, kind):
    # A CMC failure comes as 4xx/5xx with a PKIResponse body (RFC 7030 §4.3.2): the caller reads it.
    ctype = {'Content-Type': 'application/pkcs7-mime; smime-type=CMC-response'}
    est, _adapter = fake_transport(Answer(status, ctype, b'MIIBbase64'))
    error = _raises(kind, est.post, 'fullcmc', b'\x30\x00', 'application/pkcs7-mime')
    assert error.response.status == status
    assert error.response.body == b'MIIBbase64'
    assert error.response.content_type == ctype['Content-Type']
    assert 'response' not in error.as_dict()


def test_server_text_is_short_and_printable():
    est, _adapter = fake_transport(Answer(500, TEXT, b'\x1b[31mboom\x00\x07' + b'x' * 1000))
    error = _raises('http', est.get, 'cacerts')
    assert error.message.endswith('...')
    assert len(error.message) < 400
    assert error.message.isprintable()


@pytest.mark.parametrize('status', [500, 502, 418, 299, 100])  # 503 and 429 are busy (test_waiting.py)
def test_other_statuses(status):
    est, _adapter = fake_transport(Answer(status, TEXT, b'Service Unavailable: CA offline'))
    error = _raises('http', est.get, 'cacerts')
    assert error.status == status
    assert error.message.startswith('HTTP %d from %s/cacerts' % (status, BASE))
    assert 'CA offline' in error.message


# -- redirects ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('status', [301, 302, 303, 307, 308])
def test_same_origin_redirect_followed(status):
    est, adapter = fake_transport([
        Answer(status, {'Location': '/est-v2/.well-known/est/cacerts'}),
        Answer(200, PKCS7, b'MIIB'),
    ], ca_path='/ca.pem', username='alice', password='secret')
    response = est.get('cacerts')
    assert response.status == 200
    assert response.url == 'https://est.example.com/est-v2/.well-known/est/cacerts'
    assert [s.request.url for s in adapter.sent] == [BASE + '/cacerts', response.url]
    assert adapter.sent[1].verify == '/ca.pem'
    assert adapter.sent[1].headers['Authorization'].startswith('Basic ')


@pytest.mark.parametrize('status', [307, 308])
def test_same_origin_redirect_keeps_post_body(status):
    est, adapter = fake_transport([Answer(status, {'Location': BASE + '/ra2/simpleenroll'}), Answer(200, PKCS7, b'MIIB')])
    est.post('simpleenroll', b'\x30\x03\x02\x01\x05', 'application/pkcs10')
    first, second = adapter.sent
    assert second.request.method == 'POST'
    assert second.request.body == first.request.body
    assert second.request.headers['Content-Type'] == 'application/pkcs10'


@pytest.mark.parametrize('status', [301, 302, 303])
@pytest.mark.parametrize('operation', ['simpleenroll', 'simplereenroll', 'serverkeygen', 'fullcmc'])
def test_post_redirect_that_would_become_get_is_refused(status, operation):
    """RFC 9110: 303 (and 301/302 for POST) mean GET elsewhere; EST has no GET of these, so nothing is sent again."""
    location = BASE + '/ra2/' + operation
    est, adapter = fake_transport([Answer(status, {'Location': location}, b'see other'), Answer(200, PKCS7, b'MIIB')],
                                  ca_path='/ca.pem', username='alice', password='secret')
    error = _raises('http', est.post, operation, b'\x30\x03\x02\x01\x05', 'application/pkcs10')
    assert error.status == status
    assert error.message.startswith('HTTP %d from %s/%s in answer to POST %s' % (status, BASE, operation, operation))
    assert 'Location %r' % location in error.message
    assert 'not sent again' in error.message
    assert error.response is None  # the redirect's body is not read as an EST (CMC) answer
    assert len(adapter.sent) == 1 and est.requests_made == 1


def test_post_redirect_303_without_location():
    est, adapter = fake_transport(Answer(303, {}))
    error = _raises('http', est.post, 'simpleenroll', b'\x30\x03\x02\x01\x05', 'application/pkcs10')
    assert error.status == 303 and 'no Location header' in error.message
    assert len(adapter.sent) == 1


def test_post_redirect_303_after_a_307():
    """A 307 keeps the POST; the 303 that answers it is refused like the first answer would be."""
    est, adapter = fake_transport([Answer(307, {'Location': BASE + '/v2/simpleenroll'}),
                                   Answer(303, {'Location': BASE + '/v2/status/7'}), Answer(200, PKCS7, b'MIIB')])
    error = _raises('http', est.post, 'simpleenroll', b'\x30\x03\x02\x01\x05', 'application/pkcs10')
    assert error.status == 303 and BASE + '/v2/simpleenroll in answer to POST' in error.message
    assert [s.request.method for s in adapter.sent] == ['POST', 'POST']


def test_post_redirect_unprintable_location_is_escaped():
    est, _adapter = fake_transport(Answer(303, {'Location': '/x\x1b[31m' + 'y' * 500}))
    error = _raises('http', est.post, 'simpleenroll', b'\x30\x03\x02\x01\x05', 'application/pkcs10')
    assert '\x1b' not in error.message and '\\x1b' in error.message
    assert 'y' * 201 not in error.message and '...' in error.message


@pytest.mark.parametrize('location', [
    'https://evil.example.net/.well-known/est/cacerts',
    'https://est.example.com:8443/.well-known/est/cacerts',
    'http://est.example.com/.well-known/est/cacerts',
    '//evil.example.net/cacerts',
])
def test_cross_origin_redirect_refused(location):
    est, adapter = fake_transport([Answer(302, {'Location': location}), Answer(200, PKCS7, b'MIIB')],
                                  username='alice', password='secret')
    error = _raises('http', est.get, 'cacerts')
    assert error.status == 302
    assert 'another origin' in error.message
    assert len(adapter.sent) == 1


def test_redirect_with_explicit_default_port_is_same_origin():
    est, adapter = fake_transport([Answer(302, {'Location': 'https://est.example.com:443/v2/.well-known/est/cacerts'}),
                                   Answer(200, PKCS7, b'MIIB')])
    assert est.get('cacerts').status == 200
    assert len(adapter.sent) == 2


def test_redirect_without_location():
    est, _adapter = fake_transport(Answer(302, {}))
    error = _raises('http', est.get, 'cacerts')
    assert 'without a Location header' in error.message


@pytest.mark.parametrize('location', ['https://est.example.com:abc/', 'https://est.example.com:99999/x', '//est.example.com:-1/'])
def test_redirect_to_unusable_location(location):
    est, adapter = fake_transport([Answer(302, {'Location': location}), Answer(200, PKCS7, b'MIIB')])
    error = _raises('http', est.get, 'cacerts')
    assert error.status == 302
    assert 'unusable Location header' in error.message and repr(location) in error.message
    assert len(adapter.sent) == 1


@pytest.mark.parametrize('location', ['https://[oops/', '//[::1', 'http://['])
def test_redirect_to_unparsable_location(location):
    est, adapter = fake_transport([Answer(302, {'Location': location}), Answer(200, PKCS7, b'MIIB')])
    with pytest.raises(ESTError):
        est.get('cacerts')
    assert len(adapter.sent) == 1


def test_redirect_loop():
    est, adapter = fake_transport(Answer(302, {'Location': BASE + '/cacerts'}))
    error = _raises('http', est.get, 'cacerts')
    assert 'too many redirects' in error.message
    assert len(adapter.sent) == transport.MAX_REDIRECTS + 1


# -- failures below HTTP -----------------------------------------------------------------------------------

def _verify_failed():
    reason = ssl.SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: '
                                             'unable to get local issuer certificate (_ssl.c:1006)')
    inner = urllib3.exceptions.MaxRetryError(None, BASE + '/cacerts', urllib3.exceptions.SSLError(reason))
    return requests.exceptions.SSLError(inner)


@pytest.mark.parametrize('exc, kind, fragments', [
    (_verify_failed(), 'tls', ['TLS with %s/cacerts failed' % BASE, 'CERTIFICATE_VERIFY_FAILED']),
    (requests.exceptions.SSLError('hostname mismatch'), 'tls', ['hostname mismatch']),
    (requests.exceptions.ConnectionError(urllib3.exceptions.NewConnectionError(None, 'Connection refused')),
     'connection', ['could not talk to', 'Connection refused']),
    (requests.exceptions.ConnectTimeout('connect timed out'), 'connection', ['timed out after 30s', 'connect timed out']),
    (requests.exceptions.ReadTimeout('read timed out'), 'connection', ['timed out after 30s']),
    (requests.exceptions.ProxyError('proxy said no'), 'connection', ['could not talk to', 'proxy said no']),
    (requests.exceptions.InvalidHeader('bad header'), 'connection', ['failed', 'bad header']),
    (OSError(24, 'Too many open files'), 'connection', ['Too many open files']),
    (ValueError('odd'), 'connection', ['odd']),
])
def test_transport_exceptions(exc, kind, fragments):
    est, _adapter = fake_transport(exc)
    error = _raises(kind, est.get, 'cacerts')
    for fragment in fragments:
        assert fragment in error.message
    assert error.status is None


def test_reason_is_cut_short():
    est, _adapter = fake_transport(requests.exceptions.ConnectionError('x' * 1000))
    error = _raises('connection', est.get, 'cacerts')
    assert len(error.message) < 400 and error.message.endswith('...')
