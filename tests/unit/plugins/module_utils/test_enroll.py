# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simple enrollment and re-enrollment: the request loop, the checks on what comes back, and whole runs on disk."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import os
import stat

import pytest
from cryptography import x509

from ansible_collections.pki.est.plugins.module_utils import enroll, statecache, waiting
from ansible_collections.pki.est.plugins.module_utils.codecs import encode_body, load_pem_certs, public_key_der
from ansible_collections.pki.est.plugins.module_utils.csr import (
    build_csr, csr_der, csr_pem, eku_oids, extension_values, key_usage_names, name_pairs, normalize_san, subject_pairs,
)
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError, ESTPending
from ansible_collections.pki.est.plugins.module_utils.hoststate import PendingState, Wanted, pending_paths
from ansible_collections.pki.est.plugins.module_utils.keys import generate_private_key, key_type_of, keys_match, load_private_key, private_key_pem
from ansible_collections.pki.est.plugins.module_utils.transport import ESTResponse
from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki

UTC = datetime.timezone.utc
PKCS7 = 'application/pkcs7-mime; smime-type=certs-only'
URL = 'https://est.example.com/.well-known/est/simpleenroll'


def _fps(certs):
    return [_pki.fingerprint(c) for c in certs]


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def _pkcs7_answer(certs, status=200, content_type=PKCS7):
    return ESTResponse(status, {'Content-Type': content_type}, encode_body(_pki.pkcs7_in_order(certs)), URL)


# -- request_certificate -------------------------------------------------------------------------------

class Poster:
    """A transport that answers each POST with the next canned item (a response or an exception)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def post(self, operation, der, content_type):
        self.calls.append((operation, der, content_type))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 5000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def _pending(retry_after):
    return ESTPending('accepted, decide later', retry_after=retry_after)


def test_request_200_returns_certificates_in_order(pki):
    poster = Poster(_pkcs7_answer([pki.leaf, pki.intermediate]))
    clock = Clock()
    certs = enroll.request_certificate(poster, 'simpleenroll', b'\x30\x00', wait_timeout=60, sleep=clock.sleep, clock=clock)
    assert _fps(certs) == _fps([pki.leaf, pki.intermediate])
    assert poster.calls == [('simpleenroll', b'\x30\x00', 'application/pkcs10')]
    assert clock.sleeps == []


def test_request_202_then_200_polls_with_retry_after(pki):
    poster = Poster(_pending(10), _pending(None), _pending(3), _pkcs7_answer([pki.leaf]))
    clock = Clock()
    certs = enroll.request_certificate(poster, 'simplereenroll', b'csr', wait_timeout=60, sleep=clock.sleep, clock=clock)
    assert _fps(certs) == _fps([pki.leaf])
    assert clock.sleeps == [10, waiting.DEFAULT_POLL_SECONDS, 3]
    assert [c[0] for c in poster.calls] == ['simplereenroll'] * 4
    assert set(c[1] for c in poster.calls) == {b'csr'}  # the very same request every time


def test_request_202_past_deadline_reraises():
    last = _pending(10)
    poster = Poster(_pending(10), _pending(10), last)
    clock = Clock()
    with pytest.raises(ESTPending) as info:
        enroll.request_certificate(poster, 'simpleenroll', b'csr', wait_timeout=12, sleep=clock.sleep, clock=clock)
    assert info.value is last
    assert info.value.retry_after == 10
    assert clock.sleeps == [10, 2]  # never sleeps past the budget
    assert len(poster.calls) == 3


@pytest.mark.parametrize('wait_timeout', [0, None, -5])
def test_request_202_without_budget_raises_at_once(wait_timeout):
    poster = Poster(_pending(30))
    clock = Clock()
    with pytest.raises(ESTPending) as info:
        enroll.request_certificate(poster, 'simpleenroll', b'csr', wait_timeout=wait_timeout, sleep=clock.sleep, clock=clock)
    assert info.value.kind == 'pending'
    assert clock.sleeps == []
    assert len(poster.calls) == 1


def test_request_retry_after_zero_still_waits_a_little(pki):
    poster = Poster(_pending(0), _pkcs7_answer([pki.leaf]))
    clock = Clock()
    enroll.request_certificate(poster, 'simpleenroll', b'csr', wait_timeout=5, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [0.2]


@pytest.mark.parametrize('answer, kind, fragment', [
    (ESTResponse(200, {'Content-Type': 'text/html'}, b'<html>', URL), 'unexpected_content_type', "Content-Type 'text/html'"),
    (ESTResponse(200, {}, b'MIIB', URL), 'unexpected_content_type', "Content-Type ''"),
    (ESTResponse(204, {'Content-Type': PKCS7}, b'', URL), 'bad_response', 'with HTTP 204 and no certificate'),
    (ESTResponse(200, {'Content-Type': PKCS7}, b'', URL), 'bad_response', 'with HTTP 200 and no certificate'),
    (ESTResponse(200, {'Content-Type': PKCS7}, b'!!!!', URL), 'bad_response', 'not valid base64'),
    (ESTError('forbidden', 'the server refused simpleenroll (HTTP 403)', status=403), 'forbidden', 'HTTP 403'),
])
def test_request_bad_answers(answer, kind, fragment):
    poster = Poster(answer)
    clock = Clock()
    with pytest.raises(ESTError) as info:
        enroll.request_certificate(poster, 'simpleenroll', b'csr', wait_timeout=60, sleep=clock.sleep, clock=clock)
    assert info.value.kind == kind
    assert fragment in info.value.message
    assert len(poster.calls) == 1 and clock.sleeps == []


# -- select_and_verify / build_chain -------------------------------------------------------------------

VALID_NOW = _pki.BASE_TIME + datetime.timedelta(days=10)


def test_validated_chain_order(pki):
    chain = enroll.validated_chain(pki.leaf, [pki.unrelated_root, pki.intermediate], [pki.root], VALID_NOW)
    assert chain == [pki.intermediate, pki.root]
    assert enroll.validated_chain(pki.leaf, [], [pki.intermediate], VALID_NOW) == [pki.intermediate]
    with pytest.raises(ESTError) as info:  # a gap: no path
        enroll.validated_chain(pki.leaf, [], [pki.root], VALID_NOW)
    assert 'intermediates_path' in info.value.message


@pytest.mark.parametrize('order', [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_select_by_key_regardless_of_position(pki, order):
    answer = [[pki.intermediate, pki.other_leaf, pki.leaf][i] for i in order]
    cert, chain, warnings = enroll.select_and_verify(answer, pki.leaf_key.public_key(), [pki.root], now=VALID_NOW)
    assert cert == pki.leaf
    assert chain == [pki.intermediate, pki.root]
    assert warnings == []
    assert enroll.select_and_verify(answer, pki.other_key.public_key(), [pki.root], now=VALID_NOW)[0] == pki.other_leaf


def test_select_none_for_the_key(pki):
    with pytest.raises(ESTError) as info:
        enroll.select_and_verify([pki.other_leaf, pki.intermediate], pki.leaf_key.public_key(), [pki.root], now=VALID_NOW)
    assert info.value.kind == 'verification'
    assert 'returned 2 certificate(s), none for the key of this request' in info.value.message
    assert 'CN=other.example.com' in info.value.message


def test_select_issued_by_another_ca(pki):
    with pytest.raises(ESTError) as info:
        enroll.select_and_verify([pki.leaf, pki.intermediate], pki.leaf_key.public_key(), [pki.unrelated_root], now=VALID_NOW)
    assert info.value.kind == 'verification'
    assert 'does not validate to the trust anchors' in info.value.message
    # Without the intermediate there is no path to the right root either.
    with pytest.raises(ESTError) as info:
        enroll.select_and_verify([pki.leaf], pki.leaf_key.public_key(), [pki.root], now=VALID_NOW)
    assert info.value.kind == 'verification'


def test_select_expired(pki):
    now = pki.leaf.not_valid_after_utc + datetime.timedelta(seconds=1)
    with pytest.raises(ESTError) as info:
        enroll.select_and_verify([pki.leaf, pki.intermediate], pki.leaf_key.public_key(), [pki.root], now=now)
    assert info.value.kind == 'verification'
    assert info.value.message == 'the issued certificate expired at %s' % pki.leaf.not_valid_after_utc.isoformat()


def test_select_not_yet_valid_warns(pki):
    now = _pki.BASE_TIME - datetime.timedelta(hours=1)
    cert, chain, warnings = enroll.select_and_verify([pki.leaf, pki.intermediate], pki.leaf_key.public_key(), [pki.root], now=now)
    assert cert == pki.leaf and chain == [pki.intermediate, pki.root]
    assert warnings == ['the issued certificate is not valid before %s' % _pki.BASE_TIME.isoformat()]
    # Within five minutes of clock skew nothing is said.
    now = _pki.BASE_TIME - datetime.timedelta(minutes=4)
    assert enroll.select_and_verify([pki.leaf, pki.intermediate], pki.leaf_key.public_key(), [pki.root], now=now)[2] == []


def test_select_missing_san(pki):
    args = ([pki.leaf, pki.intermediate], pki.leaf_key.public_key(), [pki.root], ['DNS:device.example.com', 'IP:192.0.2.1'])
    with pytest.raises(ESTError) as info:
        enroll.select_and_verify(*args, san_policy='fail', now=VALID_NOW)
    assert info.value.kind == 'verification'
    assert info.value.message == ('the issued certificate lacks the requested subjectAltName DNS:device.example.com, IP:192.0.2.1 '
                                  '(san_policy=warn installs it anyway)')
    assert info.value.details == {'missing_subject_alt_name': ['DNS:device.example.com', 'IP:192.0.2.1']}
    cert, chain, warnings = enroll.select_and_verify(*args, san_policy='warn', now=VALID_NOW)
    assert cert == pki.leaf and chain == [pki.intermediate, pki.root]
    assert warnings == ['the issued certificate lacks the requested subjectAltName DNS:device.example.com, IP:192.0.2.1']


# -- whole runs against a small CA ---------------------------------------------------------------------

class SmallCA:
    """An EST server in miniature: /cacerts gives root and issuing CA, enrollment signs what the CSR asks for.

    ``mode`` is ``issue``, ``pending`` (HTTP 202), ``error`` (an ESTError from post), ``wrong_key`` (a
    certificate for some other key), ``pending_once`` (202 once, then ``issue``) or ``drop_sans`` (issues
    without the requested subjectAltName). ``root_only``: /cacerts leaves out the issuing CA.
    """

    def __init__(self, pki):
        self.root, self.issuer, self.issuer_key = pki.root, pki.intermediate, pki.intermediate_key
        self.mode = 'issue'
        self.root_only = False
        self.log = []           # (operation, DER body or None)
        self.connections = []   # the keyword arguments of every transport made
        self.issued = []

    def factory(self, **connection):
        self.connections.append(connection)
        return _SmallCATransport(self)

    @property
    def operations(self):
        return [entry[0] for entry in self.log]

    def answer(self, operation, der):
        if self.mode == 'pending_once':
            self.mode = 'issue'
            raise ESTPending('accepted', retry_after=7)
        if self.mode == 'pending':
            raise ESTPending('accepted', retry_after=60)
        if self.mode == 'error':
            raise ESTError('forbidden', 'the server refused %s (HTTP 403)' % operation, status=403)
        req = x509.load_der_x509_csr(der)
        assert req.is_signature_valid
        if self.mode == 'wrong_key':
            req = build_csr(_pki.new_key(), name_pairs(req.subject))
        now = datetime.datetime.now(UTC)
        if self.mode == 'drop_sans':
            cert = _pki.leaf_for(req.subject, req.public_key(), self.issuer, self.issuer_key,
                                 not_before=now - datetime.timedelta(minutes=1), not_after=now + datetime.timedelta(days=30))
        else:
            cert = _pki.cert_from_csr(req, self.issuer, self.issuer_key, not_before=now - datetime.timedelta(minutes=1),
                                      not_after=now + datetime.timedelta(days=30))
        self.issued.append(cert)
        return _pkcs7_answer([cert])


class _SmallCATransport:

    def __init__(self, ca):
        self.ca = ca
        self.requests_made = 0

    def get(self, operation, accept=None):
        self.requests_made += 1
        self.ca.log.append((operation, None))
        assert operation == 'cacerts'
        return _pkcs7_answer([self.ca.root] if self.ca.root_only else [self.ca.root, self.ca.issuer])

    def post(self, operation, der, content_type, accept=None):
        self.requests_made += 1
        self.ca.log.append((operation, der))
        assert operation in ('simpleenroll', 'simplereenroll')
        assert content_type == 'application/pkcs10'
        return self.ca.answer(operation, der)


def _no_transport(**connection):
    raise AssertionError('no request expected, got a transport for %r' % (connection,))


class RecordingFiles(enroll.Files):
    """The default file handling, with a log of what was written and removed."""

    def __init__(self):
        self.events = []

    def write(self, path, data, mode=None, secret=False, bookkeeping=False):
        self.events.append(('write', os.path.basename(path), secret, bookkeeping))
        super(RecordingFiles, self).write(path, data, mode, secret, bookkeeping)

    def remove(self, path):
        self.events.append(('remove', os.path.basename(path)))
        super(RecordingFiles, self).remove(path)


CONNECTION = {'url': 'https://est.example.com', 'username': 'device', 'password': 'otp'}


class Paths:

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.cert = str(tmp_path / 'dev.crt')
        self.key = str(tmp_path / 'dev.key')
        self.chain = str(tmp_path / 'chain.pem')
        self.fullchain = str(tmp_path / 'fullchain.pem')
        self.record = statecache.cache_path(self.cert)
        self.pending = pending_paths(self.cert)

    def snapshot(self):
        files = (('cert', self.cert), ('key', self.key), ('chain', self.chain), ('fullchain', self.fullchain), ('record', self.record))
        return dict((name, _read(path)) for name, path in files)

    def listing(self):
        return sorted(os.listdir(str(self.dir)))


@pytest.fixture
def paths(tmp_path):
    return Paths(tmp_path)


@pytest.fixture
def ca(pki):
    return SmallCA(pki)


def _wanted(**kwargs):
    values = dict(subject=subject_pairs('dev.example', {'O': 'Example'}), sans=[normalize_san('DNS:dev.example'), normalize_san('IP:192.0.2.5')],
                  key_usage=key_usage_names(['digitalSignature', 'keyEncipherment']), eku=eku_oids(['serverAuth', 'clientAuth']))
    values.update(kwargs)
    return Wanted(**values)


def _options(paths, **kwargs):
    values = dict(cert_path=paths.cert, key_path=paths.key, chain_path=paths.chain, fullchain_path=paths.fullchain, wanted=_wanted())
    values.update(kwargs)
    return enroll.Options(**values)


def _job(paths, transport_factory, files=None, **kwargs):
    return enroll.Enrollment(_options(paths, **kwargs), CONNECTION, files=files, transport_factory=transport_factory)


def _installed(paths):
    key = load_private_key(_read(paths.key))
    cert = load_pem_certs(_read(paths.cert))
    assert len(cert) == 1
    return key, cert[0]


def _first_run(paths, ca):
    result = _job(paths, ca.factory).run()
    assert result['action'] == 'enrolled'
    return result


def test_first_run_enrolls(paths, ca, pki):
    job = _job(paths, ca.factory)
    assert job.plan() == ('enroll', ['there is no certificate'])
    result = job.run()
    key, cert = _installed(paths)
    assert result['changed'] is True and result['action'] == 'enrolled' and result['pending'] is False
    assert result['operation'] == 'simpleenroll'
    assert result['reasons'] == ['there is no certificate']
    assert result['sha256_fingerprint'] == _pki.fingerprint(cert)
    assert result['subject'] == 'CN=dev.example,O=Example'
    assert result['subject_alt_name'] == ['DNS:dev.example', 'IP:192.0.2.5']
    assert keys_match(key, cert)
    assert key_type_of(key) == 'ec-p256'
    assert _mode(paths.key) == 0o600
    assert _fps(load_pem_certs(_read(paths.chain))) == _fps([pki.intermediate, pki.root])
    assert _fps(load_pem_certs(_read(paths.fullchain))) == _fps([cert, pki.intermediate, pki.root])
    assert paths.listing() == sorted(['chain.pem', 'dev.crt', 'dev.crt.est.json', 'dev.key', 'fullchain.pem'])
    record = json.loads(_read(paths.record).decode('utf-8'))
    assert record['facts']['sha256_fingerprint'] == _pki.fingerprint(cert)
    assert 'PRIVATE' not in _read(paths.record).decode('utf-8')
    # What the server saw: cacerts first, then one request with what was wanted, without a client certificate.
    assert ca.operations == ['simpleenroll', 'cacerts']
    assert ca.connections == [CONNECTION]
    assert job.requests_made == 2
    req = x509.load_der_x509_csr(ca.log[0][1])
    assert public_key_der(req.public_key()) == public_key_der(key.public_key())
    assert name_pairs(req.subject) == [('2.5.4.10', 'Example'), ('2.5.4.3', 'dev.example')]
    assert extension_values(req) == {'sans': ['DNS:dev.example', 'IP:192.0.2.5'], 'key_usage': ['digital_signature', 'key_encipherment'],
                                     'eku': ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']}


def test_first_run_with_key_type_and_challenge_password(paths, ca):
    result = _job(paths, ca.factory, key_type='ed25519', wanted=_wanted(key_type='ed25519'), challenge_password='s3cret').run()
    key, cert = _installed(paths)
    assert result['action'] == 'enrolled'
    assert key_type_of(key) == 'ed25519' and keys_match(key, cert)
    req = x509.load_der_x509_csr(ca.log[0][1])
    assert req.attributes.get_attribute_for_oid(x509.oid.AttributeOID.CHALLENGE_PASSWORD).value == b's3cret'


def test_second_run_answers_from_the_record(paths, ca):
    first = _first_run(paths, ca)
    before = paths.snapshot()
    job = _job(paths, _no_transport)
    assert job.plan() == ('none', [])
    assert job.state is None  # decided without reading key or certificate
    result = job.run()
    assert result['changed'] is False and result['action'] == 'none' and result['pending'] is False
    for name in ('sha256_fingerprint', 'serial', 'subject', 'not_after', 'subject_alt_name'):
        assert result[name] == first[name]
    assert result['days_remaining'] in (29, 30)
    assert job.requests_made == 0
    assert paths.snapshot() == before


def test_second_run_without_record_checks_and_writes_it_again(paths, ca):
    first = _first_run(paths, ca)
    os.unlink(paths.record)
    job = _job(paths, _no_transport)
    assert job.plan() == ('none', [])
    assert job.state is not None and job.state.cert is not None
    result = job.run()
    assert (result['changed'], result['action'], result['sha256_fingerprint']) == (False, 'none', first['sha256_fingerprint'])
    assert os.path.exists(paths.record)
    assert _job(paths, _no_transport).plan() == ('none', []) and ca.operations == ['simpleenroll', 'cacerts']


def test_renewal_keeps_the_key(paths, ca):
    _first_run(paths, ca)
    old_key_bytes = _read(paths.key)
    old_cert = _installed(paths)[1]
    job = _job(paths, ca.factory, wanted=_wanted(window=('share', 1.0)))  # the whole lifetime is the renewal window
    action, reasons = job.plan()
    assert action == 'reenroll'
    assert reasons[0].startswith('the certificate is inside its renewal window since ')
    result = job.run()
    key, cert = _installed(paths)
    assert (result['action'], result['operation'], result['changed']) == ('renewed', 'simplereenroll', True)
    assert _read(paths.key) == old_key_bytes
    assert keys_match(key, cert)
    assert cert.serial_number != old_cert.serial_number
    assert result['sha256_fingerprint'] == _pki.fingerprint(cert)
    assert ca.operations == ['simpleenroll', 'cacerts', 'simplereenroll', 'cacerts']
    # Re-enrollment authenticates with the certificate being renewed, and asks for the same names.
    assert ca.connections[1] == dict(CONNECTION, client_cert_path=paths.cert, client_key_path=paths.key)
    req = x509.load_der_x509_csr(ca.log[2][1])
    assert req.subject == old_cert.subject
    assert extension_values(req)['sans'] == extension_values(old_cert)['sans']
    assert public_key_der(req.public_key()) == public_key_der(old_cert.public_key())


def test_rekey_changes_the_key(paths, ca):
    _first_run(paths, ca)
    old_key, old_cert = _installed(paths)
    files = RecordingFiles()
    job = _job(paths, ca.factory, files=files, rekey=True, force=True)
    assert job.plan() == ('reenroll', ['force is set'])
    result = job.run()
    key, cert = _installed(paths)
    assert (result['action'], result['operation']) == ('rekeyed', 'simplereenroll')
    assert public_key_der(key.public_key()) != public_key_der(old_key.public_key())
    assert keys_match(key, cert) and not keys_match(old_key, cert)
    assert _mode(paths.key) == 0o600
    assert cert.subject == old_cert.subject
    assert paths.listing() == sorted(['chain.pem', 'dev.crt', 'dev.crt.est.json', 'dev.key', 'fullchain.pem'])
    # Staged first (the new key, secret, then the verified certificate: from here on the swap is decided),
    # then chain, key and certificate go in, the staged files go (the staged certificate last), then the record.
    assert files.events == [('write', 'dev.crt.pending.key', True, False), ('write', 'dev.crt.pending.pem', False, False),
                            ('write', 'chain.pem', False, False), ('write', 'dev.key', True, False),
                            ('write', 'dev.crt', False, False), ('write', 'fullchain.pem', False, False),
                            ('remove', 'dev.crt.pending.json'), ('remove', 'dev.crt.pending.key'),
                            ('remove', 'dev.crt.pending.pem'), ('write', 'dev.crt.est.json', False, True)]


def test_key_type_change_enrolls_with_a_new_key(paths, ca):
    _first_run(paths, ca)
    job = _job(paths, ca.factory, key_type='rsa-2048', wanted=_wanted(key_type='rsa-2048'))
    assert job.plan() == ('enroll', ['the key is ec-p256, rsa-2048 is wanted'])
    result = job.run()
    key, cert = _installed(paths)
    assert (result['action'], result['operation']) == ('rekeyed', 'simpleenroll')
    assert key_type_of(key) == 'rsa-2048' and keys_match(key, cert)


def test_pending_then_resume_with_the_same_request(paths, ca):
    ca.mode = 'pending'
    result = _job(paths, ca.factory).run()
    assert (result['changed'], result['action'], result['pending']) == (True, 'pending', True)
    assert (result['retry_after'], result['attempts']) == (60, 1)
    assert 'sha256_fingerprint' not in result
    assert paths.listing() == ['dev.crt.pending.json', 'dev.crt.pending.key']
    assert _mode(paths.pending['key']) == 0o600
    assert _mode(paths.pending['state']) == 0o600
    parked_key = load_private_key(_read(paths.pending['key']))
    record = json.loads(_read(paths.pending['state']).decode('utf-8'))
    assert (record['operation'], record['new_key'], record['attempts'], record['retry_after']) == ('simpleenroll', True, 1, 60)
    first_der = ca.log[0][1]
    assert record['csr'] == csr_pem(x509.load_der_x509_csr(first_der)).decode('ascii')
    assert result['pending_since'] == record['created']

    # Still pending: the same request again, one more attempt counted.
    job = _job(paths, ca.factory)
    assert job.plan()[0] == 'resume'
    result = job.run()
    assert (result['action'], result['attempts'], result['pending_since']) == ('pending', 2, record['created'])
    assert ca.log[1][1] == first_der

    # Issued: the parked key becomes the key, the pending files go away.
    ca.mode = 'issue'
    job = _job(paths, ca.factory)
    assert job.plan()[0] == 'resume'
    result = job.run()
    key, cert = _installed(paths)
    assert (result['action'], result['operation']) == ('enrolled', 'simpleenroll')
    assert ca.log[2][1] == first_der
    assert public_key_der(key.public_key()) == public_key_der(parked_key.public_key())
    assert keys_match(key, cert)
    assert _mode(paths.key) == 0o600
    assert paths.listing() == sorted(['chain.pem', 'dev.crt', 'dev.crt.est.json', 'dev.key', 'fullchain.pem'])
    assert _job(paths, _no_transport).plan() == ('none', [])


def test_pending_renewal_keeps_old_pair_until_issued(paths, ca):
    _first_run(paths, ca)
    before = paths.snapshot()
    ca.mode = 'pending'
    result = _job(paths, ca.factory, force=True).run()
    assert (result['action'], result['pending']) == ('pending', True)
    assert result['sha256_fingerprint'] == _pki.fingerprint(_installed(paths)[1])  # the current certificate is reported
    assert paths.snapshot() == before
    assert not os.path.exists(paths.pending['key'])  # renewal with the same key parks nothing
    record = json.loads(_read(paths.pending['state']).decode('utf-8'))
    assert (record['operation'], record['new_key']) == ('simplereenroll', False)
    assert _job(paths, _no_transport).plan()[0] == 'resume'  # the record does not hide a pending request
    ca.mode = 'issue'
    result = _job(paths, ca.factory).run()
    assert (result['action'], result['operation']) == ('renewed', 'simplereenroll')
    assert _read(paths.key) == before['key']
    assert ca.connections[-1]['client_cert_path'] == paths.cert


def test_wait_timeout_polls_within_one_run(paths, ca):
    ca.mode = 'pending_once'
    clock = Clock()
    job = enroll.Enrollment(_options(paths, wait_timeout=30), CONNECTION, transport_factory=ca.factory, sleep=clock.sleep, clock=clock)
    result = job.run()
    assert result['action'] == 'enrolled'
    assert clock.sleeps == [7]
    assert ca.operations == ['simpleenroll', 'simpleenroll', 'cacerts']
    assert ca.log[0][1] == ca.log[1][1]
    assert not os.path.exists(paths.pending['state']) and not os.path.exists(paths.pending['key'])


@pytest.mark.parametrize('mode, kind', [('error', 'forbidden'), ('wrong_key', 'verification')])
def test_failure_after_new_key_leaves_old_pair(paths, ca, mode, kind):
    _first_run(paths, ca)
    before = paths.snapshot()
    ca.mode = mode
    files = RecordingFiles()
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory, files=files, rekey=True, force=True).run()
    assert info.value.kind == kind
    assert paths.snapshot() == before
    assert paths.listing() == sorted(['chain.pem', 'dev.crt', 'dev.crt.est.json', 'dev.key', 'fullchain.pem'])
    # Nothing is written before a verified answer: the failure changed nothing on the host.
    assert files.events == []


def test_failure_on_first_enrollment_leaves_nothing(paths, ca):
    ca.mode = 'error'
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory).run()
    assert info.value.kind == 'forbidden'
    assert paths.listing() == []


def test_unusable_request_fails_before_any_file_or_request(paths, ca):
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory, wanted=_wanted(subject=[('2.5.4.3', 'x' * 65)])).run()
    assert info.value.kind == 'invalid_input'
    assert paths.listing() == []
    assert ca.log == []


def test_resume_with_a_foreign_csr_is_refused(paths, ca):
    parked, other = generate_private_key(), generate_private_key()
    with open(paths.pending['key'], 'wb') as handle:
        handle.write(private_key_pem(parked))
    pem = csr_pem(build_csr(other, [('2.5.4.3', 'dev.example')])).decode('ascii')
    with open(paths.pending['state'], 'w') as handle:
        handle.write(PendingState('simpleenroll', pem, True, '2030-01-01T00:00:00Z').to_json())
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory).run()
    assert info.value.kind == 'host_state'
    assert 'is not for the key it was made with' in info.value.message
    assert ca.log == []


def test_renew_only_without_certificate(paths, ca):
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory, renew_only=True).plan()
    assert info.value.kind == 'host_state'
    assert 'there is no valid certificate to renew at %s (there is no certificate)' % paths.cert in info.value.message
    assert ca.log == []


def test_external_csr_returns_certificate_pem(paths, ca, pki):
    key = generate_private_key('ec-p384')
    req = build_csr(key, [('2.5.4.3', 'external.example')], sans=['DNS:external.example'])
    options = enroll.Options(external_csr=req, wanted=Wanted(sans=['DNS:external.example']))
    job = enroll.Enrollment(options, CONNECTION, transport_factory=ca.factory)
    assert job.plan() == ('enroll', ['there is no certificate'])
    assert job.new_key_needed() is False
    result = job.run()
    certs = load_pem_certs(result['certificate_pem'])
    assert len(certs) == 1
    assert public_key_der(certs[0].public_key()) == public_key_der(key.public_key())
    assert _fps(load_pem_certs(result['chain_pem'])) == _fps([pki.intermediate, pki.root])
    assert (result['action'], result['changed'], result['sha256_fingerprint']) == ('enrolled', True, _pki.fingerprint(certs[0]))
    assert ca.log[0] == ('simpleenroll', csr_der(req))  # sent exactly as given
    assert paths.listing() == []


def test_external_csr_installs_and_is_idempotent(paths, ca):
    key = generate_private_key()
    req = build_csr(key, [('2.5.4.3', 'external.example')])
    options = enroll.Options(cert_path=paths.cert, chain_path=paths.chain, external_csr=req)
    result = enroll.Enrollment(options, CONNECTION, transport_factory=ca.factory).run()
    assert result['action'] == 'enrolled'
    assert load_pem_certs(_read(paths.cert))[0] == load_pem_certs(result['certificate_pem'])[0]
    assert paths.listing() == ['chain.pem', 'dev.crt']  # no key is written, and no record
    job = enroll.Enrollment(options, CONNECTION, transport_factory=_no_transport)
    assert job.plan() == ('none', [])
    assert job.run()['changed'] is False
    other = build_csr(generate_private_key(), [('2.5.4.3', 'external.example')])
    job = enroll.Enrollment(enroll.Options(cert_path=paths.cert, external_csr=other), CONNECTION, transport_factory=_no_transport)
    assert job.plan() == ('enroll', ['the certificate is not for the key of the CSR'])


# -- crash safety: a run stopped before any file step is repaired by the next run, offline -------------

class Crash(BaseException):
    """The process died here (BaseException: no engine code may catch it)."""


class CrashingFiles(enroll.Files):
    """The default file handling, dying just before the ``at``-th write or remove."""

    def __init__(self, at):
        self.at = at
        self.steps = []

    def _step(self, kind, path):
        self.steps.append((kind, os.path.basename(path)))
        if len(self.steps) == self.at:
            raise Crash(self.steps[-1])

    def write(self, path, data, mode=None, secret=False, bookkeeping=False):
        self._step('write', path)
        super(CrashingFiles, self).write(path, data, mode, secret, bookkeeping)

    def remove(self, path):
        self._step('remove', path)
        super(CrashingFiles, self).remove(path)


def _offline(**_connection):
    raise AssertionError('the repair run must not need the network')


@pytest.mark.parametrize('extra', [dict(rekey=True), dict()], ids=['rekey', 'renew'])
def test_killed_at_every_step_the_next_run_repairs_offline(paths, ca, extra):
    _first_run(paths, ca)
    before = paths.snapshot()
    old_key, old_cert = _installed(paths)
    steps = RecordingFiles()
    _job(paths, ca.factory, files=steps, force=True, **extra).run()
    names = [event[:2] for event in steps.events]
    commit = names.index(('write', 'dev.crt.pending.pem'))
    for at in range(1, len(names) + 1):
        for name, data in before.items():
            with open(getattr(paths, name), 'wb') as handle:
                handle.write(data)
        for name in paths.pending.values():
            if os.path.exists(name):
                os.unlink(name)
        with pytest.raises(Crash):
            _job(paths, ca.factory, files=CrashingFiles(at), force=True, **extra).run()
        # The same task without force: it must finish (or drop) what the killed run left, with no request.
        repair = _job(paths, _offline)
        repair.plan()
        result = repair.run()
        key, cert = _installed(paths)
        assert keys_match(key, cert), (at, names[at - 1])
        assert paths.listing() == sorted(['chain.pem', 'dev.crt', 'dev.crt.est.json', 'dev.key', 'fullchain.pem']), (at, names)
        committed = at - 1 > commit
        assert (cert != old_cert) is committed, (at, names[at - 1], result)
        if committed:
            assert result['action'] in ('recovered', 'none'), result
        chain = load_pem_certs(_read(paths.chain))
        cert.verify_directly_issued_by(chain[0])
        assert load_pem_certs(_read(paths.fullchain))[0] == cert
        assert repair.requests_made == 0


def test_a_staged_certificate_for_no_key_is_dropped_with_a_warning(paths, ca):
    from ansible_collections.pki.est.plugins.module_utils.codecs import certs_to_pem
    _first_run(paths, ca)
    stray = _pki.self_signed('stray.example')[0]
    with open(paths.pending['staged'], 'wb') as handle:
        handle.write(certs_to_pem([stray]).encode('ascii'))
    job = _job(paths, _offline)
    assert job.plan()[0] == 'recover'
    result = job.run()
    assert result['action'] == 'cleaned' and any('matched no key' in w for w in job.warnings)
    assert not os.path.exists(paths.pending['staged'])


def test_debris_of_a_killed_run_is_removed(paths, ca):
    _first_run(paths, ca)
    orphan_key = paths.pending['key']
    with open(orphan_key, 'wb') as handle:
        handle.write(private_key_pem(generate_private_key('ec-p256')))
    temp = os.path.join(str(paths.dir), '.dev.key.abcd1234.tmp')
    with open(temp, 'wb') as handle:
        handle.write(b'half a key')
    assert statecache.unchanged(paths.cert, paths.key, paths.chain, _wanted(), (paths.fullchain,)) is None
    job = _job(paths, _offline)
    assert job.plan()[0] == 'clean'
    result = job.run()
    assert result['changed'] is True and result['action'] == 'cleaned', result
    assert paths.listing() == sorted(['chain.pem', 'dev.crt', 'dev.crt.est.json', 'dev.key', 'fullchain.pem'])
    assert _job(paths, _offline).run()['action'] == 'none'


def test_reenrollment_repeats_names_the_user_could_not_write_today(paths, pki):
    """A certificate issued with a SAN that input validation now refuses still renews (RFC 7030 4.2.2)."""
    key = generate_private_key('ec-p256')
    odd = [x509.RFC822Name('not an email'), x509.UniformResourceIdentifier('example.com/no-scheme'), x509.DNSName('a..b')]
    root_cert, root_key = _pki.self_signed('Odd Names CA')
    previous = _pki.leaf_for(_pki.name('odd.example'), key.public_key(), root_cert, root_key,
                             extensions=[(x509.SubjectAlternativeName(odd), False)])
    job = _job(paths, _offline)
    csr = job._build_csr(key, 'simplereenroll', previous)  # pylint: disable=protected-access
    assert list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == odd
    assert csr.subject == previous.subject


def test_unusable_names_the_server_asks_for_are_warnings(paths):
    key = generate_private_key('ec-p256')
    job = _job(paths, _offline)
    csr = job._build_csr(key, 'simpleenroll', None, {'subject_alt_name': ['DNS:a..b', 'DNS:extra.example'],  # pylint: disable=protected-access
                                                     'subject': {'OU': 'bad\nvalue'}})
    sans = extension_values(csr)['sans']
    assert 'DNS:extra.example' in sans and not any('a..b' in s for s in sans)
    assert any("subject_alt_name 'DNS:a..b'" in w for w in job.warnings), job.warnings
    assert any('subject attribute OU' in w for w in job.warnings), job.warnings


# -- servers that leave the issuing CA out of /cacerts, CAs that drop SANs ------------------------------

def test_intermediates_path_completes_a_chain_cacerts_lacks(paths, ca, pki, tmp_path):
    from ansible_collections.pki.est.plugins.module_utils.codecs import certs_to_pem
    ca.root_only = True
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory).run()
    assert info.value.kind == 'verification' and 'intermediates_path' in info.value.message
    assert paths.listing() == []
    # A CA that does not chain to the server's anchors is no help: never trusted on its own.
    stray = tmp_path / 'stray.pem'
    stray.write_text(certs_to_pem([_pki.self_signed('Stray CA')[0]]))
    with pytest.raises(ESTError):
        _job(paths, ca.factory, intermediates_path=str(stray)).run()
    given = tmp_path / 'intermediates.pem'
    given.write_text(certs_to_pem([pki.intermediate]))
    result = _job(paths, ca.factory, intermediates_path=str(given)).run()
    assert result['action'] == 'enrolled'
    assert _fps(load_pem_certs(_read(paths.chain))) == _fps([pki.intermediate, pki.root])
    assert _fps(load_pem_certs(_read(paths.fullchain)))[1:] == _fps([pki.intermediate, pki.root])


def test_intermediates_path_that_is_missing_or_empty_is_invalid_input(paths, ca, tmp_path):
    ca.root_only = True
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory, intermediates_path=str(tmp_path / 'nothing.pem')).run()
    assert info.value.kind == 'invalid_input'
    assert paths.listing() == []


def test_a_ca_that_drops_sans_is_asked_once(paths, ca):
    ca.mode = 'drop_sans'
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory).run()
    assert 'lacks the requested subjectAltName' in info.value.message
    assert ca.operations.count('simpleenroll') == 1
    assert paths.listing() == ['dev.crt.refused.json']
    # The same request again: refused from the record, no request.
    with pytest.raises(ESTError) as info:
        _job(paths, ca.factory).run()
    assert 'none was sent' in info.value.message and 'refused_since' in info.value.details
    assert ca.operations.count('simpleenroll') == 1
    # A changed request, or force, asks again.
    with pytest.raises(ESTError):
        _job(paths, ca.factory, wanted=_wanted(sans=[normalize_san('DNS:other.example')])).run()
    assert ca.operations.count('simpleenroll') == 2
    with pytest.raises(ESTError):
        _job(paths, ca.factory, force=True).run()
    assert ca.operations.count('simpleenroll') == 3
    # With san_policy=warn the certificate is installed (it is a different request) and the refusal forgotten.
    job = _job(paths, ca.factory, san_policy='warn')
    assert job.run()['action'] == 'enrolled'
    assert any('lacks the requested subjectAltName' in w for w in job.warnings)
    assert 'dev.crt.refused.json' not in paths.listing()


# -- what /csrattrs demands (RFC 7030 4.5.2): met where it can be, refused by name where not -------------------

POLICIES = '2.5.29.32'


def _policies_hex():
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: F401
    ext = x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier('1.3.6.1.4.1.55555.1.2'), None)])
    return ext.public_bytes().hex()


def _demand(**kwargs):
    from ansible_collections.pki.est.plugins.module_utils.csrattrs import to_csr_requirements
    req = to_csr_requirements([])
    req.update(kwargs)
    return req


def test_demanded_key_type_is_made(paths):
    job = _job(paths, _offline, csr_attributes='apply')
    job.plan()
    assert job._new_key_type(_demand(key_type='ec', curve='secp384r1')) == 'ec-p384'  # pylint: disable=protected-access
    assert job._new_key_type(_demand(key_type='rsa')) == 'rsa-2048'  # pylint: disable=protected-access


def test_existing_key_of_another_type_is_replaced_for_a_demand(paths, ca):
    _first_run(paths, ca)
    job = _job(paths, _offline, csr_attributes='apply', force=True)
    job.plan()
    assert job.new_key_needed(_demand(key_type='ec', curve='secp384r1')) is True
    assert job.new_key_needed(_demand(key_type='ec', curve='secp256r1')) is False


@pytest.mark.parametrize('demand, words', [
    (dict(key_type='ec', curve='1.2.3.4'), 'curve 1.2.3.4'),
    (dict(attributes=['1.3.6.1.1.1.1.22']), 'macAddress'),
    (dict(extensions=[POLICIES]), 'certificatePolicies'),
])
def test_unmet_demands_fail_by_name_or_warn(paths, demand, words):
    key = generate_private_key('ec-p256')
    job = _job(paths, _offline, csr_attributes='apply')
    job.plan()
    with pytest.raises(ESTError) as info:
        job._build_csr(key, 'simpleenroll', None, _demand(**demand))  # pylint: disable=protected-access
    assert info.value.kind == 'invalid_input' and words in info.value.message and 'csr_attributes_unmet=warn' in info.value.message
    job = _job(paths, _offline, csr_attributes='apply', csr_attributes_unmet='warn')
    job.plan()
    job._build_csr(key, 'simpleenroll', None, _demand(**demand))  # pylint: disable=protected-access
    assert any(words in w for w in job.warnings), job.warnings


def test_key_type_option_against_a_different_demand(paths):
    job = _job(paths, _offline, csr_attributes='apply', key_type='ec-p256')
    job.plan()
    with pytest.raises(ESTError) as info:
        job._new_key_type(_demand(key_type='rsa', key_size=3072))  # pylint: disable=protected-access
    assert 'rsa-3072 key, but key_type is ec-p256' in info.value.message


def test_requested_extension_values_are_passed_through(paths):
    key = generate_private_key('ec-p256')
    job = _job(paths, _offline, csr_attributes='apply')
    job.plan()
    private = {'oid': '1.3.6.1.4.1.55555.7', 'critical': False, 'value_hex': '0c03616263', 'value': None}
    policies = {'oid': POLICIES, 'critical': False, 'value_hex': _policies_hex(), 'value': None}
    csr = job._build_csr(key, 'simpleenroll', None, _demand(extensions=[POLICIES, private['oid']],  # pylint: disable=protected-access
                                                            extension_values=[policies, private]))
    by_oid = dict((e.oid.dotted_string, e) for e in csr.extensions)
    assert by_oid['1.3.6.1.4.1.55555.7'].value.value == b'\x0c\x03abc'
    assert [p.policy_identifier.dotted_string for p in by_oid[POLICIES].value] == ['1.3.6.1.4.1.55555.1.2']
    assert job.warnings == []


def test_a_full_chain_with_other_content_is_written_again(paths, ca):
    _first_run(paths, ca)
    with open(paths.fullchain, 'w') as handle:
        handle.write(open(paths.chain).read())  # the right file name, the wrong content
    assert statecache.unchanged(paths.cert, paths.key, paths.chain, _wanted(), (paths.fullchain,)) is None
    job = _job(paths, ca.factory)
    action, reasons = job.plan()
    assert action == 'complete' and reasons == ['%s does not hold the current certificate and chain' % paths.fullchain]
    result = job.run()
    assert result['action'] == 'completed'
    key, cert = _installed(paths)
    assert load_pem_certs(_read(paths.fullchain))[0] == cert
    assert _job(paths, _no_transport).run()['action'] == 'none'
