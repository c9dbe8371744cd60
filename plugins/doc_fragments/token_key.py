# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # A key in a PKCS#11 token or a TPM instead of a key file (est_enroll, est_reenroll, est_fullcmc).
    DOCUMENTATION = r'''
options:
  private_key_uri:
    description:
      - A C(pkcs11:) URI (RFC 7512) of a private key in a PKCS#11 token - SoftHSM2, an HSM, a smart card, or a TPM 2.0
        through tpm2-pkcs11 - to use instead of O(private_key_path), for example
        C(pkcs11:token=host;object=web) or the RV(pki.est.tpm_key#module:uri) that M(pki.est.tpm_key) returns.
      - The request is signed inside the token, the issued certificate must carry the token's public key, and
        nothing about the key is written anywhere (no key file, no pending key, no PKCS#12).
      - Name the key by label (C(object=)). When there is no key under the label yet, or a new one is needed (another
        O(key_type)), it is made in the token under C(<label>.pending); once its certificate verified, the old key is
        destroyed and the new one takes the label, so the old pair keeps working until then and a killed run is
        finished by the next one. M(pki.est.tpm_key) makes keys ahead of time.
      - In M(pki.est.est_enroll) and M(pki.est.est_reenroll), renewal of a key in a TPM 2.0 (through
        tpm2-pkcs11) is C(/simplereenroll) over mutual TLS with the current certificate and the TPM key, when the
        host has the OpenSSL C(tpm2) provider (Debian C(tpm2-openssl)) and C(tpm2_ptool). For the handshake the
        key is exported TPM-wrapped (usable only by this TPM) into a private temporary directory that is removed
        afterwards.
      - A key in any other token (SoftHSM2, an HSM, a smart card) cannot be a TLS client key here, so its renewal
        sends C(/simpleenroll) for the same key, authenticated with O(username) and O(password).
        M(pki.est.est_fullcmc) always renews through C(/fullcmc).
      - The token is opened on every run (the decision record only describes files).
    type: str
  pkcs11_module:
    description:
      - The PKCS#11 library of the token, for example C(/usr/lib/softhsm/libsofthsm2.so) or
        C(/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1), when O(private_key_uri) has no C(module-path).
    type: path
  pin:
    description:
      - The token's user PIN. Without it, the C(pin-source) or C(pin-value) of O(private_key_uri), else the
        environment variable E(PKI_EST_PKCS11_PIN) of the module's process.
    type: str
'''
