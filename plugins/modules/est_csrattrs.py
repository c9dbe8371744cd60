#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: est_csrattrs
short_description: Ask an EST server which attributes it wants in certificate requests
version_added: 0.1.0
description:
  - Fetches C(/csrattrs) (RFC 7030 section 4.5, clarified by RFC 8951 and RFC 9908) and returns
    what the server asks for, decoded, with names for the well-known OIDs.
  - Understands both encodings - the RFC 7030 sequence of OIDs and attributes, and the
    RFC 9908 CertificationRequestInfoTemplate.
  - A server without C(/csrattrs) (404 or 501), or with nothing to ask (204 or an empty list),
    returns RV(supported=false) or an empty RV(attributes) without failing.
  - M(pki.est.est_enroll) with O(pki.est.est_enroll#module:csr_attributes=apply) applies the same answer to its requests.
author:
  - pki.est developers (@pki-est)
extends_documentation_fragment:
  - pki.est.connection
options:
  wait_timeout:
    description:
      - Seconds this run may wait when the server answers 503 (busy) or 429 (too many requests), honouring its
        C(Retry-After) with a random delay of up to half of it (at least 1 s, at most 30 s) added, so that hosts turned
        away together do not come back together. Without a C(Retry-After) it waits 5 s, doubling up to 60 s.
      - When the server asks for a longer wait than is left, the module fails at once with RV(error_kind=busy) and
        RV(retry_after) rather than wait past the budget. With V(0) (the default) the first busy answer fails that way.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: Only reads from the server; runs the same in check mode.
  diff_mode:
    support: none
    description: Writes nothing, so there is nothing to show.
  platform:
    platforms: posix
    support: full
    description: Runs on the managed host, which needs network access to the EST server.
seealso:
  - module: pki.est.est_enroll
  - name: RFC 7030 section 4.5
    description: CSR attributes.
    link: https://www.rfc-editor.org/rfc/rfc7030#section-4.5
'''

EXAMPLES = r'''
- name: See what the EST server wants in a request
  pki.est.est_csrattrs:
    url: https://est.example.com:8443
    ca_path: /etc/pki/est/ca.pem
  register: csrattrs

- name: Show the key type it asks for
  ansible.builtin.debug:
    msg: "{{ csrattrs.requirements.key_spec | default('any') }}"
'''

RETURN = r'''
supported:
  description: Whether the server offers C(/csrattrs) (false for 404 and 501).
  returned: success
  type: bool
attributes:
  description:
    - What the server asks for, in its order. Each item has C(oid), C(name), C(type) (C(oid) for a
      bare OID, C(attribute) for an attribute with values) and C(values), decoded - extensions
      inside an extensionRequest, key type hints (C(key_type), C(curve), C(key_size)), or an RFC 9908
      C(template) with C(subject), C(key), C(extensions).
  returned: success
  type: list
  elements: dict
  sample:
    - {oid: 1.2.840.113549.1.9.7, name: challengePassword, type: oid, values: []}
    - {oid: 1.2.840.10045.2.1, name: id-ecPublicKey, type: attribute, values: [{key_type: ec, curve: secp384r1}]}
oids:
  description: The dotted OIDs of RV(attributes), for quick tests.
  returned: success
  type: list
  elements: str
requirements:
  description:
    - The answer turned into what a request should carry - C(key_spec) (for example C(ec-p384)),
      C(hash), C(challenge_password_required), C(subject), C(subject_alt_name), C(key_usage),
      C(extended_key_usage), C(extensions), and C(attributes) this client cannot fill in.
  returned: success
  type: dict
error_kind:
  description: Class of failure (C(tls), C(auth_required), C(bad_response), C(busy), ...).
  returned: failure
  type: str
waited_seconds:
  description: Seconds this run waited for a busy server (503, 429) before asking again, rounded to 0.1 s.
  returned: always, also on failure
  type: float
  sample: 2.7
retries:
  description: How many times this run sent a request again after a busy answer.
  returned: always, also on failure
  type: int
  sample: 2
retry_after:
  description: The server's C(Retry-After) in seconds (a date turned into seconds), when it failed the module as busy.
  returned: when RV(error_kind=busy) and the server sent a usable C(Retry-After)
  type: int
  sample: 30
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pki.est.plugins.module_utils._module import (
    CONNECTION_REQUIRED_BY, CONNECTION_REQUIRED_TOGETHER, check_readable, connection_argument_spec, connection_kwargs,
    fail, require_libraries, unexpected,
)
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def main():
    module = AnsibleModule(
        argument_spec=connection_argument_spec(wait_timeout=dict(type='int', default=0)),
        required_together=CONNECTION_REQUIRED_TOGETHER,
        required_by=CONNECTION_REQUIRED_BY,
        supports_check_mode=True,
    )
    require_libraries(module)
    check_readable(module, 'ca_path', 'client_cert_path', 'client_key_path')

    from ansible_collections.pki.est.plugins.module_utils.csrattrs import fetch_csrattrs, to_csr_requirements
    from ansible_collections.pki.est.plugins.module_utils.transport import ESTTransport
    from ansible_collections.pki.est.plugins.module_utils.waiting import Waiter
    waiter = Waiter(module.params['wait_timeout'])
    try:
        parsed = fetch_csrattrs(ESTTransport(waiter=waiter, **connection_kwargs(module.params)))
        requirements = to_csr_requirements(parsed or [])
    except ESTError as exc:
        fail(module, exc, **waiter.facts())
    except (OSError, ValueError, TypeError) as exc:
        unexpected(module, exc, **waiter.facts())
    module.exit_json(changed=False, supported=parsed is not None, attributes=parsed or [],
                     oids=[item['oid'] for item in parsed or []], requirements=requirements, **waiter.facts())


if __name__ == '__main__':
    main()
