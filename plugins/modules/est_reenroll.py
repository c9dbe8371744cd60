#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: est_reenroll
short_description: Renew a certificate over EST with the current certificate (simplereenroll)
version_added: 0.1.0
description:
  - O(path) and O(private_key_path) (or O(private_key_uri), a key in a TPM) are required.
  - Renews the certificate in O(path) with C(/simplereenroll) (RFC 7030 section 4.2.2),
    authenticating over mutual TLS with that certificate and its key. The request repeats the
    current subject and subjectAltName, as the RFC requires.
  - Keeps the key, or with O(rekey=true) makes a new one. A new key is written to a
    temporary file first; the key and certificate replace the old pair together only after
    the new certificate has been verified (issued for this key, chaining to the CA). On any
    failure the old pair stays in place, unmodified and matching.
  - Idempotent without the network. Nothing happens until the certificate enters its renewal
    window (O(renew_before)), unless O(force=true).
  - Fails when there is no valid current certificate to renew; use M(pki.est.est_enroll) for the
    first enrollment (it also renews with O(pki.est.est_enroll#module:reenroll=auto)).
author:
  - pki.est developers (@pki-est)
extends_documentation_fragment:
  - pki.est.connection
  - pki.est.enrollment
  - pki.est.token_key
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description: Decides from the files on the host whether a renewal is due; makes no request.
  diff_mode:
    support: full
    description: Shows the certificate facts before and after.
  platform:
    platforms: posix
    support: full
    description: Runs on the managed host, which needs network access to the EST server.
options:
  rekey:
    description:
      - Renew with a new key (of O(key_type), or of the current key's type) instead of the current one.
    type: bool
    default: false
  pop_linking:
    description:
      - Linking of identity and proof-of-possession (RFC 7030 section 3.5) - the CSR's challengePassword carries the
        base64 tls-unique value of the TLS session it is sent over, so the server knows the key holder is the
        authenticated client.
      - V(always) links the renewal request; V(auto) and V(never) do not (this module does not read C(/csrattrs)).
      - tls-unique exists only up to TLS 1.2 (RFC 9266), so a linked request goes over a TLS 1.2 connection of its
        own, made with the same trust, client certificate and credentials, without proxies or redirects. A server
        that offers only TLS 1.3 cannot be linked with.
    type: str
    default: auto
    choices: [auto, always, never]
notes:
  - O(client_cert_path) and O(client_key_path) are not used for the renewal itself, which always
    authenticates with the certificate being renewed.
  - With O(private_key_uri) the key must be in a TPM 2.0 reached through tpm2-pkcs11, and the host needs the OpenSSL
    C(tpm2) provider and C(tpm2_ptool) (see docs/hardware-keys.md). A key in another PKCS#11 token cannot be a TLS
    client key here (error C(not_supported)); renew it with M(pki.est.est_enroll) and O(username)/O(password).
seealso:
  - module: pki.est.est_enroll
"""

EXAMPLES = r"""
- name: Renew the host certificate 30 days before it expires
  pki.est.est_reenroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    path: /etc/pki/est/host.crt
    private_key_path: /etc/pki/est/host.key
    chain_path: /etc/pki/est/chain.pem
    renew_before: 30d

- name: Renew now with a new key
  pki.est.est_reenroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    path: /etc/pki/est/host.crt
    private_key_path: /etc/pki/est/host.key
    rekey: true
    force: true
    backup: true

- name: Renew a certificate whose key is in the TPM (mutual TLS with the TPM key)
  pki.est.est_reenroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    path: /etc/pki/est/device.crt
    private_key_uri: "pkcs11:token=device;object=device-id"
    pkcs11_module: /usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1
    pin: "{{ tpm_user_pin }}"
"""

RETURN = r"""
action:
  description:
    - What happened. V(none) when the certificate is current, V(enrolled), V(renewed) (same key),
      V(rekeyed) (new key), V(pending) when the server has not decided yet, V(completed) when only a
      missing chain, full chain or PKCS#12 file was written again.
    - V(recovered) when the run only finished installing a verified certificate that an interrupted
      run had staged (see RV(repaired)), V(cleaned) when it only removed what an interrupted run left.
    - In check mode, what would happen (V(enroll), V(renew), V(resume), V(complete), V(recover), V(clean)).
  returned: always
  type: str
  sample: enrolled
reasons:
  description: Why the action was needed.
  returned: always
  type: list
  elements: str
repaired:
  description:
    - What this run repaired before doing its job, when an earlier run was killed part way (a staged
      certificate installed, temp files or an unused pending key removed). The files beside O(path)
      are then as a completed run leaves them.
  returned: when something was repaired
  type: list
  elements: str
pending:
  description: Whether the request is pending at the server (HTTP 202); the key and CSR are kept for the next run.
  returned: always
  type: bool
retry_after:
  description:
    - Seconds the server asked to wait before asking again (its C(Retry-After); an HTTP-date is turned into seconds).
    - On failure with RV(error_kind=busy) (HTTP 503 or 429 and no O(wait_timeout) left to wait that long), the wait the
      busy server asked for.
  returned: when RV(pending=true), or on failure with RV(error_kind=busy) when the server sent a usable C(Retry-After)
  type: int
subject:
  description: Subject of the certificate, RFC 4514.
  returned: when there is a certificate
  type: str
subject_alt_name:
  description: The subjectAltName entries, as C(DNS:...), C(IP:...), C(email:...), C(URI:...).
  returned: when there is a certificate
  type: list
  elements: str
issuer:
  description: Issuer, RFC 4514.
  returned: when there is a certificate
  type: str
serial:
  description: Serial number, upper-case hex.
  returned: when there is a certificate
  type: str
not_before:
  description: Start of validity (UTC, ISO 8601).
  returned: when there is a certificate
  type: str
not_after:
  description: End of validity (UTC, ISO 8601).
  returned: when there is a certificate
  type: str
sha256_fingerprint:
  description: SHA-256 of the certificate DER, lower-case hex.
  returned: when there is a certificate
  type: str
days_remaining:
  description: Whole days until RV(not_after).
  returned: when there is a certificate
  type: int
requests_made:
  description: HTTP requests sent to the EST server in this run (0 when nothing was due).
  returned: always
  type: int
waited_seconds:
  description:
    - Seconds this run waited, within O(wait_timeout), for a server that answered 202 (pending) or 503 / 429 (busy) before
      it asked again; rounded to 0.1 s.
  returned: always, also on failure
  type: float
  sample: 1.7
retries:
  description: How many times this run asked again after a pending or busy answer.
  returned: always, also on failure
  type: int
  sample: 1
backup_files:
  description: Backup file names, by the path they were taken of.
  returned: when O(backup=true) and files were replaced
  type: dict
error_kind:
  description: Class of failure (C(tls), C(auth_required), C(pending), C(verification), C(key_store), ...).
  returned: failure
  type: str
"""

from ansible_collections.pki.est.plugins.module_utils._enroll_module import (
    TOKEN_KEY_ARGUMENT_SPEC, enrollment_module, run_module, wanted_from_params,
)
from ansible_collections.pki.est.plugins.module_utils._module import fail
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def main():
    module = enrollment_module(dict(rekey=dict(type='bool', default=False),
                                    pop_linking=dict(type='str', default='auto', choices=['auto', 'always', 'never']),
                                    **TOKEN_KEY_ARGUMENT_SPEC),
                               subject=False, mutually_exclusive=[('private_key_uri', 'private_key_path')])
    try:
        wanted = wanted_from_params(module.params)
    except ESTError as exc:
        fail(module, exc)
    wanted.key_type = None  # key_type only chooses the type of a new key (rekey)
    run_module(module, wanted=wanted, rekey=module.params['rekey'], reenroll='auto', renew_only=True,
               pop_linking=module.params['pop_linking'])


if __name__ == '__main__':
    main()
