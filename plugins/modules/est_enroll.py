#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: est_enroll
short_description: Enroll for a certificate over EST and keep it current
version_added: 0.1.0
description:
  - Makes sure the managed host holds a private key and a current certificate for it from an
    EST server (RFC 7030 section 4.2). The key is generated on the host and never leaves it.
  - Idempotent without the network. When the certificate exists, matches the key, holds the
    requested subject, subjectAltName and key usages, is issued by the CA in O(chain_path)
    (when set) and is outside its renewal window (O(renew_before)), the module makes no request
    and reports RV(action=none).
  - Otherwise it builds a CSR, fetches C(/cacerts), and sends C(/simpleenroll) - or
    C(/simplereenroll) authenticated with the current certificate when a valid one exists and
    O(reenroll=auto). The issued certificate is found by its public key, must chain to the CA
    certificates of the server and hold the requested SANs before it is installed.
  - When the server answers 202 (pending), the new key and the CSR are kept beside the
    certificate (mode 0600, C(<path>.pending.key) and C(<path>.pending.json)); the next run sends
    the same CSR again, and installs the certificate once it is issued.
  - Nothing is written before a verified answer, so a request that fails (server, trust, network)
    reports C(changed=false) and leaves the host as it was.
  - With O(csr_path) or O(csr_content) it enrolls a CSR made elsewhere (for example with
    C(delegate_to)); no key is handled and the certificate is returned (and written to O(path) if set).
  - Files are replaced atomically. A verified certificate is staged first (C(<path>.pending.pem),
    with the new key in C(<path>.pending.key)), then key and certificate are swapped. A run killed at
    any instant (power loss, OOM) leaves either the old pair or a staged one; the next run installs
    a staged pair without the network, removes leftovers, and reports them in RV(repaired).
author:
  - pki.est developers (@pki-est)
extends_documentation_fragment:
  - pki.est.connection
  - pki.est.enrollment
  - pki.est.csr_attributes
  - pki.est.token_key
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description:
      - Decides what would happen from the files on the host; makes no request to the EST server.
      - With O(replace_revoked=true) it still asks the OCSP responder or fetches the CRL.
  diff_mode:
    support: full
    description: Shows the certificate facts before and after.
  platform:
    platforms: posix
    support: full
    description: Runs on the managed host, which needs network access to the EST server.
options:
  common_name:
    description:
      - Common name of the subject, the same as a C(CN) key in O(subject).
    type: str
  subject:
    description:
      - Subject attributes as a dictionary of attribute name to value, for example C(O) to C(Example).
      - Names such as CN, O, OU, C, ST, L, serialNumber, emailAddress, DC, or dotted OIDs; a list value gives several values.
    type: dict
  subject_alt_name:
    description:
      - subjectAltName entries as C(DNS:name), C(IP:address), C(email:address) or C(URI:uri).
    type: list
    elements: str
  key_usage:
    description:
      - Key usage names to request, for example V(digitalSignature), V(keyEncipherment).
    type: list
    elements: str
  extended_key_usage:
    description:
      - Extended key usages to request, for example V(serverAuth), V(clientAuth), or dotted OIDs.
    type: list
    elements: str
  reenroll:
    description:
      - V(auto) renews a valid current certificate with C(/simplereenroll) over mutual TLS with that
        certificate; V(never) always uses C(/simpleenroll) with the configured credentials.
    type: str
    default: auto
    choices: [auto, never]
  invalid_certificate:
    description:
      - What to do when the certificate file cannot be read. V(fail) stops with an error and
        touches nothing; V(replace) enrolls anew and overwrites it.
    type: str
    default: fail
    choices: [fail, replace]
  csr_attributes:
    description:
      - V(apply) asks the server's C(/csrattrs) (RFC 7030 section 4.5, RFC 9908 templates) before making a
        new request and adds what it asks for - subject attributes, subjectAltNames, key usages,
        the key type of a new key (RSA of any size from 2048 to 8192 bits, any EC curve cryptography supports,
        Ed25519, Ed448; an existing key of another type is replaced by a new one), the signature hash, and
        extensions whose value it gives (passed through as they are). Values given in the task win over the
        server's. A server without C(/csrattrs) (404, 204) leaves the request as it is.
      - V(ignore) makes the request from the task's options alone.
    type: str
    default: ignore
    choices: [apply, ignore]
  challenge_password:
    description:
      - A static challengePassword attribute to put in the CSR, for servers that want a one-time password
        there. Servers that list challengePassword in C(/csrattrs) usually want the tls-unique value instead,
        see O(pop_linking).
    type: str
  pop_linking:
    description:
      - Linking of identity and proof-of-possession (RFC 7030 section 3.5) - the CSR's challengePassword carries the
        base64 tls-unique value of the TLS session it is sent over, so the server knows the key holder is the
        authenticated client.
      - V(auto) links when the server lists challengePassword in C(/csrattrs) (with O(csr_attributes=apply))
        and no static O(challenge_password) is given; V(always) links every request; V(never) does not link.
      - tls-unique exists only up to TLS 1.2 (RFC 9266), so a linked request goes over a TLS 1.2 connection of its
        own, made with the same trust, client certificate and credentials, without proxies or redirects. A server
        that offers only TLS 1.3 cannot be linked with - the request fails with O(pop_linking=always), and is sent
        unlinked with a warning with V(auto) when the server only lists challengePassword; ask the server's operator
        to allow TLS 1.2 for EST, or give the static O(challenge_password) the server may expect instead.
    type: str
    default: auto
    choices: [auto, always, never]
  csr_path:
    description:
      - Enroll this CSR (PEM or DER file) instead of making a key and a CSR. Excludes O(private_key_path).
    type: path
  csr_content:
    description:
      - Enroll this CSR (PEM text) instead of making a key and a CSR. Excludes O(private_key_path).
    type: str
  replace_revoked:
    description:
      - When the current certificate is otherwise current (nothing else is due), ask whether its CA revoked it - the
        OCSP responder named in its authority information access, else (or when the responder cannot be reached)
        the CRL named in its CRL distribution points (RFC 6960, RFC 5280). The issuer is looked up in O(chain_path),
        O(ca_path) and O(intermediates_path); O(timeout) applies to these requests too.
      - A revoked certificate is due - it cannot authenticate a C(/simplereenroll), so a new key (a new token key
        with O(private_key_uri)) is enrolled with C(/simpleenroll) and the configured credentials (O(username) and
        O(password), or O(client_cert_path)), and the reason is in RV(reasons). The old key is never certified again,
        since it may be why the certificate was revoked.
      - A status that cannot be had or trusted (responder and CRL unreachable, a bad signature, a stale answer, status
        unknown) fails the task with C(error_kind=revocation_check) and changes nothing.
      - Every run makes this check (one HTTP request), so the run is no longer free of network calls.
    type: bool
    default: false
notes:
  - A pending request survives between runs; delete C(<path>.pending.json) and C(<path>.pending.key) to abandon it.
  - When the CA issues a certificate without a requested subjectAltName and O(san_policy=fail), the refusal
    is kept in C(<path>.refused.json); delete it (or change the request, or set O(force)) to ask again.
seealso:
  - module: pki.est.est_reenroll
  - module: pki.est.est_cacerts
"""

EXAMPLES = r"""
- name: Enroll with a key kept in a TPM (created with pki.est.tpm_key), renewed with HTTP Basic
  pki.est.est_enroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    username: "{{ est_user }}"
    password: "{{ est_password }}"
    private_key_uri: "pkcs11:token=host;object=device-id"
    pkcs11_module: /usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1
    pin: "{{ tpm_user_pin }}"
    common_name: device-42.example.com
    path: /etc/pki/est/device-id.crt

- name: Enroll this host with HTTP Basic credentials
  pki.est.est_enroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    username: "{{ est_user }}"
    password: "{{ est_password }}"
    common_name: "{{ inventory_hostname }}"
    subject_alt_name:
      - "DNS:{{ inventory_hostname }}"
      - "IP:{{ ansible_default_ipv4.address }}"
    extended_key_usage: [serverAuth, clientAuth]
    path: /etc/pki/est/host.crt
    private_key_path: /etc/pki/est/host.key
    chain_path: /etc/pki/est/chain.pem
    renew_before: 30d

- name: Keep a certificate current and replace it at once when its CA revokes it
  pki.est.est_enroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    username: "{{ est_user }}"
    password: "{{ est_password }}"
    common_name: "{{ inventory_hostname }}"
    path: /etc/pki/est/host.crt
    private_key_path: /etc/pki/est/host.key
    chain_path: /etc/pki/est/chain.pem
    replace_revoked: true

- name: Enroll with a device certificate, waiting up to 5 minutes for approval
  pki.est.est_enroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    client_cert_path: /etc/pki/device/idevid.pem
    client_key_path: /etc/pki/device/idevid.key
    common_name: device-0042
    path: /etc/pki/est/device.crt
    private_key_path: /etc/pki/est/device.key
    wait_timeout: 300

- name: Enroll a CSR made elsewhere, from the controller
  pki.est.est_enroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    username: ra
    password: "{{ ra_password }}"
    csr_content: "{{ lookup('ansible.builtin.file', 'requests/web01.csr') }}"
  delegate_to: localhost
  register: issued
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
revocation:
  description:
    - The revocation status of the certificate that was current before this run, when O(replace_revoked=true) checked it.
    - C(status) (V(good) or V(revoked)), C(reason) and C(revocation_time) (UTC, ISO 8601) when revoked, C(source)
      (V(ocsp) or V(crl)) and the C(url) asked, C(this_update) and C(next_update) of the answer, and C(ocsp_error)
      when the responder could not be reached and the CRL answered.
  returned: when O(replace_revoked=true) and the current certificate was checked
  type: dict
  sample: {"status": "revoked", "reason": "keyCompromise", "revocation_time": "2026-03-01T10:00:00Z", "source": "ocsp",
           "url": "http://ocsp.example.com/", "this_update": "2026-03-01T10:05:00Z", "next_update": "2026-03-01T10:15:00Z"}
error_kind:
  description: Class of failure (C(tls), C(auth_required), C(pending), C(verification), C(key_store), C(revocation_check), ...).
  returned: failure
  type: str
certificate_pem:
  description: The issued certificate (PEM).
  returned: when a CSR from O(csr_path) or O(csr_content) was enrolled
  type: str
chain_pem:
  description: Its chain (PEM).
  returned: when a CSR from O(csr_path) or O(csr_content) was enrolled
  type: str
"""

from ansible_collections.pki.est.plugins.module_utils._enroll_module import TOKEN_KEY_ARGUMENT_SPEC, enrollment_module, run_module
from ansible_collections.pki.est.plugins.module_utils._module import fail
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def main():
    module = enrollment_module(
        dict(
            reenroll=dict(type='str', default='auto', choices=['auto', 'never']),
            invalid_certificate=dict(type='str', default='fail', choices=['fail', 'replace']),
            challenge_password=dict(type='str', no_log=True),
            pop_linking=dict(type='str', default='auto', choices=['auto', 'always', 'never']),
            csr_attributes=dict(type='str', default='ignore', choices=['apply', 'ignore']),
            csr_attributes_unmet=dict(type='str', default='fail', choices=['fail', 'warn']),
            csr_path=dict(type='path'),
            csr_content=dict(type='str'),
            replace_revoked=dict(type='bool', default=False),
            **TOKEN_KEY_ARGUMENT_SPEC
        ),
        require_pair=False,
        mutually_exclusive=[('csr_path', 'csr_content'), ('csr_path', 'private_key_path'), ('csr_content', 'private_key_path'),
                            ('private_key_uri', 'private_key_path'), ('private_key_uri', 'csr_path'),
                            ('private_key_uri', 'csr_content')],
        required_one_of=[('path', 'csr_path', 'csr_content')],
    )
    params = module.params
    if params['path'] and not (params['private_key_path'] or params['private_key_uri'] or params['csr_path'] or params['csr_content']):
        module.fail_json(msg='path needs private_key_path or private_key_uri (or csr_path / csr_content for a CSR made elsewhere)',
                         error_kind='invalid_input')
    try:
        external = _external_csr(params)
    except ESTError as exc:
        fail(module, exc)
    run_module(module, ('csr_path',), reenroll=params['reenroll'], invalid_certificate=params['invalid_certificate'],
               challenge_password=params['challenge_password'], external_csr=external, csr_attributes=params['csr_attributes'],
               csr_attributes_unmet=params['csr_attributes_unmet'], pop_linking=params['pop_linking'],
               replace_revoked=params['replace_revoked'], revocation_timeout=params['timeout'])


def _external_csr(params):
    from ansible_collections.pki.est.plugins.module_utils.csr import load_csr
    if params['csr_content']:
        return load_csr(params['csr_content'], 'csr_content')
    if params['csr_path']:
        with open(params['csr_path'], 'rb') as handle:
            return load_csr(handle.read(), 'CSR %s' % params['csr_path'])
    return None


if __name__ == '__main__':
    main()
