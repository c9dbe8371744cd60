#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The module is win_renewal_task.ps1 beside this file (with an action plugin); this file holds its documentation only.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: win_renewal_task
short_description: Install and schedule the Windows EST renewal client
version_added: 0.1.0
description:
  - Installs C(PkiEstRenew.exe), a small C# client that renews certificates in the Windows certificate store on its
    own, while the controller is offline, and schedules it with a Windows scheduled task. The M(pki.est.est_renewal)
    role uses it on Windows hosts.
  - For each certificate the client finds the current certificate in the store, does nothing (and sends nothing)
    outside its renewal window, and inside it re-enrolls with C(/simplereenroll) (RFC 7030 section 4.2.2) over
    mutual TLS with that certificate and its key from Windows key storage, repeating its subject and
    subjectAltName; the new certificate is verified and put into the store, and the old one stays until it expires.
    On any failure the store is unchanged. Each decision goes to the Application event log (source C(pki.est)).
  - The client is compiled on the host from the collection's C# sources with the .NET Framework compiler. An action
    plugin sends the sources only when the host lacks this version of them, so a run with nothing to change is one
    module execution. Each version lives in a directory of its own under O(install_dir); earlier ones are removed.
  - Writes one config per certificate (JSON, no secrets - the certificate is the credential) and the EST CA bundle
    that the client trusts for the server.
author:
  - pki.est developers (@pki-est)
attributes:
  check_mode:
    support: full
    description: Reports what would be compiled, written, scheduled or removed, and does none of it.
  diff_mode:
    support: none
    description: Reports what changed in RV(configs) and RV(client_built), not as a diff.
  platform:
    platforms: windows
    support: full
    description: Windows Server 2016 / Windows 10 or later, .NET Framework 4.7.2 or later, Windows PowerShell 5.1.
  action:
    support: full
    description: An action plugin sends the client's sources when the host does not have this version.
options:
  state:
    description:
      - V(present) installs, configures and schedules the client; V(absent) unregisters the task and removes
        O(install_dir) (the certificates and keys in the store stay).
    type: str
    choices: [present, absent]
    default: present
  certificates:
    description: The certificates to renew, as the M(pki.est.est_enroll) role's Windows branch enrolls them.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The entry's name; the config is C(renewal-<name>.json).
        type: str
        required: true
      url:
        description: The EST server.
        type: str
        required: true
      ca_label:
        description: The CA label (RFC 7030 section 3.2.2).
        type: str
      certificate:
        description: The certificate to renew - its subject (stays the same across renewals) or its SHA-1 thumbprint.
        type: str
        required: true
      friendly_name:
        description:
          - The friendly name of the certificate. When set, the client looks for the newest certificate with it (instead
            of O(certificates[].certificate)) and gives the renewed certificate the same name, which is how the
            M(pki.est.est_enroll) role finds its certificates (C(pki.est <name>)).
        type: str
      store_location:
        description: The store location.
        type: str
        choices: [LocalMachine, CurrentUser]
        default: LocalMachine
      store_name:
        description: The store.
        type: str
        default: My
      renew_before:
        description: When the renewal window opens - C(30d), C(12h), seconds, or a share of the lifetime such as C(33%).
        type: str
        default: 33%
      rekey:
        description: Renew with a new key (made in the same key storage provider) instead of the current one.
        type: bool
        default: false
      key_type:
        description: The type of a new key, for O(certificates[].rekey=true); default the current key's.
        type: str
        choices: [rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384]
      key_storage:
        description: Where a new key is made - the Microsoft Software Key Storage Provider or the TPM.
        type: str
        choices: [software, tpm]
        default: software
      timeout:
        description: Seconds per HTTP request.
        type: int
        default: 30
  ca_bundle:
    description: The EST CA certificates (PEM) the client verifies the server with; required with O(state=present).
    type: str
  install_dir:
    description: Where the client, its configs and the CA bundle live.
    type: path
    default: C:\ProgramData\pki.est
  task_name:
    description: The name of the scheduled task.
    type: str
    default: pki.est renewal
  run_times:
    description: Times of day (C(HH:MM), local time) at which the task runs; each run renews only what is due.
    type: list
    elements: str
    default: ['00:00', '12:00']
  random_delay:
    description: Minutes of random delay before each run, so that a fleet does not ask the server at one instant.
    type: int
    default: 60
notes:
  - The PowerShell part is not run by the collection's tests (no Windows and no PowerShell there); the client's C#,
    including a real re-enrollment over mutual TLS against the lab EST server, is tested with Mono. See
    docs/windows.md.
  - The task runs as SYSTEM for O(certificates[].store_location=LocalMachine).
  - The M(pki.est.est_renewal) role runs this module on Windows hosts.
seealso:
  - module: pki.est.win_certstore
'''

EXAMPLES = r'''
- name: Renew the web certificate on the host from now on
  pki.est.win_renewal_task:
    certificates:
      - name: web
        url: https://est.example.com:8443
        certificate: CN=web01.example.com
        renew_before: 30d
    ca_bundle: "{{ lookup('ansible.builtin.file', 'ca-bundle.pem') }}"
'''

RETURN = r'''
client_version:
  description: The version of the client (collection version and a digest of its sources).
  returned: always
  type: str
client_built:
  description: Whether the client was compiled in this run (or would be, in check mode).
  returned: always
  type: bool
configs:
  description: The config files of the certificates.
  returned: state is present
  type: list
  elements: str
error_kind:
  description: Class of failure (C(invalid_input), C(not_supported), C(host_state)).
  returned: failure
  type: str
'''
