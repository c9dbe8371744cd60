# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Message encodings: RFC 7030 §4 and the RFC 8951 base64 clarifications."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import itertools
import warnings

import pytest

from ansible_collections.pki.est.plugins.module_utils import codecs
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki


def _wrap(text, width, eol):
    return eol.join(text[i:i + width] for i in range(0, len(text), width)) + eol


# How servers in the wild lay out a base64 body (RFC 8951 §3: receivers must cope with all of them).
LAYOUTS = {
    '64 columns LF': lambda t: _wrap(t, 64, b'\n'),
    '64 columns CRLF': lambda t: _wrap(t, 64, b'\r\n'),
    '76 columns LF': lambda t: _wrap(t, 76, b'\n'),
    '76 columns CRLF': lambda t: _wrap(t, 76, b'\r\n'),
    '64 columns, no final newline': lambda t: _wrap(t, 64, b'\n')[:-1],
    'single line': lambda t: t,
    'single line, newline': lambda t: t + b'\n',
    'single line, CRLF': lambda t: t + b'\r\n',
    'trailing spaces and tabs': lambda t: _wrap(t, 64, b'\n') + b'  \t \r\n',
    'trailing NUL': lambda t: t + b'\x00',
    'trailing NULs after CRLF': lambda t: _wrap(t, 76, b'\r\n') + b'\x00\x00\x00',
    'leading blank line': lambda t: b'\r\n' + _wrap(t, 64, b'\r\n'),
    'missing padding': lambda t: t.rstrip(b'='),
    'missing padding, wrapped': lambda t: _wrap(t.rstrip(b'='), 76, b'\r\n'),
    'one pad missing': lambda t: t[:-1] if t.endswith(b'==') else t,
    'mixed line ends': lambda t: b''.join(t[i:i + 20] + (b'\r\n', b'\n', b' ')[i // 20 % 3] for i in range(0, len(t), 20)),
}


def _synthetic(content_length):
    """A DER SEQUENCE of a chosen size (so that every base64 padding case occurs)."""
    return _pki._tlv(0x30, b'\x05' * content_length)


@pytest.fixture(scope='module')
def messages(pki):
    """DER bodies: real PKCS#7 answers and synthetic sequences of each length modulo 3."""
    result = {
        'one cert': _pki.pkcs7_der([pki.root]),
        'chain': _pki.pkcs7_der([pki.intermediate, pki.root]),
        'rollover': _pki.pkcs7_der(pki.rollover.certs),
    }
    for size in (1, 2, 3, 126, 127, 128, 300):
        result['sequence of %d' % size] = _synthetic(size)
    return result


# -- decode_body: what we accept -------------------------------------------------------------

@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_decode_body_base64_layouts(messages, layout):
    for label, der in messages.items():
        body = LAYOUTS[layout](base64.b64encode(der))
        assert codecs.decode_body(body) == der, label


def test_padding_cases_are_really_exercised(messages):
    endings = set(base64.b64encode(der).count(b'=') for der in messages.values())
    assert endings == {0, 1, 2}


def test_decode_body_pkcs7_is_loadable(pki):
    der = _pki.pkcs7_der([pki.intermediate, pki.root])
    body = _wrap(base64.b64encode(der), 76, b'\r\n') + b'\x00'
    certs = codecs.load_certs_only(codecs.decode_body(body))
    assert sorted(_pki.fingerprint(c) for c in certs) == sorted([_pki.fingerprint(pki.intermediate), _pki.fingerprint(pki.root)])


def test_decode_body_raw_der(messages):
    for label, der in messages.items():
        assert codecs.decode_body(der) == der, label


def test_decode_body_raw_der_long_form_lengths():
    for size in (200, 70000):  # one and three length octets
        der = _synthetic(size)
        assert der[1] & 0x80
        assert codecs.decode_body(der) == der


@pytest.mark.parametrize('eol', [b'\n', b'\r\n'])
def test_decode_body_pem_armored(pki, eol):
    certs = [pki.intermediate, pki.root]
    pem = _pki.pkcs7_pem(certs).replace(b'\n', eol)
    assert codecs.decode_body(pem) == _pki.pkcs7_der(certs)
    # Text around the armor, as some servers add, is ignored.
    assert codecs.decode_body(b'CA certificates follow' + eol + pem + eol + b'-- end' + eol) == _pki.pkcs7_der(certs)


def test_decode_body_bytearray(messages):
    der = messages['chain']
    assert codecs.decode_body(bytearray(base64.b64encode(der))) == der


# -- decode_body: what we refuse, always as ESTError('bad_response') ------------------------

@pytest.mark.parametrize('body', [None, b'', b' ', b'\r\n', b'\n\n\t', b'\x00', b'\x00\x00\r\n \x00'])
def test_decode_body_empty(body):
    with pytest.raises(ESTError) as info:
        codecs.decode_body(body, what='/cacerts')
    assert info.value.kind == 'bad_response'
    assert info.value.message == 'the /cacerts body is empty'


@pytest.mark.parametrize('body', [b'\x0b\x0c', b'-----BEGIN PKCS7-----\n\n-----END PKCS7-----\n'])
def test_decode_body_decodes_to_nothing(body):
    with pytest.raises(ESTError) as info:
        codecs.decode_body(body)
    assert info.value.kind == 'bad_response'
    assert 'decodes to nothing' in info.value.message


@pytest.mark.parametrize('body', [
    b'<html><body>Internal error</body></html>',
    b'not base64 at all!',
    b'MIIB$$$$',
    b'\xff\xfe\xfd\xfc',
    b'\x30\x82\x01\x00\x01\x02',          # a DER header whose length does not match
    b'A',                                    # one base64 character cannot encode anything
    b'AAAAA',
    b'MI=IB',
    b'YQ===',
    b'-----BEGIN PKCS7-----\nnot*base64\n-----END PKCS7-----\n',
    '\u00e9t\u00e9'.encode('utf-8'),
])
def test_decode_body_garbage(body):
    with pytest.raises(ESTError) as info:
        codecs.decode_body(body, what='/simpleenroll')
    assert info.value.kind == 'bad_response'
    assert info.value.message.startswith('the /simpleenroll body is not valid base64 (')
    if not body.startswith(b'-----BEGIN'):
        assert '(%d bytes, starting %r)' % (len(body), body[:16]) in info.value.message


def test_decode_body_garbage_message_is_short_and_printable():
    body = b'\x01\x02<script>' * 1000
    with pytest.raises(ESTError) as info:
        codecs.decode_body(body)
    assert len(info.value.message) < 200
    assert info.value.message.isprintable()


def _decode_and_load(body):
    return codecs.load_certs_only(codecs.decode_body(body))


@pytest.mark.parametrize('fraction', [0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_truncated_bodies(pki, fraction):
    der = _pki.pkcs7_der([pki.intermediate, pki.root])
    text = base64.b64encode(der)
    for body in (der[:int(len(der) * fraction)], text[:int(len(text) * fraction)],
                 _wrap(text, 64, b'\n')[:int(len(text) * fraction)]):
        for cut in (body, body[:-1], body[:-2], body[:-3]):
            with pytest.raises(ESTError) as info:
                _decode_and_load(cut)
            assert info.value.kind == 'bad_response'


# -- encode_body: exact in what we send --------------------------------------------------------

@pytest.mark.parametrize('size', [1, 2, 3, 47, 48, 49, 96, 500, 1000])
def test_encode_body(size):
    der = _synthetic(size)
    body = codecs.encode_body(der)
    assert body.endswith(b'\n')
    assert b'\r' not in body
    lines = body[:-1].split(b'\n')
    assert all(len(line) == 64 for line in lines[:-1])
    assert 0 < len(lines[-1]) <= 64
    assert base64.b64decode(b''.join(lines), validate=True) == der
    assert codecs.decode_body(body) == der


# -- media types -------------------------------------------------------------------------------

@pytest.mark.parametrize('value, media, params', [
    ('application/pkcs7-mime', 'application/pkcs7-mime', {}),
    ('application/pkcs7-mime; smime-type=certs-only', 'application/pkcs7-mime', {'smime-type': 'certs-only'}),
    ('Application/PKCS7-MIME', 'application/pkcs7-mime', {}),
    ('application/pkcs7-mime; smime-type="certs-only"', 'application/pkcs7-mime', {'smime-type': 'certs-only'}),
    (' APPLICATION/Pkcs7-Mime ;SMIME-Type = certs-only ; Name="ca.p7c"', 'application/pkcs7-mime',
     {'smime-type': 'certs-only', 'name': 'ca.p7c'}),
    ('application/pkcs7-mime;smime-type=server-generated-key', 'application/pkcs7-mime',
     {'smime-type': 'server-generated-key'}),
    ('application/csrattrs; charset=binary', 'application/csrattrs', {'charset': 'binary'}),
    ('text/html; charset=UTF-8', 'text/html', {'charset': 'UTF-8'}),
    ('application/pkcs7-mime; broken; smime-type=certs-only', 'application/pkcs7-mime', {'smime-type': 'certs-only'}),
    ('application/pkcs7-mime; empty=""', 'application/pkcs7-mime', {'empty': ''}),
    ('', '', {}),
    (None, '', {}),
])
def test_parse_media_type(value, media, params):
    assert codecs.parse_media_type(value) == (media, params)


@pytest.mark.parametrize('value', [
    'application/pkcs7-mime',
    'application/pkcs7-mime; smime-type=certs-only',
    'Application/PKCS7-MIME',
    'application/pkcs7-mime; smime-type="certs-only"',
    'application/x-pkcs7-mime',
    'application/pkcs7-certificates',
    'APPLICATION/X-PKCS7-CERTIFICATES; charset=binary',
])
def test_media_type_is_pkcs7(value):
    assert codecs.media_type_is(value, codecs.PKCS7_MEDIA_TYPES)


@pytest.mark.parametrize('value', [
    'text/html', 'text/html; charset=utf-8', 'text/plain', 'application/octet-stream', 'application/pkcs10',
    'application/pkcs7-mime-extra', 'application/pkcs7', 'pkcs7-mime', '', None,
])
def test_media_type_is_not_pkcs7(value):
    assert not codecs.media_type_is(value, codecs.PKCS7_MEDIA_TYPES)


# -- PKCS#7 certs-only -------------------------------------------------------------------------

def test_load_certs_only_keeps_server_order(pki):
    certs = [pki.leaf, pki.intermediate, pki.root, pki.other_leaf]
    for order in itertools.permutations(certs):
        loaded = codecs.load_certs_only(_pki.pkcs7_in_order(order))
        assert [_pki.fingerprint(c) for c in loaded] == [_pki.fingerprint(c) for c in order]


def test_load_certs_only_emits_no_warnings(pki):
    """Servers need not sort the SET OF; that is no reason to print warnings from a module."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        codecs.load_certs_only(_pki.pkcs7_in_order([pki.root, pki.leaf, pki.intermediate]))
    assert [str(w.message) for w in caught] == []


def test_load_certs_only_canonical_der(pki):
    loaded = codecs.load_certs_only(_pki.pkcs7_der(pki.rollover.certs))
    assert sorted(_pki.fingerprint(c) for c in loaded) == sorted(_pki.fingerprint(c) for c in pki.rollover.certs)


def test_load_certs_only_empty_message():
    with pytest.raises(ESTError) as info:
        codecs.load_certs_only(_pki.pkcs7_in_order([]), what='/simpleenroll answer')
    assert info.value.kind == 'bad_response'
    assert info.value.message == 'the /simpleenroll answer holds no certificates'


@pytest.mark.parametrize('what', ['certificate', 'csr', 'junk', 'empty', 'sequence', 'truncated'])
def test_load_certs_only_not_pkcs7(pki, what):
    der = {
        'certificate': _pki.der(pki.root),
        'csr': _pki.der(pki.csr),
        'junk': b'\xde\xad\xbe\xef' * 10,
        'empty': b'',
        'sequence': _synthetic(10),
        'truncated': _pki.pkcs7_der([pki.root])[:-10],
    }[what]
    with pytest.raises(ESTError) as info:
        codecs.load_certs_only(der, what='/cacerts answer')
    assert info.value.kind == 'bad_response'
    assert '/cacerts answer' in info.value.message
    assert len(info.value.message) < 300


def test_find_certificate_for_key_any_position(pki):
    certs = [pki.root, pki.intermediate, pki.leaf, pki.other_leaf]
    for order in itertools.permutations(certs):
        found = codecs.find_certificate_for_key(codecs.load_certs_only(_pki.pkcs7_in_order(order)), pki.leaf_key.public_key())
        assert _pki.fingerprint(found) == _pki.fingerprint(pki.leaf)
        found = codecs.find_certificate_for_key(list(order), pki.other_key.public_key())
        assert found is pki.other_leaf


def test_find_certificate_for_key_none(pki):
    assert codecs.find_certificate_for_key([pki.root, pki.intermediate, pki.other_leaf], pki.leaf_key.public_key()) is None
    assert codecs.find_certificate_for_key([], pki.leaf_key.public_key()) is None


def test_public_key_der_compares_keys(pki):
    assert codecs.public_key_der(pki.leaf.public_key()) == codecs.public_key_der(pki.leaf_key.public_key())
    assert codecs.public_key_der(pki.leaf.public_key()) != codecs.public_key_der(pki.other_key.public_key())


# -- PEM bundles -------------------------------------------------------------------------------

def test_certs_to_pem_and_back(pki):
    certs = [pki.leaf, pki.intermediate, pki.root]
    pem = codecs.certs_to_pem(certs)
    assert pem.count('-----BEGIN CERTIFICATE-----') == 3
    assert codecs.load_pem_certs(pem) == certs
    assert codecs.load_pem_certs(pem.encode('ascii')) == certs


def test_load_pem_certs_skips_other_blocks(pki):
    pem = ('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' + codecs.certs_to_pem([pki.root])
           + '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')
    assert codecs.load_pem_certs(pem) == [pki.root]


@pytest.mark.parametrize('data', ['', 'garbage', b'\x00\x01', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'])
def test_load_pem_certs_nothing(data):
    with pytest.raises(ESTError) as info:
        codecs.load_pem_certs(data, what='ca_path file')
    assert info.value.kind == 'invalid_input'
    assert 'ca_path file' in info.value.message


def test_load_pem_certs_broken_certificate():
    with pytest.raises(ESTError) as info:
        codecs.load_pem_certs('-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n')
    assert info.value.kind == 'invalid_input'
    assert 'unreadable certificate' in info.value.message
