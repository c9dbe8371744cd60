# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tpmtls without a TPM: which keys can be TLS client keys, the export through tpm2_ptool (a stand-in script
with the real tool's interface), and its errors. The real TPM handshake is tests/integration/test_tpmtls.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import os
import stat
import sys

import pytest

from ansible_collections.pki.est.plugins.module_utils import tpmtls
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError

TPM_LIBRARY = '/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so'

# Behaves like `tpm2_ptool export` for the PIN 1234: writes <prefix>.pem and prints the object auth; otherwise it
# fails with the PIN in its error text, as a careless tool might.
FAKE_PTOOL = '''#!%s
import sys
args = dict(a[2:].split('=', 1) for a in sys.argv[1:] if a.startswith('--'))
if sys.argv[1] != 'export' or args.get('userpin') != '1234':
    sys.stderr.write('ERROR: login failed with pin %%s\\n' %% args.get('userpin'))
    sys.exit(1)
with open(args['output-prefix'] + '.pem', 'w') as handle:
    handle.write('-----BEGIN TSS2 PRIVATE KEY-----\\nAAAA\\n-----END TSS2 PRIVATE KEY-----\\n' if args['key-label'] != 'odd'
                 else 'not a key\\n')
print('object-auth: 0a1b2c3d')
'''


@pytest.fixture
def fake_ptool(tmp_path, monkeypatch):
    tool = tmp_path / 'bin' / 'tpm2_ptool'
    tool.parent.mkdir()
    tool.write_text(FAKE_PTOOL % sys.executable)
    tool.chmod(0o755)
    monkeypatch.setenv('PATH', str(tool.parent) + os.pathsep + os.environ.get('PATH', ''))
    return tool


def test_only_a_tpm_token_key_can_be_a_tls_client_key():
    assert tpmtls.is_tpm_token(TPM_LIBRARY) and tpmtls.is_tpm_token('/usr/lib64/libtpm2_pkcs11.so.1')
    assert not tpmtls.is_tpm_token('/usr/lib/softhsm/libsofthsm2.so') and not tpmtls.is_tpm_token(None)
    reason = tpmtls.unsupported_reason('/usr/lib/softhsm/libsofthsm2.so')
    assert 'libsofthsm2.so' in reason and 'not in a TPM' in reason


def test_what_the_host_lacks_is_named(tmp_path, monkeypatch, fake_ptool):
    monkeypatch.setenv('OPENSSL_MODULES', str(tmp_path))  # no tpm2.so there
    assert 'tpm2 provider is not installed in %s' % tmp_path in tpmtls.unsupported_reason(TPM_LIBRARY)
    (tmp_path / 'tpm2.so').write_bytes(b'')
    assert tpmtls.unsupported_reason(TPM_LIBRARY) is None  # the stand-in tool is a Python script
    monkeypatch.setattr(tpmtls, '_which', lambda program: None)
    assert 'tpm2_ptool is not installed' in tpmtls.unsupported_reason(TPM_LIBRARY)
    not_python = tmp_path / 'tool'
    not_python.write_text('#!/bin/sh\n')
    monkeypatch.setattr(tpmtls, '_which', lambda program: str(not_python))
    assert 'not a Python script' in tpmtls.unsupported_reason(TPM_LIBRARY)


class _Token:
    label = 'device'


class _Session:
    token = _Token()


class _Ref:
    def __init__(self, module_path):
        self.module_path = module_path
        self.pin = '1234'


class _Store:
    def __init__(self, module_path, label='web'):
        self.ref = _Ref(module_path)
        self.session = _Session()
        self.label = label
        self.tls_key = None


def test_attach_gives_a_tpm_key_a_lazy_client_key(tmp_path, monkeypatch, fake_ptool):
    monkeypatch.setenv('OPENSSL_MODULES', str(tmp_path))
    (tmp_path / 'tpm2.so').write_bytes(b'')
    with contextlib.ExitStack() as stack:
        store = _Store(TPM_LIBRARY)
        assert tpmtls.attach_client_key(store, stack) is None
        assert (store.tls_key.token_label, store.tls_key.key_label) == ('device', 'web')
        # Nothing is exported yet.
        assert store.tls_key._directory is None  # pylint: disable=protected-access
        by_id = _Store(TPM_LIBRARY, label=None)
        assert 'by id only' in tpmtls.attach_client_key(by_id, stack) and by_id.tls_key is None
        soft = _Store('/usr/lib/softhsm/libsofthsm2.so')
        assert 'not in a TPM' in tpmtls.attach_client_key(soft, stack) and soft.tls_key is None


def test_the_export_is_private_and_removed(fake_ptool):
    key = tpmtls.TPMClientKey('device', 'web', '1234')
    key._export()  # pylint: disable=protected-access
    directory, pem = key._directory, key._pem  # pylint: disable=protected-access
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700 and stat.S_IMODE(os.stat(pem).st_mode) & 0o077 == 0
    assert key._auth == '0a1b2c3d'  # pylint: disable=protected-access
    key.close()
    assert not os.path.exists(directory)


@pytest.mark.parametrize('label, pin, text', [
    ('web', 'wrong-pin-99', 'login failed with pin ***'),
    ('odd', '1234', 'gave no TSS2 private key'),
])
def test_export_errors_are_clean(fake_ptool, label, pin, text):
    key = tpmtls.TPMClientKey('device', label, pin)
    with pytest.raises(ESTError) as failed:
        key._export()  # pylint: disable=protected-access
    assert failed.value.kind == 'key_store' and text in failed.value.message and 'wrong-pin-99' not in failed.value.message
    key.close()
    assert key._directory is None  # pylint: disable=protected-access


def test_window_without_providers_changes_nothing():
    key = tpmtls.TPMClientKey('device', 'web', '1234')
    with key.window():
        pass
    key.close()
