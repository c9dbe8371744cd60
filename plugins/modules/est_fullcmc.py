#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: est_fullcmc
short_description: Enroll over EST with full CMC (PKIData / PKIResponse)
version_added: 0.1.0
description:
  - Enrolls with C(/fullcmc) (RFC 7030 section 4.3, CMC per RFC 5272, RFC 5273 and RFC 6402) for CAs that
    want full CMC - requests signed by a registration authority, CMC status with failInfo.
  - The key is generated on the managed host (or an existing one is used) as with M(pki.est.est_enroll).
    The PKCS#10 request goes into a PKIData with transactionId, senderNonce and optional
    identification controls, signed as CMS SignedData - by the request key itself (signer
    identified by subjectKeyIdentifier, proof of possession) or, with O(ra_cert_path) and
    O(ra_key_path), by an RA - and is posted as C(application/pkcs7-mime; smime-type=CMC-request).
  - The PKIResponse is checked - its signer (the CA, or a CMC CA or RA, see O(cmc_response_check)), found in the
    response or among the CA certificates the client already has, its signature, the transactionId and the
    nonce - and read - success (the certificates), failed (with failInfo, reported as RV(cmc_fail_info)),
    pending, partial. A certs-only answer (a Simple PKI Response, RFC 7030 section 4.3.2) is accepted too.
  - A pending request is kept like M(pki.est.est_enroll) keeps a 202, with the server's pendToken; later
    polls (within O(wait_timeout), and on the next run) ask about it with a Query Pending control
    (RFC 5272 section 6.13) in the same transaction, waiting until the server's pendTime.
  - The issued certificate is found by its public key and installed like M(pki.est.est_enroll) does - atomically,
    only after it is verified, idempotent by the renewal window.
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
    description: Decides from the files on the host; makes no request.
  diff_mode:
    support: full
    description: Shows the certificate facts before and after.
  platform:
    platforms: posix
    support: full
    description: Runs on the managed host, which needs network access to the EST server.
options:
  common_name:
    description: Common name of the subject.
    type: str
  subject:
    description: Further subject attributes (see M(pki.est.est_enroll)).
    type: dict
  subject_alt_name:
    description: subjectAltName entries as C(DNS:), C(IP:), C(email:), C(URI:) strings.
    type: list
    elements: str
  key_usage:
    description: Key usages to request.
    type: list
    elements: str
  extended_key_usage:
    description: Extended key usages to request.
    type: list
    elements: str
  ra_cert_path:
    description:
      - Certificate (PEM) of a registration authority that signs the PKIData instead of the request key.
    type: path
  ra_key_path:
    description:
      - Private key (PEM) of O(ra_cert_path).
    type: path
  identification:
    description:
      - Text for the id-cmc-identification control.
    type: str
  cmc_response_check:
    description:
      - V(strict) accepts a PKIResponse only when it is signed by a CA certificate of the server or by a
        certificate marked id-kp-cmcCA or id-kp-cmcRA (RFC 6402 section 2.10) that validates to them.
      - V(lenient) also accepts an unsigned PKIResponse and any signer that validates to the CA
        certificates, for servers that answer that way. A signature that does not verify is always refused,
        and a certs-only Simple PKI Response never needs a signature.
    type: str
    default: strict
    choices: [strict, lenient]
  extra_csrs:
    description:
      - Further PKCS#10 requests (PEM text, made elsewhere) to send in the same PKIData, after the host's own.
      - Their certificates are returned in RV(extra_certificates), not installed. A CMC request with several
        requests is all-or-nothing here - any failure fails the task.
    type: list
    elements: str
notes:
  - O(path) and O(private_key_path) are required.
  - Polling within a run (O(wait_timeout)) applies to HTTP 202 answers; a CMC pending status is returned as
    RV(pending=true) and the next run sends the same request in a new PKIData.
seealso:
  - module: pki.est.est_enroll
  - name: RFC 7030 section 4.3
    description: Full CMC.
    link: https://www.rfc-editor.org/rfc/rfc7030#section-4.3
"""

EXAMPLES = r"""
- name: Enroll with full CMC, the request signed by the new key
  pki.est.est_fullcmc:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    username: "{{ est_user }}"
    password: "{{ est_password }}"
    common_name: "{{ inventory_hostname }}"
    path: /etc/pki/est/host.crt
    private_key_path: /etc/pki/est/host.key

- name: Enroll with full CMC through a registration authority
  pki.est.est_fullcmc:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    client_cert_path: /etc/pki/ra/ra.pem
    client_key_path: /etc/pki/ra/ra.key
    ra_cert_path: /etc/pki/ra/ra.pem
    ra_key_path: /etc/pki/ra/ra.key
    identification: asset-4711
    common_name: "{{ inventory_hostname }}"
    path: /etc/pki/est/host.crt
    private_key_path: /etc/pki/est/host.key
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
extra_certificates:
  description: The certificates issued for O(extra_csrs), in their order (PEM; null when the answer holds none for a request).
  returned: when O(extra_csrs) is set and a certificate was issued
  type: list
  elements: str
cmc_status:
  description: CMC status of a failed request (C(failed), C(partial), C(no_support), ...).
  returned: when the server answered with a CMC failure
  type: str
cmc_fail_info:
  description: CMC failInfo of a failed request (C(badRequest), C(badMessageCheck), C(badIdentity), ...).
  returned: when the server answered with a CMC failure that names one
  type: str
"""

from ansible_collections.pki.est.plugins.module_utils._enroll_module import TOKEN_KEY_ARGUMENT_SPEC, enrollment_module, run_module
from ansible_collections.pki.est.plugins.module_utils._module import fail
from ansible_collections.pki.est.plugins.module_utils.csr import load_csr
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def main():
    module = enrollment_module(
        dict(
            ra_cert_path=dict(type='path'),
            ra_key_path=dict(type='path', no_log=False),
            identification=dict(type='str'),
            extra_csrs=dict(type='list', elements='str'),
            cmc_response_check=dict(type='str', default='strict', choices=['strict', 'lenient']),
            **TOKEN_KEY_ARGUMENT_SPEC
        ),
        required_together=[('ra_cert_path', 'ra_key_path')],
        mutually_exclusive=[('private_key_uri', 'private_key_path')],
    )
    params = module.params
    try:
        extra = [load_csr(text, 'extra_csrs[%d]' % index) for index, text in enumerate(params['extra_csrs'] or [])]
    except ESTError as exc:
        fail(module, exc)
    run_module(module, ('ra_cert_path', 'ra_key_path'), reenroll='never', fullcmc=True, ra_cert_path=params['ra_cert_path'],
               ra_key_path=params['ra_key_path'], identification=params['identification'], extra_csrs=extra,
               cmc_response_check=params['cmc_response_check'])


if __name__ == '__main__':
    main()
