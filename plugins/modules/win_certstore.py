#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The module is win_certstore.ps1 beside this file; this file holds its documentation only.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: win_certstore
short_description: Certificates and keys in the Windows certificate store, and certificate requests from Windows key storage
version_added: 0.1.0
description:
  - Manages certificates in a Windows certificate store (O(store_location), O(store_name)) and makes certificate
    requests whose private key is created, and stays, in a Windows key storage provider - the Microsoft Software Key
    Storage Provider, or the Microsoft Platform Crypto Provider (the TPM).
  - V(present) imports a certificate (PEM, DER, or PKCS#12 with its key), idempotent by thumbprint.
  - V(absent) removes certificates by thumbprint, or by subject with O(match_subject=true).
  - V(request) creates a non-exportable key pair in the key storage provider (CNG key name
    C(pki-est-<name>-<UTC time>)) and returns a PKCS#10 request (RFC 2986) signed by it. The key name of the pending
    request is kept in C(%ProgramData%\pki.est\pending\<name>.json) (C(%LOCALAPPDATA%) for O(store_location=CurrentUser))
    until it is accepted, so a rerun before that returns a request for the same key instead of making another.
  - V(accept) installs the certificate issued for that request onto its pending private key, with O(friendly_name),
    and returns its thumbprint; the request is no longer pending. Certificates already in the store stay (services
    bound to an older thumbprint keep working until they are moved).
  - V(query) returns the certificates that match O(thumbprint), O(subject) or O(friendly_name), with what a
    renewal decision needs (validity, whether the private key is there and where, whether the renewal window has
    begun by O(renew_before)). Changes nothing.
  - The certificate parsing, the PKCS#10 request and the renewal decision are C# in the collection's
    C(EstWin) module util, shared with the Windows renewal client of M(pki.est.est_renewal) and tested with Mono.
    The Windows-only parts (CNG key storage, the store) are thin wrappers in C(EstWinPlatform); see docs/windows.md.
author:
  - pki.est developers (@pki-est)
attributes:
  check_mode:
    support: full
    description: Reports what would be imported, removed, created or installed, and does none of it.
  diff_mode:
    support: full
    description: Shows the thumbprints in the store before and after.
  platform:
    platforms: windows
    support: full
    description: Windows Server 2016 / Windows 10 or later with .NET Framework 4.7.2 or later and Windows PowerShell 5.1.
options:
  state:
    description: What to do; see the description.
    type: str
    choices: [present, absent, request, accept, query]
    default: present
  store_location:
    description: The store location.
    type: str
    choices: [LocalMachine, CurrentUser]
    default: LocalMachine
  store_name:
    description:
      - The store (C(My), C(Root), C(CA), C(TrustedPeople), ...).
      - V(auto) with O(state=present) imports each certificate of O(content) or O(path) into C(Root) when it is
        self-signed and into C(CA) otherwise, which is how M(pki.est.est_trust) installs an EST CA bundle.
    type: str
    default: My
  path:
    description: A certificate file on the Windows host to import (PEM with one or more certificates, DER, or PKCS#12).
    type: path
  content:
    description: Certificates to import as PEM text (one or more), instead of O(path).
    type: str
  password:
    description: The password of a PKCS#12 file.
    type: str
  thumbprint:
    description: The SHA-1 thumbprint of the certificate (as Windows shows it; case and blanks do not matter).
    type: str
  subject:
    description:
      - With O(state=request), the subject of the request, as an X.500 name such as C(CN=web01.example.com,O=Example).
      - With O(state=query) or O(state=absent) (and O(match_subject=true)), the subject to look for.
    type: str
  match_subject:
    description: With O(state=absent), remove every certificate with O(subject) (a guard against removing by accident).
    type: bool
    default: false
  friendly_name:
    description: The friendly name given to an imported or accepted certificate, and looked for by O(state=query).
    type: str
  name:
    description:
      - With O(state=request) and O(state=accept), the name of the request. M(pki.est.est_enroll) uses the
        certificate entry's name.
    type: str
  subject_alt_name:
    description: With O(state=request), subjectAltName entries as C(DNS:...) or C(IP:...).
    type: list
    elements: str
  key_usage:
    description: With O(state=request), key usage names (C(digitalSignature), C(keyEncipherment), ...).
    type: list
    elements: str
  extended_key_usage:
    description: With O(state=request), extended key usage names (C(serverAuth), C(clientAuth)) or OIDs.
    type: list
    elements: str
  key_algorithm:
    description: With O(state=request), the algorithm of a new key.
    type: str
    choices: [rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384]
    default: rsa-2048
  key_storage:
    description:
      - With O(state=request), where the key is made - V(software) is the Microsoft Software Key Storage Provider,
        V(tpm) the Microsoft Platform Crypto Provider (the TPM; RSA 2048 and EC P-256 only on most TPMs).
    type: str
    choices: [software, tpm]
    default: software
  key_exportable:
    description:
      - Whether a key imported from PKCS#12 may be exported later. Keys made by O(state=request) never are.
    type: bool
    default: false
  certificate:
    description: With O(state=accept), the issued certificate (PEM), as M(pki.est.est_enroll) returns it.
    type: str
  renew_before:
    description:
      - With O(state=query), when the renewal window opens, as M(pki.est.est_enroll) takes it - seconds, C(30d),
        C(12h), or a share of the lifetime such as C(33%).
    type: str
    default: 33%
notes:
  - The PowerShell part is not run by the collection's tests (there is no Windows and no PowerShell where they run);
    the C# it loads is, with Mono. docs/windows.md says what ran where and has a test playbook for a Windows host.
  - The M(pki.est.est_enroll) role enrolls Windows hosts with this module (request, EST from the controller, accept).
seealso:
  - module: pki.est.est_enroll
  - module: pki.est.win_renewal_task
'''

EXAMPLES = r'''
- name: A key in the TPM and a request for it
  pki.est.win_certstore:
    state: request
    name: web
    subject: CN=web01.example.com
    subject_alt_name: [DNS:web01.example.com]
    extended_key_usage: [serverAuth]
    key_algorithm: ec-p256
    key_storage: tpm
  register: request

- name: Enroll it from the controller
  pki.est.est_enroll:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    username: "{{ est_user }}"
    password: "{{ est_password }}"
    csr_content: "{{ request.csr }}"
  delegate_to: localhost
  register: issued

- name: Install the certificate onto the key
  pki.est.win_certstore:
    state: accept
    name: web
    certificate: "{{ issued.certificate_pem }}"
    friendly_name: pki.est web

- name: The EST CA bundle into Root and CA
  pki.est.win_certstore:
    state: present
    content: "{{ lookup('ansible.builtin.file', 'ca-bundle.pem') }}"
    store_name: auto

- name: Is the certificate due?
  pki.est.win_certstore:
    state: query
    friendly_name: pki.est web
    renew_before: 30d
  register: found
'''

RETURN = r'''
thumbprints:
  description: With O(state=present) and O(state=absent), the thumbprints imported or removed (or that would be).
  returned: state is present or absent
  type: list
  elements: str
thumbprint:
  description: With O(state=accept), the thumbprint of the installed certificate.
  returned: state is accept
  type: str
csr:
  description: With O(state=request), the PKCS#10 request (PEM).
  returned: state is request
  type: str
reused:
  description: With O(state=request), whether the key of an earlier, unanswered request was reused.
  returned: state is request
  type: bool
key_name:
  description: With O(state=request) and O(state=accept), the CNG key name.
  returned: state is request or accept
  type: str
certificates:
  description: With O(state=query), the matching certificates, newest first.
  returned: state is query
  type: list
  elements: dict
  contains:
    thumbprint:
      description: SHA-1 thumbprint, upper-case hex.
      type: str
    subject:
      description: Subject.
      type: str
    issuer:
      description: Issuer.
      type: str
    not_before:
      description: Start of validity, UTC, ISO 8601.
      type: str
    not_after:
      description: End of validity, UTC, ISO 8601.
      type: str
    subject_alt_name:
      description: DNS and IP entries, as C(DNS:...) and C(IP:...).
      type: list
      elements: str
    friendly_name:
      description: Friendly name.
      type: str
    has_private_key:
      description: Whether the store has the private key for it.
      type: bool
    key_provider:
      description: The key storage provider of the private key, when there is one.
      type: str
    renewal_due:
      description: Whether the renewal window (O(renew_before)) has begun, or the certificate has expired.
      type: bool
    days_remaining:
      description: Whole days until RV(certificates[].not_after).
      type: int
error_kind:
  description: Class of failure (C(invalid_input), C(host_state), C(not_supported), C(key_store)).
  returned: failure
  type: str
'''
