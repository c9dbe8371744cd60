#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: est_cert_info
short_description: Report the state of the certificates on a host, without the network
version_added: 0.1.0
description:
  - Reads certificates on the managed host and returns, per certificate, its names, validity, whether it matches its
    key and chains to its CA, and one RV(certificates[].state) - V(valid), V(renewal_due), V(pending), V(missing),
    V(invalid), V(expired) or V(revoked) - with the reasons, plus the counts by state.
  - The certificates are those listed in O(paths), or else every certificate of the est_renewal agent config
    O(agent_config), together with the agent's last result for each.
  - Makes no network call unless O(revocation) asks for one. When the decision record that M(pki.est.est_enroll) and
    the renewal agent leave beside a certificate (C(<path>.est.json)) vouches for the certificate, key and chain
    files as they are now, the facts come from the record and no X.509 is parsed, so a daily run over a fleet costs
    about what an M(ansible.builtin.stat) task costs (docs/report.md). A revocation check or O(ca_path) means
    parsing every certificate.
  - Changes nothing, ever; C(changed) is always false.
  - The playbook C(pki.est.report) (C(playbooks/report.yml)) gathers this from every host into one HTML and JSON report.
author:
  - pki.est developers (@pki-est)
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Writes nothing, so there is nothing to show.
  platform:
    platforms: posix
    support: full
    description: Runs on the managed host; needs cryptography >= 45 there when a certificate must be parsed.
options:
  paths:
    description:
      - The certificates to report on. Each is a certificate path, or a dict with C(path) and optionally C(name)
        (default the file name), C(private_key_path) (then RV(certificates[].key_match) is checked),
        C(private_key_uri) (a key in a PKCS#11 token - key_match is then null, tokens are not opened),
        C(chain_path) (then RV(certificates[].chain_ok) is checked) and C(renew_before).
      - C(renew_before) is read as M(pki.est.est_enroll) reads it - days (V(30) or V(30d)), hours (V(12h)), minutes
        (V(90m)), seconds (V(600s)) or a share of the lifetime (V(33%), the default).
      - Mutually exclusive with O(agent_config).
    type: list
    elements: raw
  agent_config:
    description:
      - An est_renewal agent config (JSON, see docs/renewal.md); every certificate it lists is reported, with its
        name, key, chain and C(renew_before) from the config, and the agent's last result (RV(certificates[].agent))
        from the agent's state directory.
      - Used when O(paths) is not given; defaults to V(/etc/pki-est-agent/config.json) then.
    type: path
  ca_path:
    description:
      - PEM trust anchors to validate every certificate against (RFC 5280 path validation), the certificates of its
        chain file serving as intermediates. Without it, a certificate is validated against its chain file alone.
    type: path
  revocation:
    description:
      - Whether to ask if the certificates are revoked - V(ocsp) (the OCSP responder the certificate names), V(crl)
        (its CRL distribution points), V(auto) (OCSP when the certificate names a responder, else or when it cannot
        be reached the CRL), or V(none) (no network at all). See docs/revocation.md for what makes an answer trusted.
      - The issuer is looked for in the certificate's chain file and O(ca_path).
      - A check that cannot be made is reported in RV(certificates[].revocation_error) and the reasons, and the state
        stays what it was - it is never taken to mean "not revoked".
    type: str
    choices: [none, crl, ocsp, auto]
    default: none
  revocation_timeout:
    description: Seconds to wait for each OCSP responder or CRL download.
    type: int
    default: 10
notes:
  - A V(pending) certificate is one whose request the EST server holds (HTTP 202); the next M(pki.est.est_enroll) run
    or renewal agent run asks again.
  - RV(certificates[].chain_ok) says whether the certificate was issued under the CA, checked at a moment inside the
    certificate's validity, so that an expired certificate shows as V(expired), not as unchained.
seealso:
  - module: pki.est.est_enroll
  - module: pki.est.est_agent
'''

EXAMPLES = r'''
- name: Report on the certificates the renewal agent keeps
  pki.est.est_cert_info:
  register: certs

- name: Fail when any certificate is not valid
  ansible.builtin.assert:
    that: certs.counts.valid == certs.certificates | length
    fail_msg: "{{ certs.certificates | rejectattr('state', 'eq', 'valid') | map(attribute='reasons') | list }}"

- name: Report on given certificates, with revocation checks
  pki.est.est_cert_info:
    paths:
      - /etc/pki/est/web.crt
      - path: /etc/pki/est/mqtt.crt
        name: mqtt
        private_key_path: /etc/pki/est/mqtt.key
        chain_path: /etc/pki/est/mqtt-chain.pem
        renew_before: 14d
    ca_path: /etc/pki/est/ca.pem
    revocation: auto
  register: certs
'''

RETURN = r'''
certificates:
  description: One entry per certificate, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The certificate's name (from the agent config, O(paths), or the file name).
      type: str
      sample: web
    path:
      description: The certificate file.
      type: str
    private_key_path:
      description: The key file compared with the certificate, or null.
      type: str
    chain_path:
      description: The chain file, or null.
      type: str
    state:
      description:
        - The worst that applies, in this order - V(revoked), V(expired), V(invalid) (unreadable, not yet valid, not
          matching its key, or not chaining), V(pending), V(missing), V(renewal_due), V(valid).
      type: str
      sample: valid
    reasons:
      description: Every problem found, in words.
      type: list
      elements: str
      sample: ["inside the renewal window since 2026-05-01T10:00:00Z"]
    checked_by:
      description: V(record) when the facts came from the decision record, V(x509) when the files were parsed, null when there is no certificate.
      type: str
    subject:
      description: The subject (RFC 4514), or null without a certificate.
      type: str
      sample: CN=web01.example.com
    subject_alt_name:
      description: The subjectAltName entries (C(DNS:...), C(IP:...), ...).
      type: list
      elements: str
    issuer:
      description: The issuer (RFC 4514).
      type: str
    serial:
      description: The serial number, upper-case hex.
      type: str
    sha256_fingerprint:
      description: SHA-256 of the certificate's DER, hex.
      type: str
    not_before:
      description: Start of validity, UTC (C(YYYY-MM-DDTHH:MM:SSZ)).
      type: str
    not_after:
      description: End of validity, UTC.
      type: str
    seconds_left:
      description: Seconds until RV(certificates[].not_after); negative once expired.
      type: int
    renew_at:
      description: When the renewal window opens (C(renew_before)), UTC.
      type: str
    key_match:
      description: Whether the certificate holds the public half of the key; null when unknown (see RV(certificates[].key_match_reason)).
      type: bool
    key_match_reason:
      description: Why RV(certificates[].key_match) is false or null.
      type: str
    chain_ok:
      description: Whether the certificate validates to the chain file or O(ca_path); null when neither is given.
      type: bool
    chain_reason:
      description: Why RV(certificates[].chain_ok) is false or null.
      type: str
    pending:
      description: The request the server holds - C(created), C(attempts), C(operation), C(retry_after) - or null.
      type: dict
    revocation:
      description: With O(revocation) - C(status) (V(good) or V(revoked)), C(reason), C(revocation_time), C(source).
      type: dict
    revocation_error:
      description: Why the revocation check could not be made, or null.
      type: str
    agent:
      description:
        - The renewal agent's last result for this certificate (with O(agent_config)) - C(last_run), C(last_status)
          (V(ok), V(renewed), V(pending), V(due), V(failed)), C(last_message), C(last_success), C(failures) (in a
          row), C(not_after); null when the agent has not run.
      type: dict
counts:
  description: How many certificates are in each state (every state is present).
  returned: success
  type: dict
  sample: {valid: 3, renewal_due: 1, pending: 0, missing: 0, invalid: 0, expired: 0, revoked: 0}
agent_config:
  description: The agent config read, or null when O(paths) was given.
  returned: success
  type: str
error_kind:
  description: Class of failure (C(invalid_input) for unusable options or an unreadable agent config).
  returned: failure
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pki.est.plugins.module_utils._module import fail, require_libraries, unexpected
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='raw'),
            agent_config=dict(type='path'),
            ca_path=dict(type='path'),
            revocation=dict(type='str', choices=['none', 'crl', 'ocsp', 'auto'], default='none'),
            revocation_timeout=dict(type='int', default=10),
        ),
        mutually_exclusive=[('paths', 'agent_config')],
        supports_check_mode=True,
    )
    require_libraries(module, network=False)

    from ansible_collections.pki.est.plugins.module_utils import certreport
    from ansible_collections.pki.est.plugins.module_utils.agent import DEFAULT_CONFIG
    params = module.params
    config = None
    try:
        if params['paths'] is not None:
            entries, agent_state = certreport.entries_from_paths(params['paths']), None
        else:
            config = params['agent_config'] or DEFAULT_CONFIG
            entries, agent_state = certreport.entries_from_agent_config(config)
        result = certreport.report(entries, ca_path=params['ca_path'], revocation=params['revocation'],
                                   revocation_timeout=params['revocation_timeout'], agent_state=agent_state)
    except ESTError as exc:
        fail(module, exc)
    except (OSError, ValueError, TypeError) as exc:
        unexpected(module, exc)
    module.exit_json(changed=False, agent_config=config, **result)


if __name__ == '__main__':
    main()
