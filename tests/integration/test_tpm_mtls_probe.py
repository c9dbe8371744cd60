# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe: /simplereenroll (RFC 7030 4.2.2) over mutual TLS whose client key is a TPM 2.0 key held through
tpm2-pkcs11, against the lab server, with tests/support/tpmtls.py (not used by the modules yet) (tpm2_ptool export + the OpenSSL 3
tpm2 provider loaded at run time into the libcrypto of Python's ssl).

An EC P-256 key is made in the emulated TPM's token (tokenkeys.generate_key), a certificate for it is enrolled
with HTTP Basic (the CSR signed in the token), then the same key re-enrolls with only its certificate as the
credential, over TLS 1.3 and over TLS 1.2 (the version linking needs)."""

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
    from ansible_collections.pki.est.plugins.module_utils import codecs, csr, csr_asn1, keys, tokenkeys
    from support import tpmtls
    return codecs, csr, csr_asn1, keys, tokenkeys, tpmtls


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
    codecs, csr, csr_asn1, keys, tokenkeys, tpmtls = _engine()
    leftovers = set(glob.glob(os.path.join(tempfile.gettempdir(), 'pki-est-tpmtls-*')))
    with emulated_tpm(tmp_path) as tpm, lab_server(tmp_path, config={'users': {'alice': PASSWORD}}) as lab:
        env = tpm.full_env()
        for name, value in tpm.env.items():  # the tpm2 provider runs in this process: tabrmd TCTI needs the bus
            monkeypatch.setenv(name, value)

        # (b) a key in the token, (c) two CSRs signed in the token: one to enroll, one to re-enroll.
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
        refused = requests.post(lab.est_url('simplereenroll'), data=codecs.encode_body(requests_der[1]),
                                headers={'Content-Type': 'application/pkcs10', 'Content-Transfer-Encoding': 'base64'},
                                verify=lab.ca_path, timeout=30)
        assert refused.status_code in (401, 403), refused.status_code

        # (d) mutual TLS with the TPM key, TLS 1.3 (default) and TLS 1.2.
        timings = {}
        for der, tls_max, version in ((requests_der[1], None, 'TLSv1.3'), (requests_der[2], ssl.TLSVersion.TLSv1_2, 'TLSv1.2')):
            lab.clear_requests()
            result = tpmtls.est_post_with_tpm_key(lab.est_url('simplereenroll'), lab.ca_path, str(cert_path), tpm.token_label,
                                                  KEY_LABEL, tpm.pin, der, store=str(tpm.store_dir), env=env,
                                                  tcti=tpm.tcti, tls_max=tls_max)
            assert result['status'] == 200, (result['status'], result['body'][:300])
            assert result['tls_version'] == version, result
            renewed = codecs.load_certs_only(codecs.decode_body(result['body']))[0]
            assert _spki(renewed.public_key()) == token_spki
            assert renewed.subject == enrolled.subject and renewed.serial_number != enrolled.serial_number
            log = [entry for entry in lab.requests() if entry['op'] == 'simplereenroll']
            assert [(entry['status'], entry['auth']) for entry in log] == [(200, 'cert')], log
            timings[version] = result['timings']
        print('tpmtls timings (s): %s; TPM start: %s' % (timings, tpm.timings))

        # The exported PEM is gone; nothing else of the key was written anywhere under tmp_path but the token's store.
        assert set(glob.glob(os.path.join(tempfile.gettempdir(), 'pki-est-tpmtls-*'))) == leftovers
        for root, _dirs, files in os.walk(str(tmp_path)):
            if root.startswith(str(tpm.store_dir)) or '/template' in root:
                continue
            for name in files:
                with open(os.path.join(root, name), 'rb') as handle:
                    assert b'TSS2 PRIVATE KEY' not in handle.read(), os.path.join(root, name)

        # A wrong PIN is a clean error, and the PIN does not show up in it.
        with pytest.raises(tpmtls.ESTError) as failed:
            tpmtls.est_post_with_tpm_key(lab.est_url('simplereenroll'), lab.ca_path, str(cert_path), tpm.token_label, KEY_LABEL,
                                         'wrong-pin-123', requests_der[1], store=str(tpm.store_dir), env=env, tcti=tpm.tcti)
        assert failed.value.kind == 'key_store' and 'wrong-pin-123' not in str(failed.value), failed.value
    # (e) everything stopped by the context managers; the temp dirs of the export are gone, the tpm2 provider is
    # no longer active in this process and OpenSSL works as before (no property left behind).
    openssl = tpmtls._OpenSSL()  # pylint: disable=protected-access
    assert openssl.lib.OSSL_PROVIDER_available(None, b'tpm2') == 0
    import hashlib
    assert hashlib.sha256(b'abc').hexdigest().startswith('ba7816bf')
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), 'pki-est-tpmtls-*'))) == leftovers
