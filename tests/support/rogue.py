# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A hostile EST server for tests: /cacerts with a "CA" that an end-entity key signed.

The attack (RFC 7030 4.1.3 requires path validation of every /cacerts certificate but the
pinned one): a device holding an ordinary certificate from the genuine root makes itself a
CA certificate with its own key and serves [genuine root, its device certificate, its CA]
from /cacerts. A client that keeps whatever is "issued by" an accepted certificate trusts
the fake CA, and then the server's TLS certificate (``tls='mitm'``, issued by the fake CA)
and the certificates it issues. Runs on 127.0.0.1 in a thread; ``with RogueServer(...) as s``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import http.server
import ipaddress
import os
import ssl
import tempfile
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(common_name):
    return x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])


def _cert(subject, public_key, issuer_name, issuer_key, ca, sans=None, path_length=None):
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(hours=1)).not_valid_after(NOW + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class RoguePKI:
    """The genuine root, a device certificate it issued, and the fake CA the device key signed."""

    def __init__(self):
        key = ec.generate_private_key
        self.root_key = key(ec.SECP256R1())
        self.root = _cert(_name('Genuine Root CA'), self.root_key.public_key(), _name('Genuine Root CA'), self.root_key, True)
        self.device_key = key(ec.SECP256R1())
        self.device = _cert(_name('some-device.example'), self.device_key.public_key(), self.root.subject, self.root_key, False)
        self.fake_key = key(ec.SECP256R1())
        self.fake_ca = _cert(_name('Fake Issuing CA'), self.fake_key.public_key(), self.device.subject, self.device_key, True)
        names = [x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]
        self.tls_key = key(ec.SECP256R1())
        # The server certificate of a man in the middle (from the fake CA), or a genuine one (from the root).
        self.mitm_tls = _cert(_name('127.0.0.1'), self.tls_key.public_key(), self.fake_ca.subject, self.fake_key, False, names)
        self.genuine_tls = _cert(_name('127.0.0.1'), self.tls_key.public_key(), self.root.subject, self.root_key, False, names)

    def issue_from_fake_ca(self, csr):
        return _cert(csr.subject, csr.public_key(), self.fake_ca.subject, self.fake_key, False)


def _certs_only(certs):
    return base64.encodebytes(pkcs7.serialize_certificates(certs, serialization.Encoding.DER))


class RogueServer:

    def __init__(self, pki, tls='mitm'):
        self.pki = pki
        self.tls = tls
        self.requests = []
        self._dir = tempfile.mkdtemp(prefix='rogue-est-')
        self.ca_path = os.path.join(self._dir, 'genuine-root.pem')
        with open(self.ca_path, 'wb') as handle:
            handle.write(pki.root.public_bytes(serialization.Encoding.PEM))

    @property
    def cacerts(self):
        return [self.pki.root, self.pki.device, self.pki.fake_ca]

    def __enter__(self):
        server = self
        pki = self.pki

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _answer(self, status, body, content_type='application/pkcs7-mime; smime-type=certs-only'):
                self.send_response(status)
                self.send_header('Content-Type', content_type)
                self.send_header('Content-Transfer-Encoding', 'base64')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                server.requests.append(('GET', self.path))
                if self.path.endswith('/cacerts'):
                    self._answer(200, _certs_only(server.cacerts))
                else:
                    self._answer(404, b'not here\n', 'text/plain')

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
                server.requests.append(('POST', self.path))
                if not self.path.endswith('/simpleenroll'):
                    self._answer(404, b'not here\n', 'text/plain')
                    return
                csr = x509.load_der_x509_csr(base64.b64decode(body))
                issued = pki.issue_from_fake_ca(csr)
                self._answer(200, _certs_only([issued, pki.fake_ca, pki.device]))

        tls_cert = self.pki.mitm_tls if self.tls == 'mitm' else self.pki.genuine_tls
        chain = [tls_cert, self.pki.fake_ca, self.pki.device] if self.tls == 'mitm' else [tls_cert]
        cert_file = os.path.join(self._dir, 'tls.pem')
        key_file = os.path.join(self._dir, 'tls.key')
        with open(cert_file, 'wb') as handle:
            handle.write(b''.join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        with open(key_file, 'wb') as handle:
            handle.write(self.pki.tls_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = 'https://127.0.0.1:%d' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.httpd.shutdown()
        self.httpd.server_close()
        import shutil
        shutil.rmtree(self._dir, ignore_errors=True)
