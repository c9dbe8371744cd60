#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: est_cacerts
short_description: Fetch the CA certificates of an EST server and keep them in a PEM bundle
version_added: 0.1.0
description:
  - Fetches C(/cacerts) from an EST server (RFC 7030 section 4.1) and writes the CA
    certificates to a PEM bundle on the managed host.
  - Verifies the server's TLS certificate against O(ca_path). Without O(ca_path) and with
    O(expected_fingerprint) it bootstraps trust (RFC 7030 section 4.1.1). The first request does not
    verify the server; the answer is accepted only when one of its certificates has the
    SHA-256 fingerprint given out of band, and then the server's TLS certificate must verify
    against the accepted CA certificates on a second, verified request. Nothing is written
    unless all of this holds.
  - Every certificate of the answer but the trust anchor must pass RFC 5280 path validation to
    it (RFC 7030 section 4.1.3) - a CA certificate (basicConstraints cA, keyUsage keyCertSign),
    within path length constraints, valid now - or it is dropped with a warning naming it, and
    never written. The anchor is the pinned certificate with O(expected_fingerprint), otherwise
    the self-signed CA certificates of the answer, which came over a verified connection. This
    keeps the RFC 7030 section 4.1.3 rollover certificates and drops, for example, a "CA" that
    an end-entity key signed.
  - Reports which certificate is the current root and which are rollover certificates.
  - The bundle is replaced atomically and only when its content differs.
author:
  - pki.est developers (@pki-est)
extends_documentation_fragment:
  - pki.est.connection
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description: Fetches the certificates and reports what would change without writing.
  diff_mode:
    support: full
    description: Shows the old and new PEM bundle.
  platform:
    platforms: posix
    support: full
    description: Runs on the managed host, which needs network access to the EST server.
options:
  dest:
    description:
      - PEM file to write the CA certificates to. Without it the module only returns them.
    type: path
  expected_fingerprint:
    description:
      - SHA-256 fingerprint of a CA certificate, obtained out of band, as 64 hex digits
        (colons, spaces and a C(sha256:) prefix are allowed).
      - Without O(ca_path) this turns on bootstrap mode.
    type: str
  backup:
    description:
      - Keep a timestamped copy of O(dest) before replacing it.
    type: bool
    default: false
notes:
  - Every run asks the server, because the CA may have rolled over; the bundle is only written when it changes.
  - HTTP Basic credentials are not sent in bootstrap mode, as the server is not yet verified.
seealso:
  - module: pki.est.est_enroll
  - name: RFC 7030 section 4.1
    description: Distribution of CA certificates.
    link: https://www.rfc-editor.org/rfc/rfc7030#section-4.1
'''

EXAMPLES = r'''
- name: Bootstrap trust in the EST CA from a fingerprint given out of band
  pki.est.est_cacerts:
    url: https://est.example.com:8443
    expected_fingerprint: "3a:5f:...:9c"
    dest: /etc/pki/est/ca.pem
    mode: "0644"

- name: Refresh the CA bundle over a verified connection
  pki.est.est_cacerts:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
    dest: /etc/pki/est/ca.pem

- name: Set connection options once for every EST module in the play
  hosts: all
  module_defaults:
    group/pki.est.est:
      url: https://est.example.com:8443
      ca_path: /etc/pki/est/ca.pem
  tasks:
    - name: Fetch the CA certificates of the iot CA
      pki.est.est_cacerts:
        ca_label: iot
        dest: /etc/pki/est/iot-ca.pem
'''

RETURN = r'''
certificates:
  description: The accepted CA certificates in the order the server sent them.
  returned: success
  type: list
  elements: dict
  contains:
    subject:
      description: Subject in RFC 4514 form.
      type: str
      sample: CN=Lab EST CA,O=pki.est lab
    issuer:
      description: Issuer in RFC 4514 form.
      type: str
    serial:
      description: Serial number in upper-case hex.
      type: str
    not_before:
      description: Start of validity, UTC, ISO 8601.
      type: str
    not_after:
      description: End of validity, UTC, ISO 8601.
      type: str
      sample: '2036-11-21T10:00:00Z'
    sha256_fingerprint:
      description: SHA-256 of the DER certificate, lower-case hex.
      type: str
    days_remaining:
      description: Whole days until C(not_after).
      type: int
    ca:
      description: Whether the certificate has basicConstraints CA true.
      type: bool
    role:
      description:
        - C(root) for the current root, the trust anchor of RFC 7030 section 4.1.3 - of the self-signed
          certificates the one with the latest notAfter (ties go to the latest notBefore, then to the larger
          fingerprint, never to the order of the answer). During a root key update (RFC 4210 section 4.4)
          that is the new root, NewWithNew, when the server sends it.
        - C(rollover_old_with_old) for another self-signed certificate of the same CA (same name or key, or
          linked to the root by a cross certificate), such as the previous root, OldWithOld.
        - C(rollover_old_with_new) and C(rollover_new_with_old) for the cross certificates OldWithNew (the old
          key certified by the new one) and NewWithOld (the new key certified by the old one).
        - C(other_root) for a self-signed certificate of an unrelated CA, C(intermediate) for anything else.
      type: str
      choices: [root, rollover_old_with_old, rollover_old_with_new, rollover_new_with_old, other_root, intermediate]
      sample: root
root_fingerprint:
  description:
    - SHA-256 fingerprint of the current root, the certificate with RV(certificates[].role=root) - the self-signed
      certificate with the latest notAfter, the new root during a rollover. The same whatever the order of the answer.
    - V(null) when the answer holds no self-signed certificate.
  returned: success
  type: str
rollover:
  description: Whether the answer holds RFC 7030 section 4.1.3 rollover certificates.
  returned: success
  type: bool
bootstrapped:
  description: Whether trust was bootstrapped from O(expected_fingerprint) without O(ca_path).
  returned: success
  type: bool
dropped:
  description: Subjects of certificates that were served but failed path validation to the trust anchor (not written, not trusted).
  returned: success
  type: list
  elements: str
pem:
  description: The PEM bundle.
  returned: success
  type: str
dest:
  description: The bundle's path.
  returned: when O(dest) is set
  type: str
backup_file:
  description: Name of the backup file.
  returned: when O(backup=true) and the bundle was replaced
  type: str
error_kind:
  description: Class of failure, for example C(tls), C(bootstrap_mismatch), C(not_supported), C(bad_response).
  returned: failure
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pki.est.plugins.module_utils._module import (
    CONNECTION_REQUIRED_BY, CONNECTION_REQUIRED_TOGETHER, FileWriter, check_readable, connection_argument_spec,
    connection_kwargs, fail, require_libraries, unexpected,
)
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def main():
    module = AnsibleModule(
        argument_spec=connection_argument_spec(
            dest=dict(type='path'),
            expected_fingerprint=dict(type='str'),
            backup=dict(type='bool', default=False),
        ),
        required_together=CONNECTION_REQUIRED_TOGETHER,
        required_by=CONNECTION_REQUIRED_BY,
        add_file_common_args=True,
        supports_check_mode=True,
    )
    require_libraries(module)
    check_readable(module, 'ca_path', 'client_cert_path', 'client_key_path')

    from ansible_collections.pki.est.plugins.module_utils import cacerts, codecs
    from ansible_collections.pki.est.plugins.module_utils.certinfo import cert_facts, classify_ca_certs

    params = module.params
    try:
        result = cacerts.get_cacerts(connection_kwargs(params), params['expected_fingerprint'])
    except ESTError as exc:
        fail(module, exc)
    except (OSError, ValueError, TypeError) as exc:
        unexpected(module, exc)

    roles = classify_ca_certs(result.certs)
    certificates = []
    for cert, role in zip(result.certs, roles):
        facts = cert_facts(cert)
        facts['role'] = role
        certificates.append(facts)
    for reason in result.reasons:
        module.warn('dropped a /cacerts certificate that does not validate (RFC 7030 4.1.3): %s' % reason)
    pem = codecs.certs_to_pem(result.certs)
    root = [c['sha256_fingerprint'] for c in certificates if c['role'] == 'root']
    output = dict(
        changed=False,
        certificates=certificates,
        root_fingerprint=root[0] if root else None,
        rollover=any(role.startswith('rollover_') for role in roles),
        bootstrapped=result.bootstrapped,
        dropped=[c.subject.rfc4514_string() for c in result.dropped],
        pem=pem,
    )
    if params['dest']:
        writer = FileWriter(module)
        try:
            writer.write(params['dest'], pem, backup=params['backup'])
        except ESTError as exc:
            fail(module, exc)
        output.update(changed=writer.changed, dest=params['dest'])
        if writer.backup_files:
            output['backup_file'] = list(writer.backup_files.values())[0]
        if module._diff:
            output['diff'] = writer.diff()
    module.exit_json(**output)


if __name__ == '__main__':
    main()
