# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""revocation.status_for against OCSP responses and CRLs built here, served by a loopback HTTP server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ansible_collections.pki.est.plugins.module_utils import revocation
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

UTC = datetime.timezone.utc


class _Handler(BaseHTTPRequestHandler):
    def _serve(self, body):
        answer = self.server.routes.get(self.path)
        if answer is None:
            status, data = 404, b'no such path\n'
        else:
            status, data = answer(body) if callable(answer) else answer
        self.send_response(status)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._serve(None)

    def do_POST(self):  # noqa: N802
        self._serve(self.rfile.read(int(self.headers['Content-Length'])))

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def http():
    server = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    server.daemon_threads = True
    server.routes = {}
    server.base = 'http://127.0.0.1:%d' % server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _clear_routes(http):
    http.routes.clear()


@pytest.fixture(scope='module')
def ca():
    cert, key = _pki.self_signed('Revocation Test CA')
    return cert, key


def _now():
    return datetime.datetime.now(UTC).replace(microsecond=0)


def _leaf(ca, http, ocsp_path='/ocsp', crl_path='/ca.crl'):
    extensions = []
    if ocsp_path:
        extensions.append((x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(http.base + ocsp_path))]), False))
    if crl_path:
        extensions.append((x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(http.base + crl_path)], None, None, None)]), False))
    return _pki.leaf_for(_pki.name('host.example.com'), _pki.new_key().public_key(), ca[0], ca[1], extensions,
                         not_before=_now() - datetime.timedelta(days=1))


def _ocsp(ca, status=ocsp.OCSPCertStatus.GOOD, signer=None, certs=(), this_update=None, next_update='default',
          reason=None, serial=None, nonce='echo'):
    """A responder: builds the answer for each request it gets."""
    signer_cert, signer_key = signer or ca

    def answer(body):
        request = ocsp.load_der_ocsp_request(body)
        now = _now()
        when = this_update or now
        until = when + datetime.timedelta(minutes=10) if next_update == 'default' else next_update
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, serial if serial is not None else request.serial_number,
            request.hash_algorithm, status, when, until,
            now - datetime.timedelta(hours=1) if status == ocsp.OCSPCertStatus.REVOKED else None, reason)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        if certs:
            builder = builder.certificates(list(certs))
        if nonce == 'echo':
            builder = builder.add_extension(request.extensions.get_extension_for_class(x509.OCSPNonce).value, False)
        elif nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), False)
        return 200, builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return answer


def _crl(ca, revoked=(), signer_key=None, last_update=None, next_update='default', reason=None):
    issuer, key = ca
    now = _now()
    when = last_update or now
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject).last_update(when)
               .next_update(when + datetime.timedelta(hours=1) if next_update == 'default' else next_update))
    for serial in revoked:
        item = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - datetime.timedelta(hours=2))
        if reason is not None:
            item = item.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    return 200, builder.sign(signer_key or key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _responder_cert(ca, eku=(ExtendedKeyUsageOID.OCSP_SIGNING,), issuer=None):
    key = _pki.new_key()
    issuer_cert, issuer_key = issuer or ca
    extensions = [(x509.ExtendedKeyUsage(list(eku)), False)] if eku else []
    cert = _pki.leaf_for(_pki.name('OCSP responder'), key.public_key(), issuer_cert, issuer_key, extensions,
                         not_before=_now() - datetime.timedelta(days=1))
    return cert, key


def _fails(cert, issuer, match, mode='auto'):
    with pytest.raises(ESTError) as info:
        revocation.status_for(cert, issuer, mode, timeout=5)
    assert info.value.kind == 'revocation_check', info.value.message
    assert match in info.value.message, info.value.message
    return info.value


# -- OCSP ---------------------------------------------------------------------------------------------------

def test_ocsp_good(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca)
    result = revocation.status_for(cert, [ca[0]], 'auto', timeout=5)
    assert result['status'] == 'good' and result['source'] == 'ocsp' and result['url'] == http.base + '/ocsp'
    assert result['reason'] is None and result['revocation_time'] is None and result['next_update']


def test_ocsp_revoked_with_reason_and_time(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca, ocsp.OCSPCertStatus.REVOKED, reason=x509.ReasonFlags.key_compromise)
    result = revocation.status_for(cert, ca[0], 'ocsp', timeout=5)
    assert result['status'] == 'revoked' and result['reason'] == 'keyCompromise'
    moment = datetime.datetime.strptime(result['revocation_time'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=UTC)
    assert abs((_now() - datetime.timedelta(hours=1) - moment).total_seconds()) < 60


def test_ocsp_unknown_is_an_error(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca, ocsp.OCSPCertStatus.UNKNOWN)
    _fails(cert, ca[0], 'status unknown')


def test_ocsp_signed_by_another_key_is_an_error(ca, http):
    cert = _leaf(ca, http)
    rogue = _pki.self_signed('Revocation Test CA')  # the same name, another key
    http.routes['/ocsp'] = _ocsp(ca, signer=rogue)
    _fails(cert, ca[0], 'signed neither by the issuer')
    # The issuer as responder, but the signature altered (its last byte, the end of ECDSA's s).
    good = _ocsp(ca)

    def corrupted(body):
        status, data = good(body)
        return status, data[:-1] + bytes([data[-1] ^ 0x01])
    http.routes['/ocsp'] = corrupted
    _fails(cert, ca[0], 'does not verify')


def test_ocsp_delegated_responder(ca, http):
    cert = _leaf(ca, http)
    responder = _responder_cert(ca)
    http.routes['/ocsp'] = _ocsp(ca, signer=responder, certs=[responder[0]])
    assert revocation.status_for(cert, ca[0], 'ocsp', timeout=5)['status'] == 'good'


def test_ocsp_delegated_responder_without_ocsp_signing_is_an_error(ca, http):
    cert = _leaf(ca, http)
    responder = _responder_cert(ca, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    http.routes['/ocsp'] = _ocsp(ca, signer=responder, certs=[responder[0]])
    _fails(cert, ca[0], 'id-kp-OCSPSigning')


def test_ocsp_delegated_responder_of_another_ca_is_an_error(ca, http):
    cert = _leaf(ca, http)
    other = _pki.self_signed('Other CA')
    responder = _responder_cert(ca, issuer=other)
    http.routes['/ocsp'] = _ocsp(ca, signer=responder, certs=[responder[0]])
    _fails(cert, ca[0], 'is not issued by')


def test_ocsp_stale_is_an_error(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca, this_update=_now() - datetime.timedelta(days=2), next_update=_now() - datetime.timedelta(days=1))
    _fails(cert, ca[0], 'stale')


def test_ocsp_without_next_update_must_be_recent(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca, this_update=_now() - datetime.timedelta(days=3), next_update=None)
    _fails(cert, ca[0], 'no nextUpdate')
    http.routes['/ocsp'] = _ocsp(ca, next_update=None)
    assert revocation.status_for(cert, ca[0], 'ocsp', timeout=5)['status'] == 'good'


def test_ocsp_future_dated_is_an_error(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca, this_update=_now() + datetime.timedelta(hours=2))
    _fails(cert, ca[0], 'in the future')


def test_ocsp_about_another_certificate_is_an_error(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca, serial=cert.serial_number + 1)
    _fails(cert, ca[0], 'not about the certificate')


def test_ocsp_nonce_of_another_request_is_an_error(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca, nonce=b'0123456789abcdef')
    _fails(cert, ca[0], 'nonce')
    http.routes['/ocsp'] = _ocsp(ca, nonce=None)  # pre-produced answers carry none: accepted
    assert revocation.status_for(cert, ca[0], 'ocsp', timeout=5)['status'] == 'good'


@pytest.mark.parametrize('body', [b'', b'garbage, not DER', b'\x30\x03\x0a\x01'])
def test_ocsp_malformed_is_an_error(ca, http, body):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = (200, body)
    _fails(cert, ca[0], 'not an OCSP response')


def test_ocsp_unauthorized_is_an_error_without_fallback(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = (200, ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER))
    http.routes['/ca.crl'] = _crl(ca)
    _fails(cert, ca[0], 'UNAUTHORIZED')


def test_ocsp_try_later_falls_back_to_the_crl(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = (200, ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER))
    http.routes['/ca.crl'] = _crl(ca, revoked=[cert.serial_number], reason=x509.ReasonFlags.superseded)
    result = revocation.status_for(cert, ca[0], 'auto', timeout=5)
    assert (result['status'], result['source'], result['reason']) == ('revoked', 'crl', 'superseded')
    assert 'TRY_LATER' in result['ocsp_error']
    _fails(cert, ca[0], 'TRY_LATER', mode='ocsp')


def test_unreachable_responder_falls_back_to_the_crl_only_in_auto(ca, http):
    cert = _leaf(ca, http, ocsp_path='/down')  # 404 from the server
    http.routes['/ca.crl'] = _crl(ca)
    result = revocation.status_for(cert, ca[0], 'auto', timeout=5)
    assert result['source'] == 'crl' and result['status'] == 'good' and 'HTTP 404' in result['ocsp_error']
    _fails(cert, ca[0], 'HTTP 404', mode='ocsp')


def test_unreachable_responder_without_crl_is_an_error(ca, http):
    closed = _pki.leaf_for(_pki.name('h'), _pki.new_key().public_key(), ca[0], ca[1], [(x509.AuthorityInformationAccess([
        x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier('http://127.0.0.1:9/ocsp'))]), False)],
        not_before=_now() - datetime.timedelta(days=1))
    _fails(closed, ca[0], 'cannot be reached')


def test_oversized_ocsp_answer_is_an_error(ca, http, monkeypatch):
    cert = _leaf(ca, http)
    monkeypatch.setattr(revocation, 'MAX_OCSP_BYTES', 100)
    http.routes['/ocsp'] = _ocsp(ca)
    _fails(cert, ca[0], 'more than the 100')


# -- CRL ----------------------------------------------------------------------------------------------------

def test_crl_good_and_revoked(ca, http):
    cert = _leaf(ca, http, ocsp_path=None)
    http.routes['/ca.crl'] = _crl(ca, revoked=[cert.serial_number + 1])
    result = revocation.status_for(cert, [ca[0]], 'auto', timeout=5)
    assert (result['status'], result['source'], result['url']) == ('good', 'crl', http.base + '/ca.crl')
    http.routes['/ca.crl'] = _crl(ca, revoked=[cert.serial_number], reason=x509.ReasonFlags.key_compromise)
    result = revocation.status_for(cert, [ca[0]], 'crl', timeout=5)
    assert (result['status'], result['reason']) == ('revoked', 'keyCompromise') and result['revocation_time']
    http.routes['/ca.crl'] = _crl(ca, revoked=[cert.serial_number])
    assert revocation.status_for(cert, [ca[0]], 'crl', timeout=5)['reason'] == 'unspecified'


def test_crl_mode_with_an_ocsp_url_asks_the_crl(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ca.crl'] = _crl(ca, revoked=[cert.serial_number])
    assert revocation.status_for(cert, ca[0], 'crl', timeout=5)['source'] == 'crl'


def test_crl_wrong_signer_is_an_error(ca, http):
    cert = _leaf(ca, http, ocsp_path=None)
    http.routes['/ca.crl'] = _crl(ca, signer_key=_pki.new_key())
    _fails(cert, ca[0], 'does not verify')


def test_crl_of_another_issuer_is_an_error(ca, http):
    cert = _leaf(ca, http, ocsp_path=None)
    http.routes['/ca.crl'] = _crl(_pki.self_signed('Other CA'))
    _fails(cert, ca[0], 'is issued by')


def test_crl_stale_is_an_error(ca, http):
    cert = _leaf(ca, http, ocsp_path=None)
    http.routes['/ca.crl'] = _crl(ca, last_update=_now() - datetime.timedelta(days=2), next_update=_now() - datetime.timedelta(days=1))
    _fails(cert, ca[0], 'stale')


@pytest.mark.parametrize('body', [b'', b'not a CRL', b'-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'])
def test_crl_malformed_is_an_error(ca, http, body):
    cert = _leaf(ca, http, ocsp_path=None)
    http.routes['/ca.crl'] = (200, body)
    _fails(cert, ca[0], 'cannot be read')


def test_crl_oversized_is_an_error(ca, http, monkeypatch):
    cert = _leaf(ca, http, ocsp_path=None)
    monkeypatch.setattr(revocation, 'MAX_CRL_BYTES', 200)
    http.routes['/ca.crl'] = _crl(ca, revoked=range(1000, 1020))
    _fails(cert, ca[0], 'more than the 200')


def test_crl_unreachable_is_an_error(ca, http):
    cert = _leaf(ca, http, ocsp_path=None, crl_path='/missing.crl')
    _fails(cert, ca[0], 'HTTP 404')


# -- what is asked ------------------------------------------------------------------------------------------

def test_issuer_must_be_given(ca, http):
    cert = _leaf(ca, http)
    http.routes['/ocsp'] = _ocsp(ca)
    _fails(cert, [_pki.self_signed('Revocation Test CA')[0]], 'is not among the CA certificates')


def test_certificate_without_pointers(ca, http):
    cert = _leaf(ca, http, ocsp_path=None, crl_path=None)
    _fails(cert, ca[0], 'neither an OCSP responder nor a CRL')
    _fails(_leaf(ca, http, ocsp_path=None), ca[0], 'no OCSP responder', mode='ocsp')
    _fails(_leaf(ca, http, crl_path=None), ca[0], 'no CRL distribution point', mode='crl')


def test_unknown_mode(ca, http):
    with pytest.raises(ESTError) as info:
        revocation.status_for(_leaf(ca, http), ca[0], 'both')
    assert info.value.kind == 'invalid_input'
