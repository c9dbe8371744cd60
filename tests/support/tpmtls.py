# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mutual TLS with a TPM 2.0 key held through tpm2-pkcs11 as the TLS client key (probe, not wired in yet).

Python's ``ssl`` cannot use a PKCS#11 key, but the OpenSSL 3 ``tpm2`` provider (tpm2-openssl) can use
a TPM key from a ``TSS2 PRIVATE KEY`` PEM, and ``tpm2_ptool export`` writes exactly that for a
tpm2-pkcs11 key. The mechanism, all in the calling process:

1. :func:`exported_key`: ``tpm2_ptool export`` of the token's private key into a fresh 0700
   directory (``tempfile.mkdtemp``, umask 077 for the child). The PEM holds the key's TPM2B_PUBLIC
   and its TPM2B_PRIVATE, which is encrypted by the TPM's storage parent (the tpm2-pkcs11 primary
   object, a persistent handle): it is useless without this very TPM. The key's object auth
   (a random hex string tpm2-pkcs11 made; kept in the store's sqlite database encrypted under a
   wrapping key the TPM unseals with the user PIN) is printed by the tool on its stdout, read from
   the pipe and only kept in memory; it is the "password" of the PEM. The PIN goes to the tool on
   stdin (a small launcher runs tpm2_ptool's own script with it), never on a command line.
   The directory and the PEM are removed when the ``with`` block ends.
2. :func:`mtls_post`: loads the ``default`` and ``tpm2`` providers into OpenSSL's default library
   context at run time (ctypes, on the very libcrypto Python's ``_ssl`` uses, so no OPENSSL_CONF
   and no subprocess), makes the ``ssl.SSLContext`` *first*, then sets the default property query
   ``?provider=tpm2`` only around ``load_cert_chain`` and the handshake, and resets it afterwards.

Why the property and why that order (OpenSSL 3.0): without ``?provider=tpm2`` libssl fetches the
default provider's ECDSA for the CertificateVerify signature, which cannot use a TPM key (the
handshake fails with "EVP lib"). With it in force when the SSL_CTX is made (OPENSSL_CONF
``default_properties``), libssl drops the NIST groups (P-256/384/521) from supported_groups because
the EC key manager it then fetches comes from the tpm2 provider, which announces no TLS groups:
TLS 1.3 still works (x25519), TLS 1.2 to a server with an ECDSA certificate fails ("no shared
cipher"), and linking (RFC 7030 3.5, tls-unique) needs TLS 1.2. Making the context before the
property is set keeps all groups: TLS 1.2 and 1.3 both work. While the property is set, SHA-2
digests (the handshake transcript), the TLS 1.2 ECDHE key and AES-CBC record keys made then come
from the TPM as well; that is what makes the handshake cost 0.25-0.6 s on swtpm. Do not use it in a
multi-threaded process: the property is process-wide for that time.

Host needs: Linux, Python's ``ssl`` linked against OpenSSL >= 3.0 (a system libcrypto.so.3), the
``tpm2`` provider module (Debian/Ubuntu: ``tpm2-openssl``; Fedora: ``tpm2-openssl``) in that
OpenSSL's MODULESDIR (or OPENSSL_MODULES), ``tpm2_ptool`` (Debian: ``libtpm2-pkcs11-tools`` +
``python3-tpm2-pkcs11-tools``), a TCTI both tpm2-pkcs11 and the provider reach (a resource manager:
tpm2-abrmd or /dev/tpmrm0; TPM2OPENSSL_TCTI is set from ``tcti`` when given), and a token whose
primary object is persistent (``tpm2_ptool init`` default; a transient one is untested). Not FIPS
mode (refused: the property would replace ``fips=yes``). ``cryptography`` is not affected: its
wheels carry their own OpenSSL.

Costs measured on swtpm + tpm2-abrmd: export 0.8-1.0 s (a Python tool start and a TPM unseal),
provider load ~0.02 s, key load ~0.01 s, handshake 0.25-0.6 s, the POST itself ~0.01 s.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import contextlib
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time

from ansible_collections.pki.est.plugins.module_utils.errors import ESTError

TPM2_PROPERTIES = b'?provider=tpm2'

# Runs tpm2_ptool's own script with the PIN read from stdin put into its argv (inside the child,
# after exec: /proc/<pid>/cmdline keeps the placeholder).
_LAUNCHER = ("import runpy, sys\n"
             "pin = sys.stdin.readline().rstrip('\\n')\n"
             "script = sys.argv[1]\n"
             "sys.argv = [script] + [a.replace('@PIN@', pin) if a.startswith('--userpin=') else a for a in sys.argv[2:]]\n"
             "runpy.run_path(script, run_name='__main__')\n")
_OBJECT_AUTH = re.compile(r"^object-auth:\s*'?([0-9A-Fa-f]*)'?\s*$", re.M)


def _which(program, extra=('/usr/sbin', '/usr/local/bin')):
    path = os.environ.get('PATH', '') + os.pathsep + os.pathsep.join(extra)
    return shutil.which(program, path=path)


def _python_of(script):
    """The interpreter of a ``#!...python...`` script, or None."""
    try:
        with open(script, 'rb') as handle:
            first = handle.readline(512).decode('utf-8', 'replace').strip()
    except OSError:
        return None
    if not first.startswith('#!') or 'python' not in first:
        return None
    parts = first[2:].split()
    if os.path.basename(parts[0]) == 'env' and len(parts) > 1:
        return _which(parts[1])
    return parts[0]


@contextlib.contextmanager
def exported_key(token_label, key_label, pin, store=None, env=None, ptool=None, timeout=60):
    """``with exported_key(...) as (pem_path, object_auth):`` the tpm2-pkcs11 private key ``key_label`` of
    token ``token_label`` as a TSS2 PEM in a 0700 temp directory, removed on exit.

    ``store``: the tpm2-pkcs11 store directory (else TPM2_PKCS11_STORE / the tool's search). ``env``:
    the environment of the tool (TPM2TOOLS_TCTI etc.; default os.environ). Errors: ``token_library``
    (no tool), ``key_store`` (the export failed; the tool's stderr, never the PIN).
    """
    ptool = ptool or _which('tpm2_ptool')
    if not ptool:
        raise ESTError('token_library', 'tpm2_ptool is not installed (Debian: libtpm2-pkcs11-tools)')
    python = _python_of(ptool)
    if not python:
        raise ESTError('token_library', '%s is not a Python script; cannot pass it the PIN on stdin' % ptool)
    directory = tempfile.mkdtemp(prefix='pki-est-tpmtls-')  # 0700
    try:
        prefix = os.path.join(directory, 'key')
        argv = [python, '-c', _LAUNCHER, ptool, 'export', '--label=%s' % token_label, '--key-label=%s' % key_label,
                '--userpin=@PIN@', '--format=pem', '--output-prefix=%s' % prefix]
        if store:
            argv.append('--path=%s' % store)
        try:
            proc = subprocess.run(argv, input=(pin or '') + '\n', capture_output=True, text=True, timeout=timeout,
                                  env=dict(os.environ if env is None else env), cwd=directory, umask=0o077, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ESTError('key_store', 'tpm2_ptool export could not run: %s' % exc)
        match = _OBJECT_AUTH.search(proc.stdout)
        path = prefix + '.pem'
        if proc.returncode != 0 or not match or not os.path.isfile(path):
            text = (proc.stderr or '').replace(pin or '\0', '***').strip()[-500:]
            raise ESTError('key_store', 'tpm2_ptool export of %r from token %r failed (rc=%d): %s'
                           % (key_label, token_label, proc.returncode, text or 'no object auth in its output'))
        with open(path, 'rb') as handle:
            if b'-----BEGIN TSS2 PRIVATE KEY-----' not in handle.read():
                raise ESTError('key_store', 'tpm2_ptool export of %r gave no TSS2 private key' % key_label)
        yield path, match.group(1)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class _OpenSSL:
    """The libcrypto Python's ``_ssl`` is linked with, through ctypes."""

    def __init__(self):
        import ctypes
        path = self._loaded_libcrypto()
        if not path:
            raise ESTError('not_supported', 'cannot find the libcrypto Python\'s ssl module uses (Linux /proc only)')
        lib = ctypes.CDLL(path)
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() >> 28 < 3 or lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
            raise ESTError('not_supported', 'Python\'s ssl uses %s; a TPM TLS key needs OpenSSL 3 providers'
                           % ssl.OPENSSL_VERSION)
        lib.OSSL_PROVIDER_load.restype = ctypes.c_void_p
        lib.OSSL_PROVIDER_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.OSSL_PROVIDER_unload.argtypes = [ctypes.c_void_p]
        lib.EVP_set_default_properties.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.EVP_default_properties_is_fips_enabled.argtypes = [ctypes.c_void_p]
        lib.ERR_get_error.restype = ctypes.c_ulong
        lib.ERR_error_string_n.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]
        self.ctypes = ctypes
        self.lib = lib

    @staticmethod
    def _loaded_libcrypto():
        import _ssl  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
        try:
            with open('/proc/self/maps') as handle:
                for line in handle:
                    fields = line.split()
                    if len(fields) >= 6 and re.search(r'/libcrypto\.so[.0-9]*$', fields[-1]):
                        return fields[-1]
        except OSError:
            return None
        return None

    def errors(self):
        texts = []
        buf = self.ctypes.create_string_buffer(256)
        while True:
            code = self.lib.ERR_get_error()
            if not code:
                return '; '.join(texts)
            self.lib.ERR_error_string_n(code, buf, 256)
            texts.append(buf.value.decode('ascii', 'replace'))

    def load(self, name):
        handle = self.lib.OSSL_PROVIDER_load(None, name.encode('ascii'))
        if not handle:
            raise ESTError('token_library', 'OpenSSL could not load the %s provider (Debian: tpm2-openssl; TPM reachable '
                           'through TPM2OPENSSL_TCTI?): %s' % (name, self.errors()))
        return handle

    def unload(self, handle):
        self.lib.OSSL_PROVIDER_unload(handle)

    @contextlib.contextmanager
    def properties(self, query):
        if self.lib.EVP_default_properties_is_fips_enabled(None):
            raise ESTError('not_supported', 'OpenSSL runs in FIPS mode; the tpm2 provider cannot be preferred')
        if self.lib.EVP_set_default_properties(None, query) != 1:
            raise ESTError('token_library', 'cannot set the OpenSSL property query: %s' % self.errors())
        try:
            yield
        finally:
            self.lib.EVP_set_default_properties(None, b'')


def _tls_error(what, exc, openssl):
    extra = openssl.errors()
    return ESTError('tls', '%s: %s%s' % (what, getattr(exc, 'reason', None) or exc, ' (%s)' % extra if extra else ''))


def mtls_post(url, ca_path, cert_path, key_pem_path, key_auth, body, headers, tcti=None, timeout=30, tls_max=None,
              channel_binding=None):
    """POST ``body`` to ``url`` over TLS whose client key is the TPM key in ``key_pem_path`` (TSS2 PEM,
    ``key_auth`` its object auth) and client certificate ``cert_path``; the server is verified
    against ``ca_path`` (a file). ``tls_max``: e.g. ``ssl.TLSVersion.TLSv1_2``. ``channel_binding``:
    optional ``f(tls_unique_bytes) -> body`` called after the handshake, for a linked request.

    Returns a dict: status, headers (list of pairs), body (bytes), tls_version, cipher, timings
    (seconds: providers, key_load, handshake, request).
    """
    import http.client
    from urllib.parse import urlsplit
    timings = {}
    began = time.monotonic()
    openssl = _OpenSSL()
    saved = os.environ.get('TPM2OPENSSL_TCTI')
    if tcti:
        os.environ['TPM2OPENSSL_TCTI'] = tcti  # read by the provider when it loads
    handles = []
    try:
        handles.append(openssl.load('default'))
        handles.append(openssl.load('tpm2'))
    except ESTError:
        for handle in handles:
            openssl.unload(handle)
        raise
    finally:
        if tcti:
            if saved is None:
                os.environ.pop('TPM2OPENSSL_TCTI', None)
            else:
                os.environ['TPM2OPENSSL_TCTI'] = saved
    timings['providers'] = round(time.monotonic() - began, 3)
    connection = None
    try:
        # The context first: made while no property is set, it keeps the NIST groups (see the module doc).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls_max is not None:
            context.maximum_version = tls_max
        context.load_verify_locations(cafile=ca_path)
        context.verify_flags |= getattr(ssl, 'VERIFY_X509_PARTIAL_CHAIN', 0)
        parts = urlsplit(url)
        connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=context, timeout=timeout)
        with openssl.properties(TPM2_PROPERTIES):
            step = time.monotonic()
            try:
                context.load_cert_chain(cert_path, key_pem_path, password=key_auth or None)
            except (ssl.SSLError, OSError) as exc:
                raise _tls_error('cannot use the TPM key %s with %s' % (key_pem_path, cert_path), exc, openssl)
            timings['key_load'] = round(time.monotonic() - step, 3)
            step = time.monotonic()
            try:
                connection.connect()
            except ssl.SSLError as exc:
                raise _tls_error('TLS with %s failed' % parts.netloc, exc, openssl)
            except OSError as exc:
                raise ESTError('connection', 'could not connect to %s: %s' % (parts.netloc, exc))
            timings['handshake'] = round(time.monotonic() - step, 3)
        step = time.monotonic()
        if channel_binding is not None:
            body = channel_binding(connection.sock.get_channel_binding('tls-unique'))
        headers = dict(headers or {})
        headers.setdefault('Content-Length', str(len(body)))
        try:
            connection.request('POST', parts.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ESTError('connection', 'the request to %s failed: %s' % (parts.netloc, exc))
        timings['request'] = round(time.monotonic() - step, 3)
        return {'status': response.status, 'headers': response.getheaders(), 'body': payload,
                'tls_version': connection.sock.version() if connection.sock else None,
                'cipher': connection.sock.cipher()[0] if connection.sock else None, 'timings': timings}
    finally:
        if connection is not None:
            connection.close()
        for handle in reversed(handles):
            openssl.unload(handle)


def est_post_with_tpm_key(url, ca_path, cert_path, token_label, key_label, pin, der, store=None, env=None, tcti=None,
                          timeout=30, tls_max=None, content_type='application/pkcs10', username=None, password=None):
    """An EST POST (``url`` = .../simplereenroll etc.) of ``der`` (base64-encoded here) authenticated by the
    TLS client certificate ``cert_path`` whose key is the tpm2-pkcs11 key ``key_label``: export, TLS, cleanup.

    Returns :func:`mtls_post`'s dict, with timings['export'] (seconds spent exporting).
    """
    from ansible_collections.pki.est.plugins.module_utils.codecs import encode_body
    headers = {'Content-Type': content_type, 'Content-Transfer-Encoding': 'base64', 'Accept': '*/*'}
    if username is not None:
        headers['Authorization'] = 'Basic ' + base64.b64encode(('%s:%s' % (username, password)).encode('utf-8')).decode('ascii')
    step = time.monotonic()
    with exported_key(token_label, key_label, pin, store=store, env=env, timeout=timeout) as (pem, auth):
        exported = round(time.monotonic() - step, 3)
        if tcti is None and env is not None:
            tcti = env.get('TPM2OPENSSL_TCTI') or env.get('TPM2TOOLS_TCTI')
        result = mtls_post(url, ca_path, cert_path, pem, auth, encode_body(der), headers, tcti=tcti, timeout=timeout,
                           tls_max=tls_max)
    result['timings']['export'] = exported
    return result
