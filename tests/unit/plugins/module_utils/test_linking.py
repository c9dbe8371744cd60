# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 7030 3.5 linking: the CSR carries the tls-unique of the very connection it travels on.

A small TLS server on 127.0.0.1 reads the tls-unique of each connection on its side and
compares it with the challengePassword of the CSR that arrives over it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import contextlib
import os
import socketserver
import ssl
import tempfile
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AttributeOID

from ansible_collections.pki.est.plugins.module_utils import linking
from ansible_collections.pki.est.plugins.module_utils.csr import build_csr, csr_der, subject_pairs
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.plugins.module_utils.keys import generate_private_key
from ansible_collections.pki.est.plugins.module_utils.transport import ESTTransport
from ansible_collections.pki.est.tests.support.rogue import RoguePKI


class _Handler(socketserver.StreamRequestHandler):

    def handle(self):
        server = self.server
        binding = self.request.get_channel_binding('tls-unique')
        head = b''
        while not head.endswith(b'\r\n\r\n'):
            chunk = self.rfile.read(1)
            if not chunk:
                return
            head += chunk
        length = [int(line.split(b':', 1)[1]) for line in head.split(b'\r\n') if line.lower().startswith(b'content-length:')][0]
        body = self.rfile.read(length)
        csr = x509.load_der_x509_csr(base64.b64decode(body))
        challenge = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
        server.seen.append((challenge, base64.b64encode(binding) if binding else None, self.request.version()))
        answer = b'linked' if binding and challenge == base64.b64encode(binding) else b'not linked'
        self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s'
                         % (len(answer), answer))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context):
        socketserver.ThreadingTCPServer.__init__(self, ('127.0.0.1', 0), _Handler)
        self.context = context
        self.seen = []

    def get_request(self):
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True), address


@pytest.fixture
def tls_server():
    pki = RoguePKI()
    work = tempfile.mkdtemp(prefix='linking-')
    cert_file, key_file, ca_file = (os.path.join(work, n) for n in ('tls.pem', 'tls.key', 'ca.pem'))
    with open(cert_file, 'wb') as handle:
        handle.write(pki.genuine_tls.public_bytes(serialization.Encoding.PEM))
    with open(key_file, 'wb') as handle:
        handle.write(pki.tls_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    with open(ca_file, 'wb') as handle:
        handle.write(pki.root.public_bytes(serialization.Encoding.PEM))
    servers = []

    def start(max_version=None):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        if max_version is not None:
            context.minimum_version = max_version
            context.maximum_version = max_version
        server = _Server(context)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, 'https://127.0.0.1:%d' % server.server_address[1], ca_file

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _make_der(seen):
    key = generate_private_key('ec-p256')

    def make(challenge):
        seen.append(challenge)
        return csr_der(build_csr(key, subject_pairs('linked.example'), challenge_password=challenge))
    return make


def test_the_csr_carries_the_tls_unique_of_its_own_connection(tls_server):
    server, url, ca_file = tls_server()
    transport = ESTTransport(url, ca_path=ca_file)
    made = []
    answer = linking.linked_post(transport, 'simpleenroll', _make_der(made), 'application/pkcs10')
    assert answer.body == b'linked'
    challenge, binding, version = server.seen[0]
    assert version == 'TLSv1.2' and challenge == binding == made[0].encode('ascii')
    # A second request is a second connection, with its own value.
    linking.linked_post(transport, 'simpleenroll', _make_der(made), 'application/pkcs10')
    assert server.seen[1][0] != server.seen[0][0] and transport.requests_made == 2


def test_a_tls13_only_server_cannot_be_linked_with(tls_server):
    _server, url, ca_file = tls_server(ssl.TLSVersion.TLSv1_3)
    with pytest.raises(ESTError) as info:
        linking.linked_post(ESTTransport(url, ca_path=ca_file), 'simpleenroll', _make_der([]), 'application/pkcs10')
    assert info.value.kind == 'tls' and 'TLS 1.2' in info.value.message


def test_the_linked_connection_verifies_the_server(tls_server):
    _server, url, _ca_file = tls_server()
    other = tempfile.NamedTemporaryFile(suffix='.pem', delete=False)
    other.write(RoguePKI().root.public_bytes(serialization.Encoding.PEM))
    other.close()
    with pytest.raises(ESTError) as info:
        linking.linked_post(ESTTransport(url, ca_path=other.name), 'simpleenroll', _make_der([]), 'application/pkcs10')
    assert info.value.kind == 'tls'
    os.unlink(other.name)


class _ClientKey:
    """A client key that is not a file (as tpmtls.TPMClientKey): records what the transport asks of it."""

    def __init__(self):
        self.loaded = []
        self.windows = 0

    def load_into(self, context, cert_path):
        self.loaded.append((type(context).__name__, cert_path))

    @contextlib.contextmanager
    def window(self):
        self.windows += 1
        yield


def test_a_client_key_in_a_token_is_loaded_into_each_context_and_used_inside_its_window(tls_server):
    _server, url, ca_file = tls_server(ssl.TLSVersion.TLSv1_2)
    client_key = _ClientKey()
    transport = ESTTransport(url, ca_path=ca_file, client_cert_path='/etc/pki/host.crt', client_key=client_key)
    assert transport.cert is None  # urllib3 must not load a key file of its own
    assert client_key.loaded == [('SSLContext', '/etc/pki/host.crt')] and client_key.windows == 0
    static = csr_der(build_csr(generate_private_key('ec-p256'), subject_pairs('x'), challenge_password='static'))
    answer = transport.post('simpleenroll', static, 'application/pkcs10')
    assert answer.status == 200 and client_key.windows == 1
    linking.linked_post(transport, 'simpleenroll', _make_der([]), 'application/pkcs10')
    assert client_key.loaded[-1] == ('SSLContext', '/etc/pki/host.crt') and len(client_key.loaded) == 2
    assert client_key.windows == 2 and transport.requests_made == 2


@pytest.mark.parametrize('extra, text', [
    (dict(), 'needs client_cert_path'),
    (dict(client_cert_path='/c.pem', client_key_path='/c.key'), 'exclude each other'),
])
def test_a_client_key_in_a_token_needs_a_certificate_and_no_key_file(extra, text):
    with pytest.raises(ESTError) as failed:
        ESTTransport('https://est.example.test', client_key=_ClientKey(), **extra)
    assert failed.value.kind == 'invalid_input' and text in failed.value.message
