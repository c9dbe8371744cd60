# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The C# side of Windows support, on Mono: plugins/module_utils/EstWin.cs and EstWinPlatform.cs and
roles/est_renewal/files/PkiEstRenew.cs compiled with ``mcs -langversion:5`` (the C# 5 of Windows PowerShell
5.1's Add-Type; warnings are errors, as with Ansible's Add-CSharpType), then tests/windows/EstWinTests.cs run:

- pure tests, whose CSRs this file checks with ``cryptography`` and which read the recorded /cacerts answers of
  the Python unit tests (tests/unit/fixtures);
- scenarios against the lab EST server with RSA keys (Mono cannot load EC certificates into X509Certificate2):
  /cacerts, enrollment with HTTP Basic, re-enrollment over mutual TLS by the RenewalRunner with a fake store,
  pending and faulty answers, and the error kinds, each checked against the lab's request log.

What only Windows can do (CNG key storage providers, the key paths of the certificate store, the event log)
compiles here and runs there. Debian packages: mono-mcs mono-runtime libmono-system-security4.0-cil (SignedCms, which
the tests compare with). Without ``mcs`` the tests skip, unless PKI_EST_REQUIRE_MONO=1 makes them fail.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import datetime
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support.labserver import lab_server

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIBRARY = [os.path.join(ROOT, 'plugins', 'module_utils', name) for name in ('EstWin.cs', 'EstWinPlatform.cs')]
ENTRY_POINT = os.path.join(ROOT, 'roles', 'est_renewal', 'files', 'PkiEstRenew.cs')
TESTS = [os.path.join(ROOT, 'tests', 'windows', name) for name in ('Fakes.cs', 'EstWinTests.cs')]
FIXTURES = os.path.join(ROOT, 'tests', 'unit', 'fixtures')
MCS = ['mcs', '-langversion:5', '-warnaserror+', '-nologo', '-r:System.Core.dll']
USER, PASSWORD = 'alice', 's3cret-Pa55'
CLIENT_NAME = 'win-client.example.test'


def _mono_or_skip():
    missing = [tool for tool in ('mcs', 'mono') if shutil.which(tool) is None]
    if missing:
        message = '%s not found (Debian: mono-mcs mono-runtime libmono-system-security4.0-cil)' % ' and '.join(missing)
        if os.environ.get('PKI_EST_REQUIRE_MONO', '') not in ('', '0'):
            pytest.fail(message)
        pytest.skip(message)


def _compile(args):
    proc = subprocess.run(MCS + args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope='module')
def build(tmp_path_factory):
    """PkiEstRenew.exe from the three files as the Windows host builds it, and the test runner."""
    _mono_or_skip()
    out = tmp_path_factory.mktemp('csharp')
    _compile(['-target:exe', '-out:%s' % (out / 'PkiEstRenew.exe'), ENTRY_POINT] + LIBRARY)
    _compile(['-target:exe', '-r:System.Security.dll', '-main:PkiEst.Tests.Program', '-out:%s' % (out / 'EstWinTests.exe'),
              ENTRY_POINT] + LIBRARY + TESTS)
    return out


@pytest.fixture(scope='module')
def vectors():
    """Inputs for the C# tests made with cryptography: ECDSA signatures in both forms, EC public keys, RSA keys."""
    ecdsa, ec_spki = [], []
    for curve, half, name in ((ec.SECP256R1(), 32, 'P-256'), (ec.SECP384R1(), 48, 'P-384')):
        key = ec.generate_private_key(curve)
        numbers = key.public_key().public_numbers()
        ec_spki.append({'curve': name, 'x': numbers.x.to_bytes(half, 'big').hex(), 'y': numbers.y.to_bytes(half, 'big').hex(),
                        'der': key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex()})
        # One signature of each shape: r or s with the high bit set (DER adds a 00), r a byte shorter, neither.
        top = 8 * half - 1
        shapes = {'r_high': lambda r, s: r >> top, 's_high': lambda r, s: s >> top, 'r_short': lambda r, s: r < 1 << (top - 7),
                  'plain': lambda r, s: not r >> top and not s >> top}
        found = {}
        for n in range(20000):
            der = key.sign(b'message %d' % n, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            for shape, test in shapes.items():
                if shape not in found and test(r, s):
                    found[shape] = {'p1363': (r.to_bytes(half, 'big') + s.to_bytes(half, 'big')).hex(), 'der': der.hex()}
            if len(found) == len(shapes):
                break
        assert len(found) == len(shapes), found.keys()
        ecdsa.extend(found.values())
    rsa_keys = []
    for _n in range(12):
        numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
        rsa_keys.append(dict((name, value.to_bytes(size, 'big').hex()) for name, value, size in (
            ('n', numbers.public_numbers.n, 256), ('e', numbers.public_numbers.e, 3), ('d', numbers.d, 256), ('p', numbers.p, 128),
            ('q', numbers.q, 128), ('dp', numbers.dmp1, 128), ('dq', numbers.dmq1, 128), ('qi', numbers.iqmp, 128))))
    return {'ecdsa': ecdsa, 'ec_spki': ec_spki, 'rsa_keys': rsa_keys}


def _run_tests(build, out_dir, vectors, args, env=None):
    out_dir.mkdir(exist_ok=True)
    (out_dir / 'vectors.json').write_text(json.dumps(vectors))
    # HOME: Mono's CurrentUser certificate store lives below it; the tests use one of their own.
    run_env = dict(os.environ, PKI_EST_OUT=str(out_dir), PKI_EST_FIXTURES=FIXTURES, HOME=str(out_dir / 'home'), **(env or {}))
    proc = subprocess.run(['mono', str(build / 'EstWinTests.exe')] + args, env=run_env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0 and 'FAIL' not in proc.stdout and 'all passed' in proc.stdout, proc.stdout + proc.stderr
    return proc


def test_the_compiler_holds_the_code_to_csharp_5(build, tmp_path):
    """The gate is real: what Windows PowerShell 5.1 cannot compile does not compile here either."""
    source = tmp_path / 'Modern.cs'
    source.write_text('public static class Modern { public static string Name(int n) => $"n={n}"; }\n')
    proc = subprocess.run(MCS + ['-target:library', '-out:%s' % (tmp_path / 'Modern.dll'), str(source)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0 and 'not part of the C# 5.0 language specification' in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def _renew(build, tmp_path, config, *args):
    path = tmp_path / 'renewal.json'
    path.write_text(json.dumps(config))
    env = dict(os.environ, HOME=str(tmp_path / 'home'))  # Mono's CurrentUser store lives below HOME
    return subprocess.run(['mono', str(build / 'PkiEstRenew.exe'), '--config', str(path)] + list(args), env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_entry_point(build, tmp_path):
    """PkiEstRenew.exe as the scheduled task runs it: exit 2 for an unusable config, 1 when there is nothing to renew."""
    config = {'url': 'https://127.0.0.1:9', 'ca_path': str(tmp_path / 'ca.pem'), 'certificate': 'CN=web', 'store_name': 7}
    proc = _renew(build, tmp_path, config, '--check')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == 'error: config %s: "store_name" must be a string' % (tmp_path / 'renewal.json'), proc.stderr

    config.update(store_name='My', store_location='CurrentUser')
    (tmp_path / 'home' / '.config' / '.mono' / 'certs' / 'My').mkdir(parents=True)  # an empty store, where Mono keeps CurrentUser\My
    proc = _renew(build, tmp_path, config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip() == ('error: CN=web: no certificate in CurrentUser\\My; a renewal client cannot enroll from scratch: '
                                   'run the playbook for this host'), proc.stderr

    proc = _renew(build, tmp_path, config, '--force', '--verbose')
    assert proc.returncode == 2 and 'unknown argument --verbose' in proc.stderr, proc.stdout + proc.stderr


# -- pure tests, and their CSRs checked by cryptography ---------------------------------------------------

def _extension(holder, oid):
    return holder.extensions.get_extension_for_oid(oid)


def test_pure(build, vectors, tmp_path):
    _run_tests(build, tmp_path / 'out', vectors, ['pure'])
    out = tmp_path / 'out'

    csr = x509.load_der_x509_csr((out / 'csr_full.der').read_bytes())
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert csr.public_key().key_size == 2048
    assert csr.subject.rfc4514_string() == r'CN=win-host.example.test,OU=Ops,O=Example\, Inc.,C=DE'
    san = _extension(csr, x509.SubjectAlternativeName.oid)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ['win-host.example.test', 'alias.example.test']
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ['192.0.2.10', '2001:db8::10']
    assert san.value.get_values_for_type(x509.RFC822Name) == ['ops@example.test']
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == ['https://win-host.example.test/']
    usage = _extension(csr, x509.KeyUsage.oid)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not (usage.value.content_commitment or usage.value.data_encipherment or usage.value.key_agreement or usage.value.key_cert_sign
                or usage.value.crl_sign)
    eku = _extension(csr, x509.ExtendedKeyUsage.oid)
    assert not eku.critical
    assert [oid.dotted_string for oid in eku.value] == [ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,
                                                        ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string, '1.3.6.1.5.5.7.3.17']
    assert csr.attributes.get_attribute_for_oid(x509.oid.AttributeOID.CHALLENGE_PASSWORD).value == b's3cret pw'

    bare = x509.load_der_x509_csr((out / 'csr_san_only.der').read_bytes())
    assert bare.is_signature_valid and len(bare.subject) == 0
    bare_san = _extension(bare, x509.SubjectAlternativeName.oid)
    assert bare_san.critical, 'RFC 5280 4.2.1.6: subjectAltName is critical when the subject is empty'
    assert bare_san.value.get_values_for_type(x509.DNSName) == ['no-subject.example.test']

    # The renewal request repeats the certificate's subject, names and usages (RFC 7030 4.2.2), for its key.
    renewal = x509.load_der_x509_csr((out / 'csr_renewal.der').read_bytes())
    current = x509.load_pem_x509_certificate((out / 'renewed_from.pem').read_bytes())
    assert renewal.is_signature_valid
    assert renewal.subject == current.subject
    assert renewal.public_key().public_numbers() == current.public_key().public_numbers()
    for oid in (x509.SubjectAlternativeName.oid, x509.KeyUsage.oid, x509.ExtendedKeyUsage.oid):
        assert _extension(renewal, oid) == _extension(current, oid), oid


# -- against the lab EST server ------------------------------------------------------------------------------

@contextlib.contextmanager
def _forwarder(host, target_port):
    """A TCP relay from host:PORT to the lab on 127.0.0.1: same server, reached under a name its certificate lacks."""
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(8)
    stop = threading.Event()

    def pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def accept():
        while not stop.is_set():
            try:
                client, _address = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(('127.0.0.1', target_port))
            for pair in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=pair, daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield 'https://%s:%d' % (host, listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()


@contextlib.contextmanager
def _silent_server():
    """Accepts TCP connections (the kernel does) and never answers: the TLS handshake waits until the client gives up."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    try:
        yield 'https://127.0.0.1:%d' % listener.getsockname()[1]
    finally:
        listener.close()


def _other_ca(path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'estlab Lab CA')])  # the lab CA's name, another key
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope='module')
def rsa_lab_server(tmp_path_factory):
    with lab_server(tmp_path_factory.mktemp('lab'), key_type='rsa', config={'users': {USER: PASSWORD}}) as server:
        yield server


@pytest.fixture
def rsa_lab(rsa_lab_server):
    """The module's lab server with an empty request log, no faults, no pending table."""
    server = rsa_lab_server
    server.clear_requests()
    server.clear_faults()
    server.clear_pending()
    yield server
    server.clear_faults()
    server.set_config(pending=None)


def _run_lab(build, vectors, tmp_path, lab, scenario, *arguments, **env):
    env.update(PKI_EST_LAB_URL=lab.url, PKI_EST_LAB_CA=lab.ca_path, PKI_EST_LAB_USER=USER, PKI_EST_LAB_PASSWORD=PASSWORD)
    return _run_tests(build, tmp_path / 'out', vectors, ['lab', scenario] + list(arguments), env)


def _log(lab):
    return [(entry['op'], entry['status'], entry['auth']) for entry in lab.requests()]


def _load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def _spki(cert):
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_lab_cacerts(build, vectors, tmp_path, rsa_lab):
    _run_lab(build, vectors, tmp_path, rsa_lab, 'cacerts')
    assert _log(rsa_lab) == [('cacerts', 200, 'none')] * 3


def test_lab_enroll_then_renew_over_mutual_tls(build, vectors, tmp_path, rsa_lab):
    _run_lab(build, vectors, tmp_path, rsa_lab, 'renew')
    # One enrollment with Basic; the not-due run sent nothing; two re-enrollments authenticated by the certificate.
    assert _log(rsa_lab) == [('simpleenroll', 200, 'basic'), ('simplereenroll', 200, 'cert'), ('simplereenroll', 200, 'cert')]
    out = tmp_path / 'out'
    ca = _load(pathlib.Path(rsa_lab.ca_path))
    enrolled, renewed, rekeyed = (_load(out / name) for name in ('enrolled.pem', 'renewed.pem', 'rekeyed.pem'))
    for cert in (enrolled, renewed, rekeyed):
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string() == 'CN=%s,O=pki.est tests' % CLIENT_NAME
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [CLIENT_NAME] and [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ['127.0.0.1']
    assert _spki(renewed) == _spki(enrolled) != _spki(rekeyed)
    assert len({enrolled.serial_number, renewed.serial_number, rekeyed.serial_number}) == 3


def test_lab_pending_reenrollment_changes_nothing(build, vectors, tmp_path, rsa_lab):
    rsa_lab.set_config(pending={'after_polls': 1})
    _run_lab(build, vectors, tmp_path, rsa_lab, 'pending')
    assert _log(rsa_lab) == [('simpleenroll', 202, 'basic'), ('simpleenroll', 200, 'basic'), ('simplereenroll', 202, 'cert')]


@pytest.mark.parametrize('fault, status, kind', [
    ('http500', 500, 'http'),
    ('wrong_key', 200, 'verification'),  # a certificate for another key: refused before anything is installed
    ('bad_pkcs7', 200, 'bad_response'),
])
def test_lab_faulty_reenrollment_changes_nothing(build, vectors, tmp_path, rsa_lab, fault, status, kind):
    rsa_lab.set_fault('simplereenroll', fault)
    _run_lab(build, vectors, tmp_path, rsa_lab, 'fault', kind)
    entries = rsa_lab.requests()
    assert _log(rsa_lab) == [('simpleenroll', 200, 'basic'), ('simplereenroll', status, 'cert')]
    assert entries[1]['fault'] == fault


def test_lab_error_kinds(build, vectors, tmp_path, rsa_lab):
    rsa_lab.set_fault('cacerts', 'http500', count=1)
    rsa_lab.set_fault('simpleenroll', 'bad_pkcs7', count=1)
    other_ca = tmp_path / 'other-ca.pem'
    _other_ca(other_ca)
    with _forwarder('127.0.0.2', rsa_lab.port) as wrong_name, _silent_server() as silent:
        _run_lab(build, vectors, tmp_path, rsa_lab, 'errors', PKI_EST_OTHER_CA=str(other_ca), PKI_EST_WRONG_NAME_URL=wrong_name,
                 PKI_EST_SILENT_URL=silent)
    # The untrusted, wrong-name, silent and closed servers got no HTTP request: the lab saw these six only.
    assert [(op, status) for op, status, _auth in _log(rsa_lab)] == [
        ('cacerts', 500), ('simpleenroll', 200), ('simpleenroll', 400), ('simplereenroll', 403), ('simpleenroll', 401), ('cacerts', 404)]
