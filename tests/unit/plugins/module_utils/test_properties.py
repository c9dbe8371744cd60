# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based tests: whatever a server or a user throws at the engine, it answers with ESTError or a result."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.pki.est.plugins.module_utils import cacerts, certinfo, codecs, transport
from ansible_collections.pki.est.plugins.module_utils.errors import ERROR_KINDS, ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fakehttp import Answer, fake_transport

# Modest example counts: the whole unit suite has to stay within a few seconds.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _body(base):
    """Valid answers in several layouts."""
    text = base64.b64encode(base)
    return st.sampled_from([
        base,
        text,
        codecs.encode_body(base),
        b'\r\n'.join(text[i:i + 76] for i in range(0, len(text), 76)) + b'\r\n',
        text.rstrip(b'=') + b'\x00',
        b'-----BEGIN PKCS7-----\n' + codecs.encode_body(base) + b'-----END PKCS7-----\n',
    ])


@st.composite
def mutated(draw, bodies):
    """A valid body, then a few random edits: flips, cuts, insertions, duplications."""
    data = bytearray(draw(bodies))
    for _step in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(['flip', 'delete', 'insert', 'truncate', 'duplicate', 'replace_char']))
        size = len(data)
        if action == 'truncate':
            del data[draw(st.integers(0, size)):]
            continue
        if not size:
            data += draw(st.binary(max_size=8))
            continue
        position = draw(st.integers(0, size - 1))
        if action == 'flip':
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == 'delete':
            del data[position:position + draw(st.integers(1, 16))]
        elif action == 'insert':
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif action == 'duplicate':
            data[position:position] = data[position:position + draw(st.integers(1, 64))]
        else:
            data[position] = draw(st.sampled_from(b'=-+/\r\n\x00 0M\x80\xff'))
    return bytes(data)


@pytest.fixture(scope='module')
def valid_der(pki):
    return _pki.pkcs7_in_order([pki.intermediate, pki.root])


def _only_est_errors(call, *args):
    try:
        return call(*args)
    except ESTError as exc:
        assert exc.kind in ERROR_KINDS
        assert isinstance(exc.message, str) and exc.message
        return exc


def _decode_and_load(body):
    return codecs.load_certs_only(codecs.decode_body(body))


# -- bodies --------------------------------------------------------------------------------------------

@FAST
@given(st.binary(max_size=512))
@example(b'')
@example(b'\x30')
@example(b'\x30\x80\x00\x00')
@example(b'\x30\x84\xff\xff\xff\xff')
@example(b'\x30\x89' + b'\x01' * 9)
@example(b'-----BEGIN PKCS7-----\n-----END PKCS7-----')
def test_decode_body_random_bytes(body):
    result = _only_est_errors(codecs.decode_body, body)
    if isinstance(result, ESTError):
        assert result.kind == 'bad_response'
    else:
        assert isinstance(result, bytes) and result


@FAST
@given(st.text(alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \r\n\t\x00', max_size=300))
def test_decode_body_base64ish_text(text):
    result = _only_est_errors(codecs.decode_body, text.encode('ascii'))
    assert not isinstance(result, ESTError) or result.kind == 'bad_response'


@FAST
@given(st.binary(max_size=512))
@example(_pki._tlv(0x30, b''))
@example(_pki._tlv(0x30, _pki._tlv(0x06, bytes.fromhex('2a864886f70d010702'))))
def test_load_certs_only_random_bytes(der):
    result = _only_est_errors(codecs.load_certs_only, der)
    assert isinstance(result, (ESTError, list))
    if isinstance(result, ESTError):
        assert result.kind == 'bad_response'


@SLOW
@given(st.data())
def test_mutated_valid_bodies(valid_der, data):
    body = data.draw(mutated(_body(valid_der)))
    result = _only_est_errors(_decode_and_load, body)
    if isinstance(result, ESTError):
        assert result.kind == 'bad_response'
    else:
        assert all(hasattr(cert, 'public_key') for cert in result)


@SLOW
@given(st.data())
def test_mutated_der(valid_der, data):
    der = data.draw(mutated(st.just(valid_der)))
    result = _only_est_errors(codecs.load_certs_only, der)
    assert isinstance(result, (ESTError, list))


@FAST
@given(st.binary(min_size=1, max_size=300))
def test_encode_decode_round_trip(content):
    der = _pki._tlv(0x30, content)
    assert codecs.decode_body(codecs.encode_body(der)) == der


# -- headers ---------------------------------------------------------------------------------------------

@FAST
@given(st.one_of(st.none(), st.text(max_size=120), st.binary(max_size=120).map(lambda b: b.decode('latin-1'))))
@example('application/pkcs7-mime; smime-type="certs-only"')
@example(';;;=;"=";')
@example('a/b; x="')
@example('a/b; x=""')
def test_parse_media_type_never_fails(value):
    media, params = codecs.parse_media_type(value)
    assert isinstance(media, str) and isinstance(params, dict)
    assert media == media.strip()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert codecs.media_type_is(value, codecs.PKCS7_MEDIA_TYPES) in (True, False)


@FAST
@given(st.sampled_from(codecs.PKCS7_MEDIA_TYPES), st.lists(st.tuples(st.from_regex(r'\A[a-zA-Z][a-zA-Z-]{0,10}\Z'),
                                                                     st.from_regex(r'\A[a-zA-Z0-9-]{0,10}\Z')), max_size=3),
       st.randoms(use_true_random=False))
def test_media_type_case_and_parameters(media, params, rnd):
    spelled = ''.join(c.upper() if rnd.random() < 0.5 else c for c in media)
    value = spelled + ''.join('; %s=%s' % (k, ('"%s"' % v) if rnd.random() < 0.5 else v) for k, v in params)
    parsed_media, parsed_params = codecs.parse_media_type(value)
    assert parsed_media == media
    assert parsed_params == dict((k.lower(), v) for k, v in params)
    assert codecs.media_type_is(value, codecs.PKCS7_MEDIA_TYPES)


NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


@FAST
@given(st.one_of(st.none(), st.text(max_size=60), st.binary(max_size=60).map(lambda b: b.decode('latin-1')),
                 st.from_regex(r'\A[0-9]{1,30}\Z'),
                 st.datetimes(timezones=st.just(datetime.timezone.utc)).map(lambda d: d.strftime('%a, %d %b %Y %H:%M:%S GMT'))))
@example('\u00b2')
@example('9' * 5000)
@example('Mon, 01 Jan 99999999999999999999 00:00:00 GMT')
@example('Fri, 31 Dec 9999 23:59:59 -2359')
@example('Mon, 01 Jan 0001 00:00:00 +2359')
def test_parse_retry_after_never_fails(value):
    result = transport.parse_retry_after(value, now=NOW)
    assert result is None or (isinstance(result, int) and 0 <= result <= transport.MAX_RETRY_AFTER)
    if value is not None and any(ord(ch) > 126 for ch in value):
        assert result is None  # ASCII only: no other digits, no other blanks


@FAST
@given(st.integers(min_value=0, max_value=10 ** 12))
def test_parse_retry_after_seconds(seconds):
    assert transport.parse_retry_after(str(seconds)) == min(seconds, transport.MAX_RETRY_AFTER)


@FAST
@given(st.text(alphabet=st.characters(categories=['Nd']), min_size=1, max_size=12))
@example('\u0663')
def test_parse_retry_after_unicode_digits(digits):
    """Only ASCII digits are delay-seconds, whatever str.isdigit() and int() accept."""
    expected = min(int(digits), transport.MAX_RETRY_AFTER) if all('0' <= ch <= '9' for ch in digits) else None
    assert transport.parse_retry_after(digits) == expected


@FAST
@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=20)))
@example('https://[2001:db8::1', None)
@example('https://est.example.com:99999', None)
@example('https://est.example.com', '..')
def test_build_base_url_never_fails(host, label):
    for url in (host, 'https://' + host):
        result = _only_est_errors(transport.build_base_url, url, label)
        if isinstance(result, ESTError):
            assert result.kind == 'invalid_input'
        else:
            assert result.startswith('https://') and '/.well-known/est' in result


# -- fingerprints ----------------------------------------------------------------------------------------

@FAST
@given(st.one_of(st.none(), st.text(max_size=120), st.from_regex(r'\A(sha256[: ])?[0-9a-fA-F: ]{60,100}\Z')))
def test_normalize_fingerprint_never_fails(value):
    result = _only_est_errors(certinfo.normalize_fingerprint, value)
    if isinstance(result, ESTError):
        assert result.kind == 'invalid_input'
    else:
        assert re.match(r'\A[0-9a-f]{64}\Z', result)


@FAST
@given(st.binary(min_size=32, max_size=32), st.sampled_from(['', ':', ' ']), st.booleans(),
       st.sampled_from(['', 'sha256:', 'SHA256:', 'sha256 ', 'SHA256 ']), st.sampled_from(['', ' ', '\n', '\r\n']))
def test_normalize_fingerprint_formats(digest, separator, upper, prefix, padding):
    text = separator.join('%02x' % b for b in bytearray(digest))
    if upper:
        text = text.upper()
    assert certinfo.normalize_fingerprint(padding + prefix + text + padding) == digest.hex()


# -- the whole path: random answers through the real transport -------------------------------------------

_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=60)


@SLOW
@given(status=st.sampled_from([200, 201, 202, 204, 301, 302, 400, 401, 403, 404, 415, 500, 501, 503]),
       content_type=st.one_of(st.sampled_from(['application/pkcs7-mime', 'Application/PKCS7-MIME; smime-type=certs-only',
                                               'text/html', 'text/plain', '']), _HEADER_TEXT),
       retry_after=st.one_of(st.none(), _HEADER_TEXT),
       location=st.one_of(st.none(), _HEADER_TEXT),
       body=st.one_of(st.binary(max_size=200), st.just(b'MIIB')))
@example(status=302, content_type='', retry_after=None, location='https://est.example.com:abc/', body=b'')
@example(status=301, content_type='', retry_after=None, location='https://[oops/', body=b'')
@example(status=202, content_type='', retry_after='\u00b2', location=None, body=b'')
@example(status=202, content_type='', retry_after='Mon, 01 Jan 99999999999999999999 00:00:00 GMT', location=None, body=b'')
@example(status=200, content_type='Application/PKCS7-MIME', retry_after=None, location=None, body=b'\x30\x03\x02\x01\x05')
def test_fetch_cacerts_random_answers(status, content_type, retry_after, location, body):
    headers = {'Content-Type': content_type}
    if retry_after is not None:
        headers['Retry-After'] = retry_after
    if location is not None:
        headers['Location'] = location
    est, _adapter = fake_transport(Answer(status, headers, body))
    result = _only_est_errors(cacerts.fetch_cacerts, est)
    assert isinstance(result, (ESTError, list))
    if isinstance(result, ESTError) and result.kind == 'pending':
        assert result.retry_after is None or result.retry_after >= 0
