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
  - The bundle is replaced atomically and only when its content differs. A missing parent directory of O(dest) is
    created (mode C(0755), owner and group of the user the module runs as) right before the first write; in check
    mode it is only reported as a change.
  - With O(refresh_before) the server is asked only when the bundle in O(dest) is due (RFC 7030 section 4.1.2 asks
    clients to refresh their CA certificates before they expire). While every certificate in it stays valid beyond
    O(refresh_before), the module sends no request and returns the certificates read from O(dest) with RV(fetched=false).
  - With O(trust_existing=true) the bundle in O(dest) verifies the server on later runs, so one task both bootstraps
    a host and refreshes its bundle.
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
  refresh_before:
    description:
      - Keep the bundle in O(dest) without asking the server while it is far from expiry (RFC 7030 section 4.1.2).
      - The syntax of O(pki.est.est_enroll#module:renew_before) - days (V(30) or V(30d)), hours (V(12h)), minutes
        (V(90m)), seconds (V(600s)), or a share of each certificate's lifetime (V(33%)).
      - When O(dest) holds a readable PEM bundle in which every certificate stays valid beyond now plus this time
        (for a share - the last part of its own lifetime, as O(pki.est.est_enroll#module:renew_before) applies it), the
        module sends no request, returns the certificates read from O(dest) with RV(fetched=false) and RV(refresh_due),
        and only applies O(owner), O(group) and O(mode) to it. Without O(trust_existing), when O(expected_fingerprint) is
        set the bundle must also hold that certificate.
      - A missing, empty, unreadable or due bundle is fetched as without this option.
      - Unset (or empty), every run asks the server. Requires O(dest).
      - The stored bundle is not compared with the server, so a CA rollover that starts while the bundle is far from
        expiry is only seen when it becomes due, or on a run without this option.
    type: str
  trust_existing:
    description:
      - When O(dest) exists and holds certificates (the bundle of an earlier run), verify the server's TLS certificate
        against it; O(ca_path) and O(expected_fingerprint) are then not used, and the answer's certificates are
        validated to its own roots, so a completed rollover is followed.
      - When O(dest) does not exist yet (or holds no certificate), O(ca_path) and O(expected_fingerprint) are used as
        without this option; when neither is set the module fails with RV(error_kind=invalid_input), changes and writes
        nothing, and never falls back to the host's default trust store.
      - Requires O(dest).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds this run may wait when the server answers 503 (busy) or 429 (too many requests), honouring its
        C(Retry-After) with a random delay of up to half of it (at least 1 s, at most 30 s) added, so that hosts turned
        away together do not come back together. Without a C(Retry-After) it waits 5 s, doubling up to 60 s.
      - When the server asks for a longer wait than is left, the module fails at once with RV(error_kind=busy) and
        RV(retry_after) rather than wait past the budget. With V(0) (the default) the first busy answer fails that way.
    type: int
    default: 0
notes:
  - Without O(refresh_before) every run asks the server, because the CA may have rolled over; the bundle is only written
    when it changes.
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

- name: Bootstrap on the first run, then refresh only when a CA certificate expires within 30 days
  pki.est.est_cacerts:
    url: https://est.example.com:8443
    expected_fingerprint: "3a:5f:...:9c"
    trust_existing: true
    refresh_before: 30d
    dest: /etc/pki/est/ca.pem
    mode: "0644"
  register: est_ca

- name: Say whether the server was asked
  ansible.builtin.debug:
    msg: "{{ 'fetched' if est_ca.fetched else 'kept, due from ' ~ est_ca.refresh_due }}"

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
  description: Whether trust was bootstrapped from O(expected_fingerprint) without O(ca_path). V(false) when not fetched.
  returned: success
  type: bool
dropped:
  description:
    - Subjects of certificates that were served but failed path validation to the trust anchor (not written, not trusted).
    - Empty when not fetched.
  returned: success
  type: list
  elements: str
pem:
  description: The PEM bundle (read from O(dest) when not fetched).
  returned: success
  type: str
fetched:
  description:
    - Whether the server was asked. V(false) only with O(refresh_before), when the bundle in O(dest) is not due; the
      certificates are then read from it.
  returned: success
  type: bool
refresh_due:
  description:
    - When the bundle (kept or just fetched) enters the O(refresh_before) window, UTC, ISO 8601; from then on every
      run asks the server. In the past when the server's own certificates are already within the window.
  returned: when O(refresh_before) is set
  type: str
  sample: '2036-10-22T10:00:00Z'
dest:
  description: The bundle's path.
  returned: when O(dest) is set
  type: str
backup_file:
  description: Name of the backup file.
  returned: when O(backup=true) and the bundle was replaced
  type: str
error_kind:
  description: Class of failure, for example C(tls), C(bootstrap_mismatch), C(not_supported), C(bad_response), C(busy).
  returned: failure
  type: str
waited_seconds:
  description: Seconds this run waited for a busy server (503, 429) before asking again, rounded to 0.1 s.
  returned: when the server was asked, also on failure
  type: float
  sample: 2.7
retries:
  description: How many times this run sent a request again after a busy answer.
  returned: when the server was asked, also on failure
  type: int
  sample: 2
retry_after:
  description: The server's C(Retry-After) in seconds (a date turned into seconds), when it failed the module as busy.
  returned: when RV(error_kind=busy) and the server sent a usable C(Retry-After)
  type: int
  sample: 30
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pki.est.plugins.module_utils._module import (
    CONNECTION_REQUIRED_BY, CONNECTION_REQUIRED_TOGETHER, FileWriter, check_readable, connection_argument_spec,
    connection_kwargs, fail, require_libraries, unexpected,
)
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ') if moment is not None else None


def _facts(certs):
    from ansible_collections.pki.est.plugins.module_utils import codecs
    from ansible_collections.pki.est.plugins.module_utils.certinfo import cert_facts, classify_ca_certs
    roles = classify_ca_certs(certs)
    certificates = []
    for cert, role in zip(certs, roles):
        facts = cert_facts(cert)
        facts['role'] = role
        certificates.append(facts)
    root = [c['sha256_fingerprint'] for c in certificates if c['role'] == 'root']
    return dict(
        certificates=certificates,
        root_fingerprint=root[0] if root else None,
        rollover=any(role.startswith('rollover_') for role in roles),
        pem=codecs.certs_to_pem(certs),
    )


def _make_parent(module, path):
    """Create the missing directories above ``path`` (0755, see fileio); True when there were any (check mode: would be)."""
    from ansible_collections.pki.est.plugins.module_utils.fileio import make_directories
    parent = os.path.dirname(os.path.abspath(path))
    if module.check_mode:
        return not os.path.isdir(parent)
    return bool(make_directories(parent, 0o755))


def main():
    module = AnsibleModule(
        argument_spec=connection_argument_spec(
            dest=dict(type='path'),
            expected_fingerprint=dict(type='str'),
            backup=dict(type='bool', default=False),
            refresh_before=dict(type='str'),
            trust_existing=dict(type='bool', default=False),
            wait_timeout=dict(type='int', default=0),
        ),
        required_together=CONNECTION_REQUIRED_TOGETHER,
        required_by=dict(CONNECTION_REQUIRED_BY, refresh_before='dest'),
        required_if=[('trust_existing', True, ('dest',))],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    # requests is looked for only when the server is asked: a bundle that is not due needs no network.
    require_libraries(module, network=False)
    check_readable(module, 'client_cert_path', 'client_key_path')

    from ansible_collections.pki.est.plugins.module_utils import cacerts
    from ansible_collections.pki.est.plugins.module_utils.fileio import read_bytes

    params = module.params
    dest = params['dest']
    try:
        window = cacerts.parse_refresh_before(params['refresh_before'])
        stored = read_bytes(dest) if dest else None
        if window is not None:
            state = cacerts.stored_bundle_state(stored, window,
                                                pinned=None if params['trust_existing'] else params['expected_fingerprint'])
            if state.fresh:
                args = module.load_file_common_arguments(params, path=dest)
                changed = module.set_fs_attributes_if_different(args, False)
                module.exit_json(changed=changed, fetched=False, refresh_due=_iso(state.due), bootstrapped=False, dropped=[],
                                 dest=dest, **_facts(state.certs))
        trust = cacerts.refresh_trust(dest, stored, params['ca_path'], params['expected_fingerprint'], params['trust_existing'])
    except ESTError as exc:
        fail(module, exc)
    except (OSError, ValueError, TypeError) as exc:
        unexpected(module, exc)
    if trust.source == 'ca_path':
        check_readable(module, 'ca_path')
    if trust.note:
        module.warn('%s; trusting %s instead' % (trust.note, trust.source))
    require_libraries(module)

    from ansible_collections.pki.est.plugins.module_utils.waiting import Waiter
    # One budget for both requests of a bootstrap (see cacerts.get_cacerts).
    waiter = Waiter(params['wait_timeout'])
    try:
        result = cacerts.get_cacerts_with(dict(connection_kwargs(params), waiter=waiter), trust)
    except ESTError as exc:
        fail(module, exc, **waiter.facts())
    except (OSError, ValueError, TypeError) as exc:
        unexpected(module, exc, **waiter.facts())

    for reason in result.reasons:
        module.warn('dropped a /cacerts certificate that does not validate (RFC 7030 4.1.3): %s' % reason)
    output = dict(
        changed=False,
        fetched=True,
        bootstrapped=result.bootstrapped,
        dropped=[c.subject.rfc4514_string() for c in result.dropped],
        **dict(_facts(result.certs), **waiter.facts())
    )
    if window is not None:
        output['refresh_due'] = _iso(cacerts.bundle_due(result.certs, window))
    if dest:
        writer = FileWriter(module)
        try:
            made = _make_parent(module, dest)
            writer.write(dest, output['pem'], backup=params['backup'])
        except ESTError as exc:
            fail(module, exc)
        output.update(changed=writer.changed or made, dest=dest)
        if writer.backup_files:
            output['backup_file'] = list(writer.backup_files.values())[0]
        if module._diff:
            output['diff'] = writer.diff()
    module.exit_json(**output)


if __name__ == '__main__':
    main()
