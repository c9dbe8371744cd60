# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's TPM TLS client key (plugins/module_utils/tpmtls.py) on its own, against the lab server: an
EC P-256 key made in the emulated TPM's token (tokenkeys.generate_key) gets a certificate with HTTP Basic (the CSR
signed in the token), then ESTTransport re-enrolls with only that certificate and the TPM key as the credential
(/simplereenroll over mutual TLS). Afterwards the export is gone, the tpm2 provider is unloaded and OpenSSL
works as before; a wrong PIN is a clean error. The modules' use of it is in test_token_enroll.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import ssl
import sys
import tempfile

import pytest
import requests

from support.labserver import lab_server
from support.tpm import emulated_tpm

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), '.build', 'collections')
PASSWORD = 's3cret-Pa55'
KEY_LABEL = 'tls-client'
COMMON_NAME = 'tpm-client.example.test'


def _engine():
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.pki.est.plugins.module_utils import codecs, csr, csr_asn1, keys, tokenkeys, tpmtls, transport
    return codecs, csr, csr_asn1, keys, tokenkeys, tpmtls, transport


def _spki(public_key):
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _tpm2_provider_or_skip():
    if not glob.glob('/usr/lib/*/ossl-modules/tpm2.so') + glob.glob('/usr/lib*/ossl-modules/tpm2.so'):
        message = 'the OpenSSL 3 tpm2 provider is not installed (Debian: tpm2-openssl)'
        if os.environ.get('PKI_EST_REQUIRE_TPM', '') not in ('', '0'):
            pytest.fail(message)
        pytest.skip(message)
    if ssl.OPENSSL_VERSION_NUMBER >> 28 < 3:
        pytest.skip('Python ssl is linked with %s, not OpenSSL 3' % ssl.OPENSSL_VERSION)


def test_simplereenroll_over_mtls_with_a_tpm_key(tmp_path, monkeypatch):
    _tpm2_provider_or_skip()
    codecs, csr, csr_asn1, keys, tokenkeys, tpmtls, transport = _engine()
    exports = os.path.join(tempfile.gettempdir(), 'pki-est-tpmtls-*')
    leftovers = set(glob.glob(exports))
    with emulated_tpm(tmp_path) as tpm, lab_server(tmp_path, config={'users': {'alice': PASSWORD}}) as lab:
        for name, value in tpm.full_env().items():  # the tpm2 provider and tpm2_ptool find the TPM and the store so
            monkeypatch.setenv(name, value)
        assert tpmtls.unsupported_reason(str(tpm.module_path)) is None
        assert 'not in a TPM' in tpmtls.unsupported_reason('/usr/lib/softhsm/libsofthsm2.so')

        # A key in the token, and three CSRs signed there: one to enroll, two to re-enroll.
        pairs = csr.subject_pairs(common_name=COMMON_NAME)
        sans = [csr.normalize_san('DNS:' + COMMON_NAME)]
        with tpm.pkcs11() as lib:
            token = lib.get_token(token_label=tpm.token_label)
            with token.open(rw=True, user_pin=tpm.pin) as session:
                key = tokenkeys.generate_key(session, KEY_LABEL, None, 'ec-p256')
                sign = tokenkeys.signer(key)
                requests_der = []
                for _n in range(3):
                    draft = csr.build_csr(keys.generate_private_key('ec-p256'), pairs, sans)
                    requests_der.append(csr_asn1.rebuild_csr(csr.csr_der(draft), sign, public_key=key.public_key))
        token_spki = _spki(key.public_key)

        response = requests.post(lab.est_url('simpleenroll'), data=codecs.encode_body(requests_der[0]), auth=('alice', PASSWORD),
                                 headers={'Content-Type': 'application/pkcs10', 'Content-Transfer-Encoding': 'base64'},
                                 verify=lab.ca_path, timeout=30)
        assert response.status_code == 200, response.text
        enrolled = codecs.load_certs_only(codecs.decode_body(response.content))[0]
        assert _spki(enrolled.public_key()) == token_spki
        cert_path = tmp_path / 'client.crt'
        cert_path.write_text(codecs.certs_to_pem([enrolled]))

        # Without the client certificate the lab refuses re-enrollment: the certificate is the credential.
        plain = transport.ESTTransport(lab.url, ca_path=lab.ca_path)
        with pytest.raises(tpmtls.ESTError) as refused:
            plain.post('simplereenroll', requests_der[1], 'application/pkcs10')
        assert refused.value.kind in ('auth_required', 'forbidden'), refused.value

        # Mutual TLS with the TPM key, twice over one transport (the second request may reuse the connection).
        lab.clear_requests()
        with tpmtls.TPMClientKey(tpm.token_label, KEY_LABEL, tpm.pin) as client_key:
            mtls = transport.ESTTransport(lab.url, ca_path=lab.ca_path, client_cert_path=str(cert_path), client_key=client_key)
            assert len(glob.glob(exports)) == len(leftovers) + 1  # exported once, when the transport's context was made
            for der in requests_der[1:]:
                answer = mtls.post('simplereenroll', der, 'application/pkcs10')
                renewed = codecs.load_certs_only(codecs.decode_body(answer.body))[0]
                assert _spki(renewed.public_key()) == token_spki
                assert renewed.subject == enrolled.subject and renewed.serial_number != enrolled.serial_number
        assert [(entry['op'], entry['status'], entry['auth']) for entry in lab.requests()] == \
            [('simplereenroll', 200, 'cert')] * 2, lab.requests()
        assert set(glob.glob(exports)) == leftovers

        # A wrong PIN is a clean error before any request, and the PIN does not show up in it.
        with pytest.raises(tpmtls.ESTError) as failed:
            with tpmtls.TPMClientKey(tpm.token_label, KEY_LABEL, 'wrong-pin-123') as client_key:
                transport.ESTTransport(lab.url, ca_path=lab.ca_path, client_cert_path=str(cert_path), client_key=client_key)
        assert failed.value.kind == 'key_store' and 'wrong-pin-123' not in str(failed.value), failed.value

        # Nothing of the key was written anywhere under tmp_path but the token's store.
        for root, _dirs, files in os.walk(str(tmp_path)):
            if root.startswith(str(tpm.store_dir)) or '/template' in root:
                continue
            for name in files:
                with open(os.path.join(root, name), 'rb') as handle:
                    assert b'TSS2 PRIVATE KEY' not in handle.read(), os.path.join(root, name)
    # The tpm2 provider is no longer active in this process and OpenSSL works as before (no property left behind).
    assert tpmtls.OpenSSL().lib.OSSL_PROVIDER_available(None, b'tpm2') == 0
    import hashlib
    assert hashlib.sha256(b'abc').hexdigest().startswith('ba7816bf')
    assert set(glob.glob(exports)) == leftovers
