# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A TPM 2.0 key held through tpm2-pkcs11 as the TLS client key of a re-enrollment (RFC 7030 3.3.2).

Python's ``ssl`` cannot use a PKCS#11 key, but the OpenSSL 3 ``tpm2`` provider (tpm2-openssl) can use a
TPM key from a ``TSS2 PRIVATE KEY`` PEM, and ``tpm2_ptool export`` writes exactly that for a tpm2-pkcs11
key. :class:`TPMClientKey` puts the two together for :class:`~.transport.ESTTransport` and
:mod:`.linking`, all in the module's own process:

1. The export: ``tpm2_ptool export`` of the key into a fresh 0700 directory (``tempfile.mkdtemp``,
   umask 077 for the child). The PEM holds the key's TPM2B_PUBLIC and its TPM2B_PRIVATE, which is
   encrypted by the TPM's storage parent (the tpm2-pkcs11 primary object, a persistent handle): it is
   useless without this very TPM. The key's object auth (a random string tpm2-pkcs11 made, kept in
   its store encrypted under a wrapping key the TPM unseals with the user PIN) is printed by the tool,
   read from the pipe and only kept in memory: it is the "password" of the PEM. The PIN goes to the
   tool on stdin (a small launcher runs tpm2_ptool's own script with it), never on a command line. The
   directory goes when the key is closed.
2. The ``default`` and ``tpm2`` providers are loaded into OpenSSL's default library context at run
   time (ctypes, on the very libcrypto Python's ``_ssl`` uses, so no OPENSSL_CONF and no subprocess).
3. The transport makes its ``ssl.SSLContext`` *first*, then :meth:`TPMClientKey.load_into` loads the
   certificate and the key into it while the default property query is ``?provider=tpm2``, and every
   request runs inside :meth:`TPMClientKey.window`, which sets that query for the handshake.

Why the property and why that order (OpenSSL 3.0): without ``?provider=tpm2`` libssl fetches the
default provider's ECDSA for the CertificateVerify signature, which cannot use a TPM key (the
handshake fails with "EVP lib"). With it in force when the SSL_CTX is made, libssl drops the NIST
groups (P-256/384/521) from supported_groups because the EC key manager it then fetches comes from
the tpm2 provider, which announces no TLS groups: TLS 1.2 to a server with an ECDSA certificate
fails ("no shared cipher"), and linking (RFC 7030 3.5, tls-unique) needs TLS 1.2. A context made
before the property is set keeps all groups. The ``?`` makes the query a preference: what the tpm2
provider lacks still comes from the default provider. While it is set, SHA-2 (the handshake
transcript) and the TLS 1.2 ECDHE key come from the TPM as well, which makes a handshake cost
0.25-0.6 s on swtpm. The property is process-wide while it is set: not for multi-threaded callers.

Host needs (:func:`unsupported_reason` checks them without touching the TPM): Linux, Python's ``ssl``
linked against OpenSSL >= 3.0 (a system libcrypto.so.3), not in FIPS mode, the ``tpm2`` provider
module (Debian/Ubuntu/Fedora: ``tpm2-openssl``) in that OpenSSL's modules directory (or
OPENSSL_MODULES), ``tpm2_ptool`` (Debian: ``libtpm2-pkcs11-tools``), a TCTI both tpm2-pkcs11 and the
provider reach (a resource manager: tpm2-abrmd or /dev/tpmrm0), and a token whose primary object is
persistent (``tpm2_ptool init`` default). Other PKCS#11 tokens (SoftHSM2, HSMs, smart cards) would
need pkcs11-provider, which Debian 12 does not ship; ``cryptography`` is not affected either way
(its wheels carry their own OpenSSL).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import glob
import os
import re
import shutil
import ssl
import subprocess
import tempfile

from .errors import ESTError

TPM2_PROPERTIES = b'?provider=tpm2'
# The PKCS#11 library of a TPM token: libtpm2_pkcs11.so[.1] (Debian, Fedora, upstream builds).
_TPM2_PKCS11 = re.compile(r'libtpm2_pkcs11\.so')
# The environment variables that name the TCTI, in the order they are asked: the provider's own, then the
# one tpm2-pkcs11 uses (the provider must reach the TPM the token's key lives in), then the tools'.
TCTI_VARIABLES = ('TPM2OPENSSL_TCTI', 'TPM2_PKCS11_TCTI', 'TPM2TOOLS_TCTI', 'TSS2_TCTI')
_OPENSSL_INFO_MODULES_DIR = 1003  # OPENSSL_INFO_MODULES_DIR (openssl/crypto.h, 3.0)

# Runs tpm2_ptool's own script with the PIN read from stdin put into its argv (inside the child,
# after exec: /proc/<pid>/cmdline keeps the placeholder).
_LAUNCHER = ("import runpy, sys\n"
             "pin = sys.stdin.readline().rstrip('\\n')\n"
             "script = sys.argv[1]\n"
             "sys.argv = [script] + [a.replace('@PIN@', pin) if a.startswith('--userpin=') else a for a in sys.argv[2:]]\n"
             "runpy.run_path(script, run_name='__main__')\n")
_OBJECT_AUTH = re.compile(r"^object-auth:\s*'?([0-9A-Fa-f]*)'?\s*$", re.M)
_EXTRA_PATH = ('/usr/sbin', '/usr/local/bin')


def is_tpm_token(module_path):
    """Whether ``module_path`` is the tpm2-pkcs11 library (its keys can be TLS client keys here)."""
    return bool(module_path and _TPM2_PKCS11.search(os.path.basename(module_path)))


def _which(program):
    return shutil.which(program, path=os.environ.get('PATH', '') + os.pathsep + os.pathsep.join(_EXTRA_PATH))


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


def unsupported_reason(module_path):
    """Why a key of the token library ``module_path`` cannot be a TLS client key on this host, or None.

    Cheap: looks at files and at the libcrypto already loaded; loads no provider and opens no TPM.
    """
    if not is_tpm_token(module_path):
        return ('the key is in %s, not in a TPM through tpm2-pkcs11: Python\'s TLS can only present a TPM key '
                '(through the OpenSSL tpm2 provider)' % (os.path.basename(module_path or '') or 'a PKCS#11 token'))
    try:
        openssl = OpenSSL()
    except ESTError as exc:
        return exc.message
    if openssl.lib.EVP_default_properties_is_fips_enabled(None):
        return 'OpenSSL runs in FIPS mode, in which the tpm2 provider cannot be preferred'
    if not openssl.provider_module('tpm2'):
        return ('the OpenSSL tpm2 provider is not installed in %s (Debian: tpm2-openssl)'
                % (os.environ.get('OPENSSL_MODULES') or openssl.modules_dir() or 'the OpenSSL modules directory'))
    ptool = _which('tpm2_ptool')
    if not ptool:
        return 'tpm2_ptool is not installed (Debian: libtpm2-pkcs11-tools)'
    if not _python_of(ptool):
        return '%s is not a Python script; it cannot be given the PIN on stdin' % ptool
    return None


class OpenSSL:
    """The libcrypto Python's ``_ssl`` is linked with, through ctypes."""

    def __init__(self):
        import ctypes
        path = self._loaded_libcrypto()
        if not path:
            raise ESTError('not_supported', 'cannot find the libcrypto that Python\'s ssl module uses (needs Linux /proc)')
        lib = ctypes.CDLL(path)
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() >> 28 < 3 or lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
            raise ESTError('not_supported', 'Python\'s ssl uses %s; a TPM TLS key needs OpenSSL 3 providers' % ssl.OPENSSL_VERSION)
        lib.OSSL_PROVIDER_load.restype = ctypes.c_void_p
        lib.OSSL_PROVIDER_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.OSSL_PROVIDER_unload.argtypes = [ctypes.c_void_p]
        lib.OSSL_PROVIDER_available.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.EVP_set_default_properties.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.EVP_default_properties_is_fips_enabled.argtypes = [ctypes.c_void_p]
        lib.OPENSSL_info.restype = ctypes.c_char_p
        lib.OPENSSL_info.argtypes = [ctypes.c_int]
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

    def modules_dir(self):
        value = self.lib.OPENSSL_info(_OPENSSL_INFO_MODULES_DIR)
        return value.decode('utf-8', 'replace') if value else None

    def provider_module(self, name):
        """The file of provider ``name`` OpenSSL would load, or None."""
        where = os.environ.get('OPENSSL_MODULES') or self.modules_dir()
        found = glob.glob(os.path.join(where, name + '.so')) if where else []
        return found[0] if found else None

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
            raise ESTError('token_library', 'OpenSSL could not load its %s provider (Debian: tpm2-openssl; is the TPM '
                           'reachable through TPM2OPENSSL_TCTI?): %s' % (name, self.errors()))
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


def attach_client_key(store, stack):
    """Give the token key ``store`` (:class:`~.tokenkeys.TokenKeyStore`) its TLS client key, closed with ``stack``
    (a :class:`contextlib.ExitStack`), when this host can present it in TLS; otherwise the reason it cannot
    (the key then renews with HTTP Basic). Costs no TPM access: the key is exported at its first handshake."""
    reason = unsupported_reason(store.ref.module_path)
    if reason is None and not store.label:
        reason = 'the pkcs11 URI names the key by id only, and a TLS client key is exported by its label (object=)'
    if reason is None:
        store.tls_key = stack.enter_context(TPMClientKey(store.session.token.label, store.label, store.ref.pin))
    return reason


def _tcti():
    for name in TCTI_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


class TPMClientKey:
    """The tpm2-pkcs11 key ``key_label`` of token ``token_label`` as a TLS client key; see the module doc.

    Nothing happens until :meth:`load_into` (the export costs about a second): a transport made
    for a run that sends no request costs nothing. :meth:`close` (or the ``with`` block) removes the
    exported PEM and unloads the providers.
    """

    def __init__(self, token_label, key_label, pin, timeout=60):
        self.token_label = token_label
        self.key_label = key_label
        self._pin = pin
        self.timeout = timeout
        self._directory = None
        self._pem = None
        self._auth = None
        self._openssl = None
        self._providers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _export(self):
        """``tpm2_ptool export`` into a 0700 temp directory: the TSS2 PEM's path, and its object auth kept in memory."""
        ptool = _which('tpm2_ptool')
        python = _python_of(ptool) if ptool else None
        if not python:
            raise ESTError('token_library', unsupported_reason('libtpm2_pkcs11.so') or 'tpm2_ptool cannot be run')
        self._directory = tempfile.mkdtemp(prefix='pki-est-tpmtls-')
        prefix = os.path.join(self._directory, 'key')
        argv = [python, '-c', _LAUNCHER, ptool, 'export', '--label=%s' % self.token_label, '--key-label=%s' % self.key_label,
                '--userpin=@PIN@', '--format=pem', '--output-prefix=%s' % prefix]
        if os.environ.get('TPM2_PKCS11_STORE'):
            argv.append('--path=%s' % os.environ['TPM2_PKCS11_STORE'])
        try:
            proc = subprocess.run(argv, input=(self._pin or '') + '\n', capture_output=True, text=True, timeout=self.timeout,
                                  cwd=self._directory, umask=0o077, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ESTError('key_store', 'tpm2_ptool export could not run: %s' % exc)
        match = _OBJECT_AUTH.search(proc.stdout)
        path = prefix + '.pem'
        if proc.returncode != 0 or not match or not os.path.isfile(path):
            text = (proc.stderr or '').replace(self._pin or '\0', '***').strip()[-500:]
            raise ESTError('key_store', 'tpm2_ptool export of key %r from token %r failed (rc=%d): %s'
                           % (self.key_label, self.token_label, proc.returncode, text or 'no object auth in its output'))
        with open(path, 'rb') as handle:
            if b'-----BEGIN TSS2 PRIVATE KEY-----' not in handle.read():
                raise ESTError('key_store', 'tpm2_ptool export of key %r gave no TSS2 private key' % self.key_label)
        self._pem, self._auth = path, match.group(1)

    def _load_providers(self):
        openssl = OpenSSL()
        tcti = _tcti()
        saved = os.environ.get('TPM2OPENSSL_TCTI')
        if tcti:
            os.environ['TPM2OPENSSL_TCTI'] = tcti  # the provider reads it when it loads
        try:
            for name in ('default', 'tpm2'):
                self._providers.append(openssl.load(name))
        except ESTError:
            for handle in reversed(self._providers):
                openssl.unload(handle)
            self._providers = []
            raise
        finally:
            if saved is None:
                os.environ.pop('TPM2OPENSSL_TCTI', None)
            else:
                os.environ['TPM2OPENSSL_TCTI'] = saved
        self._openssl = openssl

    def load_into(self, context, cert_path):
        """Load ``cert_path`` and the TPM key into ``context`` (made before this call, see the module doc)."""
        if self._pem is None:
            self._export()
        if self._openssl is None:
            self._load_providers()
        with self.window():
            try:
                context.load_cert_chain(cert_path, self._pem, password=self._auth or None)
            except (ssl.SSLError, OSError) as exc:
                raise ESTError('key_store', 'the TPM key %r cannot be the TLS client key of %s: %s%s'
                               % (self.key_label, cert_path, getattr(exc, 'reason', None) or exc,
                                  ' (%s)' % self._openssl.errors() if self._openssl else ''))

    @contextlib.contextmanager
    def window(self):
        """The span in which OpenSSL prefers the tpm2 provider: around every handshake with this key."""
        if self._openssl is None:
            yield
            return
        with self._openssl.properties(TPM2_PROPERTIES):
            yield

    def close(self):
        if self._openssl is not None:
            for handle in reversed(self._providers):
                self._openssl.unload(handle)
            self._providers, self._openssl = [], None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = self._pem = self._auth = None
