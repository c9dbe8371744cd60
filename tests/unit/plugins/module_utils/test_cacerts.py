# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""/cacerts (RFC 7030 §4.1): fetching, trust bootstrap by fingerprint (§4.1.1) and rollover (§4.1.3)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib
import os
import random

import pytest

from ansible_collections.pki.est.plugins.module_utils import cacerts, codecs
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.plugins.module_utils.transport import ESTResponse
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fakehttp import Answer, fake_transport

PKCS7_TYPE = 'application/pkcs7-mime; smime-type=certs-only'


def _fp(cert):
    return _pki.fingerprint(cert)


def _fps(certs):
    return [_fp(c) for c in certs]


class FakeTransport:
    """Stands in for ESTTransport in fetch_cacerts: one canned answer or error."""

    def __init__(self, status=200, content_type=PKCS7_TYPE, body=b'', error=None):
        self.answer = ESTResponse(status, {'Content-Type': content_type} if content_type else {}, body,
                                  'https://est.example.com/.well-known/est/cacerts')
        self.error = error
        self.calls = []

    def get(self, operation, accept=None):
        self.calls.append(operation)
        if self.error:
            raise self.error
        return self.answer


def _b64(der):
    return codecs.encode_body(der)


# -- fetch_cacerts -------------------------------------------------------------------------------------

def test_fetch_cacerts_order_as_served(pki):
    certs = [pki.intermediate, pki.root]
    transport = FakeTransport(body=_b64(_pki.pkcs7_in_order(certs)))
    assert _fps(cacerts.fetch_cacerts(transport)) == _fps(certs)
    assert transport.calls == ['cacerts']


@pytest.mark.parametrize('content_type', ['application/pkcs7-mime', 'Application/PKCS7-MIME; smime-type="certs-only"',
                                          'application/x-pkcs7-certificates'])
def test_fetch_cacerts_media_types(pki, content_type):
    transport = FakeTransport(content_type=content_type, body=_b64(_pki.pkcs7_der([pki.root])))
    assert _fps(cacerts.fetch_cacerts(transport)) == [_fp(pki.root)]


@pytest.mark.parametrize('answer, kind, fragment', [
    (dict(status=204, body=b''), 'bad_response', 'no certificates (HTTP 204)'),
    (dict(status=200, body=b''), 'bad_response', 'no certificates (HTTP 200)'),
    (dict(status=200, body=b'\r\n'), 'bad_response', 'the /cacerts body is empty'),
    (dict(content_type='text/html', body=b'<html>login</html>'), 'unexpected_content_type', "'text/html'"),
    (dict(content_type='', body=b'MIIB'), 'unexpected_content_type', "''"),
    (dict(content_type='application/pkcs10', body=b'MIIB'), 'unexpected_content_type', 'application/pkcs7-mime'),
    (dict(body=b'%%% not base64 %%%'), 'bad_response', 'not valid base64'),
    (dict(body=base64.b64encode(b'\x30\x03\x02\x01\x05')), 'bad_response', '/cacerts answer'),
])
def test_fetch_cacerts_errors(answer, kind, fragment):
    with pytest.raises(ESTError) as info:
        cacerts.fetch_cacerts(FakeTransport(**answer))
    assert info.value.kind == kind
    assert fragment in info.value.message


def test_fetch_cacerts_no_certificates():
    with pytest.raises(ESTError) as info:
        cacerts.fetch_cacerts(FakeTransport(body=_b64(_pki.pkcs7_in_order([]))))
    assert info.value.kind == 'bad_response'
    assert 'holds no certificates' in info.value.message


@pytest.mark.parametrize('kind', ['not_supported', 'tls', 'connection', 'auth_required'])
def test_fetch_cacerts_transport_errors_pass_through(kind):
    error = ESTError(kind, 'boom')
    with pytest.raises(ESTError) as info:
        cacerts.fetch_cacerts(FakeTransport(error=error))
    assert info.value is error


# -- fetch_cacerts over the real transport with recorded server answers ---------------------------------

@pytest.mark.parametrize('recording', [
    'cacerts_b64_76_crlf.bin',          # Content-Transfer-Encoding: base64, 76 columns, CRLF
    'cacerts_b64_64_lf.bin',            # no Content-Transfer-Encoding, 64 columns, LF, smime-type parameter
    'cacerts_b64_single_line_nul.bin',  # one line, padding dropped, trailing blanks and NULs, odd case
    'cacerts_der.bin',                  # raw DER (Content-Transfer-Encoding: binary)
    'cacerts_pem.bin',                  # PEM armor, application/x-pkcs7-certificates
])
def test_recorded_cacerts_answers(recorded_cacerts, recording):
    est, adapter = fake_transport(Answer.recorded(recording), ca_path='/etc/pki/est-ca.pem')
    certs = cacerts.fetch_cacerts(est)
    assert _fps(certs) == recorded_cacerts['fingerprints']
    assert [c.subject.rfc4514_string() for c in certs] == recorded_cacerts['subjects']
    assert adapter.sent[0].request.url == 'https://est.example.com/.well-known/est/cacerts'


def test_recorded_answers_are_byte_exact(recorded_cacerts):
    """Guard the fixtures themselves: the layouts the tests above rely on are really there."""
    crlf = Answer.recorded('cacerts_b64_76_crlf.bin').body
    lines = crlf.split(b'\r\n')
    assert lines[-1] == b'' and all(len(line) == 76 for line in lines[:-2]) and b'\n' not in crlf.replace(b'\r\n', b'')
    nul = Answer.recorded('cacerts_b64_single_line_nul.bin').body
    assert nul.endswith(b'\x00\x00') and b'=' not in nul and nul.count(b'\n') == 1
    der = Answer.recorded('cacerts_der.bin').body
    assert hashlib.sha256(der).hexdigest() == recorded_cacerts['pkcs7_der_sha256']
    assert codecs.decode_body(crlf) == der


def test_recorded_cacerts_roles(recorded_cacerts):
    """The recording is NewWithNew, OldWithOld, OldWithNew, NewWithOld and an issuing CA under OldWithOld.

    NewWithNew, the self-signed certificate with the latest notAfter, is the root (RFC 7030 §4.1.3).
    cacerts_expected.json's ``roles`` hold the roles from before that fix (OldWithOld as the root).
    """
    from ansible_collections.pki.est.plugins.module_utils.certinfo import classify_ca_certs
    est, _adapter = fake_transport(Answer.recorded('cacerts_b64_76_crlf.bin'))
    before = dict(root='rollover_old_with_old', rollover_new_with_new='root')
    expected = [before.get(role, role) for role in recorded_cacerts['roles']]
    assert expected == ['root', 'rollover_old_with_old', 'rollover_old_with_new', 'rollover_new_with_old', 'intermediate']
    assert classify_ca_certs(cacerts.fetch_cacerts(est)) == expected


def test_recorded_html_answer():
    est, _adapter = fake_transport(Answer.recorded('cacerts_html_200.bin'))
    with pytest.raises(ESTError) as info:
        cacerts.fetch_cacerts(est)
    assert info.value.kind == 'unexpected_content_type'
    assert 'text/html' in info.value.message


def test_recorded_answer_pinned(recorded_cacerts):
    est, _adapter = fake_transport(Answer.recorded('cacerts_b64_64_lf.bin'))
    keep, dropped = _pin(cacerts.fetch_cacerts(est), recorded_cacerts['pinned_root'])
    assert sorted(_fps(keep)) == sorted(recorded_cacerts['fingerprints'])
    assert dropped == []


# -- anchor_to_pin ------------------------------------------------------------------------------------------

def _pin(certs, fingerprint):
    """anchor_to_pin with the dropped certificates only (their reasons are checked in test_pathvalid)."""
    keep, dropped = cacerts.anchor_to_pin(certs, fingerprint)
    assert all(reason for _cert, reason in dropped)
    return keep, [cert for cert, _reason in dropped]


def test_anchor_single_root(pki):
    keep, dropped = _pin([pki.root], _fp(pki.root))
    assert keep == [pki.root] and dropped == []


def test_anchor_keeps_chain_and_rollover_drops_strangers(pki):
    rollover = pki.rollover
    genuine = rollover.certs + [pki.rollover_intermediate]
    strangers = [pki.unrelated_root, pki.impostor_root, pki.impostor_sub]
    shuffler = random.Random(8951)
    for _round in range(12):
        served = genuine + strangers
        shuffler.shuffle(served)
        keep, dropped = _pin(served, _pki.fingerprint(rollover.old_with_old))
        assert sorted(_fps(keep)) == sorted(_fps(genuine))
        assert sorted(_fps(dropped)) == sorted(_fps(strangers))
        # Both lists keep the order the server used.
        assert _fps(keep) == [f for f in _fps(served) if f in _fps(genuine)]


def test_anchor_pin_formats(pki):
    served = [pki.unrelated_root, pki.intermediate, pki.root]
    fingerprint = _fp(pki.root)
    for pin in (fingerprint, fingerprint.upper(), ':'.join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper(),
                'sha256:' + fingerprint):
        keep, dropped = _pin(served, pin)
        assert keep == [pki.intermediate, pki.root]
        assert dropped == [pki.unrelated_root]


def test_anchor_pin_new_root_reaches_old_through_cross_certificates(pki):
    rollover = pki.rollover
    keep, dropped = _pin(rollover.certs + [pki.unrelated_root], _fp(rollover.new_with_new))
    assert sorted(_fps(keep)) == sorted(_fps(rollover.certs))
    assert dropped == [pki.unrelated_root]


def test_anchor_drops_leaf_of_other_ca(pki):
    keep, dropped = _pin([pki.root, pki.impostor_sub, pki.rollover.old_with_old], _fp(pki.rollover.old_with_old))
    assert keep == [pki.rollover.old_with_old]
    assert dropped == [pki.root, pki.impostor_sub]


def test_anchor_mismatch_names_both_fingerprints(pki):
    served = [pki.impostor_root, pki.impostor_sub]
    expected = _fp(pki.rollover.old_with_old)
    pin = ':'.join(expected[i:i + 2] for i in range(0, 64, 2)).upper()
    with pytest.raises(ESTError) as info:
        _pin(served, pin)
    error = info.value
    assert error.kind == 'bootstrap_mismatch'
    assert expected in error.message
    for cert in served:
        assert _fp(cert) in error.message
    assert error.details == {'expected_fingerprint': expected, 'received_fingerprints': _fps(served)}
    assert error.as_dict()['received_fingerprints'] == _fps(served)


def test_anchor_mismatch_nothing_sent(pki):
    with pytest.raises(ESTError) as info:
        _pin([], _fp(pki.root))
    assert info.value.kind == 'bootstrap_mismatch'
    assert 'sent nothing' in info.value.message


def test_anchor_bad_pin(pki):
    with pytest.raises(ESTError) as info:
        _pin([pki.root], 'deadbeef')
    assert info.value.kind == 'invalid_input'


# -- get_cacerts with a fake transport class ---------------------------------------------------------------

class Server:
    """Plays one EST server for get_cacerts: records how each ESTTransport was built."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.built = []
        self.bundles = []
        self.last = None

    def transport(self, **kwargs):
        server = self
        self.built.append(kwargs)
        if kwargs.get('ca_path') and os.path.exists(kwargs['ca_path']):
            with open(kwargs['ca_path']) as handle:
                self.bundles.append(handle.read())
        answer = self.answers.pop(0)

        class _Transport:
            def get(self, operation, accept=None):
                assert operation == 'cacerts'
                if isinstance(answer, ESTError):
                    raise answer
                return ESTResponse(200, {'Content-Type': PKCS7_TYPE}, codecs.encode_body(answer), 'https://x')

        server.last = kwargs
        return _Transport()


CONNECTION = dict(url='https://est.example.com', ca_label=None, ca_path=None, username=None, password=None,
                  client_cert_path=None, client_key_path=None, timeout=30)


def test_get_cacerts_plain(monkeypatch, pki):
    server = Server(_pki.pkcs7_in_order([pki.intermediate, pki.root]))
    monkeypatch.setattr(cacerts, 'ESTTransport', server.transport)
    result = cacerts.get_cacerts(dict(CONNECTION, ca_path='/etc/ca.pem'))
    assert _fps(result.certs) == _fps([pki.intermediate, pki.root])
    assert result.bootstrapped is False and result.pinned is None and result.dropped == []
    assert server.built == [dict(CONNECTION, ca_path='/etc/ca.pem')]


def test_get_cacerts_pinned_with_ca_path(monkeypatch, pki):
    server = Server(_pki.pkcs7_in_order([pki.unrelated_root, pki.intermediate, pki.root]))
    monkeypatch.setattr(cacerts, 'ESTTransport', server.transport)
    result = cacerts.get_cacerts(dict(CONNECTION, ca_path='/etc/ca.pem'), expected_fingerprint=_fp(pki.root).upper())
    assert _fps(result.certs) == _fps([pki.intermediate, pki.root])
    assert _fps(result.dropped) == [_fp(pki.unrelated_root)]
    assert result.pinned == _fp(pki.root) and result.bootstrapped is False
    assert len(server.built) == 1


def test_get_cacerts_bootstrap(monkeypatch, pki):
    served = _pki.pkcs7_in_order([pki.unrelated_root, pki.intermediate, pki.root])
    server = Server(served, served)
    monkeypatch.setattr(cacerts, 'ESTTransport', server.transport)
    result = cacerts.get_cacerts(dict(CONNECTION, username='alice', password='secret'), expected_fingerprint=_fp(pki.root))
    assert result.bootstrapped is True and result.pinned == _fp(pki.root)
    assert _fps(result.certs) == _fps([pki.intermediate, pki.root])
    assert _fps(result.dropped) == [_fp(pki.unrelated_root)]
    first, second = server.built
    assert first['bootstrap'] is True and first['ca_path'] is None
    assert 'bootstrap' not in second and second['ca_path']
    # The second, verified request trusts only the accepted certificates, and the bundle is gone afterwards.
    assert _fps(codecs.load_pem_certs(server.bundles[0])) == _fps([pki.intermediate, pki.root])
    assert not os.path.exists(second['ca_path'])
    assert not os.path.exists(os.path.dirname(second['ca_path']))


def test_get_cacerts_bootstrap_tls_failure(monkeypatch, pki):
    served = _pki.pkcs7_in_order([pki.root])
    server = Server(served, ESTError('tls', 'certificate verify failed'))
    monkeypatch.setattr(cacerts, 'ESTTransport', server.transport)
    with pytest.raises(ESTError) as info:
        cacerts.get_cacerts(dict(CONNECTION), expected_fingerprint=_fp(pki.root))
    assert info.value.kind == 'bootstrap_mismatch'
    assert 'certificate verify failed' in info.value.message
    assert not os.path.exists(os.path.dirname(server.last['ca_path']))


def test_get_cacerts_bootstrap_other_failure_passes_through(monkeypatch, pki):
    served = _pki.pkcs7_in_order([pki.root])
    error = ESTError('connection', 'reset by peer')
    monkeypatch.setattr(cacerts, 'ESTTransport', Server(served, error).transport)
    with pytest.raises(ESTError) as info:
        cacerts.get_cacerts(dict(CONNECTION), expected_fingerprint=_fp(pki.root))
    assert info.value is error


def test_get_cacerts_bootstrap_answers_differ(monkeypatch, pki):
    server = Server(_pki.pkcs7_in_order([pki.root]), _pki.pkcs7_in_order([pki.root, pki.unrelated_root]))
    monkeypatch.setattr(cacerts, 'ESTTransport', server.transport)
    with pytest.raises(ESTError) as info:
        cacerts.get_cacerts(dict(CONNECTION), expected_fingerprint=_fp(pki.root))
    assert info.value.kind == 'bootstrap_mismatch'
    assert 'different CA certificates' in info.value.message


def test_get_cacerts_bootstrap_mismatch_on_first_answer(monkeypatch, pki):
    server = Server(_pki.pkcs7_in_order([pki.impostor_root]))
    monkeypatch.setattr(cacerts, 'ESTTransport', server.transport)
    with pytest.raises(ESTError) as info:
        cacerts.get_cacerts(dict(CONNECTION), expected_fingerprint=_fp(pki.rollover.old_with_old))
    assert info.value.kind == 'bootstrap_mismatch'
    assert len(server.built) == 1


# -- an answer over a verified connection: its own roots are the anchors --------------------------------------

def test_verified_answer_keeps_what_validates_to_its_roots(pki):
    result = cacerts.validate_answer([pki.unrelated_root, pki.intermediate, pki.root, pki.leaf])
    # Every self-signed CA certificate is an anchor; the end-entity certificate is not a CA and is dropped.
    assert _fps(result.anchors) == _fps([pki.unrelated_root, pki.root])
    assert _fps(result.certs) == _fps([pki.unrelated_root, pki.intermediate, pki.root])
    assert _fps(result.dropped) == [_fp(pki.leaf)] and 'not a CA certificate' in result.reasons[0]


def test_verified_answer_without_a_root_anchors_on_its_top_ca(pki):
    result = cacerts.validate_answer([pki.intermediate])
    assert result.anchors == [pki.intermediate] and result.certs == [pki.intermediate]


def test_verified_answer_with_nothing_usable_fails(pki):
    with pytest.raises(ESTError) as info:
        cacerts.validate_answer([pki.leaf])
    assert info.value.kind == 'verification' and 'trust anchor' in info.value.message
