#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: tpm_key
short_description: Keep a non-extractable key pair in a TPM 2.0 or any PKCS#11 token
version_added: 0.1.0
description:
  - Ensures a key pair with a given O(label) (and/or O(key_id)) exists in a PKCS#11 token, or does not.
    The token is chosen by O(pkcs11_module) plus O(token_label) or O(slot), or by one RFC 7512 O(uri).
  - New private keys are created inside the token as private, sensitive, non-extractable signing keys;
    their private value never exists outside the token. Returns the public key, the key id and a
    C(pkcs11:) URI that M(pki.est.est_enroll) takes as its C(private_key_uri).
  - Idempotent by label and id. A key of another algorithm under the same label is an error
    (C(key_conflict)) unless O(force=true), which replaces it.
  - A TPM 2.0 is reached through tpm2-pkcs11 (C(libtpm2_pkcs11.so)); with O(tpm_init=true) the
    tpm2-pkcs11 store and token are created with C(tpm2_ptool) when the token does not exist yet.
  - Failures carry an C(error_kind) - C(token_library), C(token_not_found), C(token_login),
    C(key_conflict), C(key_store), C(invalid_input).
author:
  - pki.est developers (@pki-est)
requirements:
  - python-pkcs11 on the managed host
  - cryptography on the managed host
  - C(tpm2_ptool) (Debian package C(libtpm2-pkcs11-tools)) on the host for O(tpm_init=true)
attributes:
  check_mode:
    support: full
    description: Reads the token through a read-only session and reports what would change; creates nothing.
  diff_mode:
    support: full
    description: Shows the key's label, algorithm, id and public key before and after.
  platform:
    platforms: posix
    support: full
    description: Runs on the host that holds the token.
options:
  pkcs11_module:
    description:
      - Path of the PKCS#11 library on the host, for example C(/usr/lib/softhsm/libsofthsm2.so) or
        C(/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so).
      - May come from C(module-path) in O(uri) instead.
    type: path
  token_label:
    description: Label of the token to use. May come from C(token) in O(uri).
    type: str
  slot:
    description: Slot id of the token to use, instead of or together with O(token_label). May come from C(slot-id) in O(uri).
    type: int
  uri:
    description:
      - An RFC 7512 C(pkcs11:) URI naming the token and key, for example
        C(pkcs11:token=dev;object=device-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/pki/pin).
      - Options given beside it fill what it lacks; an option that contradicts it is an error.
    type: str
  pin:
    description:
      - User PIN of the token.
      - Without it, C(pin-value) or C(pin-source) (a file) in O(uri), else the environment variable
        C(PKI_EST_PKCS11_PIN) of the module process (set it with the task's C(environment)).
    type: str
  label:
    description: CKA_LABEL of the key pair. Needed to create a key. May come from C(object) in O(uri).
    type: str
  key_id:
    description:
      - CKA_ID of the key pair, hex (colons allowed). May come from C(id) in O(uri).
      - A new key without one gets 16 random bytes.
    type: str
  algorithm:
    description: Algorithm of the key pair.
    type: str
    default: ec-p256
    choices: [ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096]
  state:
    description: Whether the key pair should exist.
    type: str
    default: present
    choices: [present, absent]
  force:
    description: Replace a key of another algorithm that has the same label (the old key is destroyed).
    type: bool
    default: false
  tpm_init:
    description:
      - When the token does not exist, create it in the tpm2-pkcs11 store with C(tpm2_ptool init) (only
        if the store has no primary object yet) and C(tpm2_ptool addtoken), with O(pin) as its user PIN.
      - The TPM is reached through the usual C(TPM2TOOLS_TCTI) / C(TPM2_PKCS11_TCTI) environment variables.
    type: bool
    default: false
  tpm_store:
    description:
      - Directory of the tpm2-pkcs11 store (created 0700 if missing). Also exported to the library as
        C(TPM2_PKCS11_STORE). Without it tpm2-pkcs11 searches its default places.
    type: path
  tpm_so_pin:
    description: Security officer PIN of a token created by O(tpm_init). Required with O(tpm_init=true).
    type: str
  tpm_token_label:
    description: Label of the token O(tpm_init) creates. Defaults to O(token_label).
    type: str
notes:
  - C(tpm2_ptool) takes the PINs on its command line, so they are briefly visible in the host's process
    list while O(tpm_init) creates a token.
seealso:
  - module: pki.est.est_enroll
  - name: RFC 7512
    description: The PKCS#11 URI scheme.
    link: https://www.rfc-editor.org/rfc/rfc7512
'''

EXAMPLES = r'''
- name: A P-256 device key in a SoftHSM2 token
  pki.est.tpm_key:
    pkcs11_module: /usr/lib/softhsm/libsofthsm2.so
    token_label: device
    pin: "{{ token_pin }}"
    label: device-key
  register: device_key

- name: An RSA key in the TPM, creating the tpm2-pkcs11 token on first use
  pki.est.tpm_key:
    pkcs11_module: /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
    token_label: tpm
    pin: "{{ tpm_user_pin }}"
    label: server-key
    algorithm: rsa-2048
    tpm_init: true
    tpm_store: /var/lib/tpm2_pkcs11
    tpm_so_pin: "{{ tpm_so_pin }}"

- name: The same key named by a URI, with the PIN read from a root-only file
  pki.est.tpm_key:
    uri: "pkcs11:token=tpm;object=server-key?module-path=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so&pin-source=/etc/pki/tpm.pin"
    algorithm: rsa-2048

- name: Remove a key
  pki.est.tpm_key:
    pkcs11_module: /usr/lib/softhsm/libsofthsm2.so
    token_label: device
    label: old-key
    state: absent
  environment:
    PKI_EST_PKCS11_PIN: "{{ token_pin }}"
'''

RETURN = r'''
uri:
  description: RFC 7512 URI of the private key (token, label, id; no library and no PIN).
  returned: state=present, except when check mode would create the key
  type: str
  sample: pkcs11:token=device;object=device-key;id=%1F%0A%22%D3;type=private
public_key:
  description: The public key, PEM (SubjectPublicKeyInfo).
  returned: state=present, except when check mode would create the key
  type: str
key_id:
  description: CKA_ID of the key, hex.
  returned: state=present, except when check mode would create a key with a random id
  type: str
  sample: 1f0a22d3c4e5f60718293a4b5c6d7e8f
label:
  description: CKA_LABEL of the key.
  returned: always
  type: str
algorithm:
  description: Algorithm of the key in the token.
  returned: state=present
  type: str
  sample: ec-p256
token_label:
  description: Label of the token the key is in.
  returned: when the token was found
  type: str
extractable:
  description: Whether the private value could leave the token (readable or marked extractable). False for keys this module makes.
  returned: state=present, except when check mode would create the key
  type: bool
  sample: false
token_created:
  description: Whether O(tpm_init) created (or in check mode would create) the token.
  returned: when O(tpm_init=true)
  type: bool
error_kind:
  description: Class of failure (C(token_library), C(token_not_found), C(token_login), C(key_conflict), C(key_store), C(invalid_input)).
  returned: failure
  type: str
'''

import importlib.util
import os
import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.pki.est.plugins.module_utils._module import fail, require_libraries, unexpected
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError
from ansible_collections.pki.est.plugins.module_utils import tokenkeys

ARGUMENT_SPEC = dict(
    pkcs11_module=dict(type='path'),
    token_label=dict(type='str', no_log=False),
    slot=dict(type='int'),
    uri=dict(type='str'),
    pin=dict(type='str', no_log=True),
    label=dict(type='str'),
    key_id=dict(type='str'),
    algorithm=dict(type='str', default='ec-p256', choices=list(tokenkeys.ALGORITHMS)),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    force=dict(type='bool', default=False),
    tpm_init=dict(type='bool', default=False),
    tpm_store=dict(type='path'),
    tpm_so_pin=dict(type='str', no_log=True),
    tpm_token_label=dict(type='str', no_log=False),
)


def _diff_text(facts):
    if not facts:
        return ''
    return ''.join('%s: %s\n' % (name, facts[name]) for name in ('label', 'algorithm', 'key_id', 'public_key') if name in facts)


def _scrub(text, secrets):
    for secret in secrets:
        if secret:
            text = text.replace(secret, '********')
    return text.strip().splitlines()[-1] if text.strip() else 'no output'


def _ptool(module, args, secrets):
    tool = module.get_bin_path('tpm2_ptool')
    if tool is None:
        raise ESTError('token_library', 'tpm_init needs tpm2_ptool on the host (Debian package libtpm2-pkcs11-tools)')
    rc, out, err = module.run_command([tool] + args)
    if rc != 0:
        raise ESTError('key_store', 'tpm2_ptool %s failed (rc=%d): %s' % (args[0], rc, _scrub(err or out, secrets)))
    return out


def ensure_tpm_token(module, ref, result):
    """Create the tpm2-pkcs11 token (and the store's primary object) when the token is missing."""
    params = module.params
    label = params['tpm_token_label'] or ref.token_label
    if not label:
        raise ESTError('invalid_input', 'tpm_init needs tpm_token_label or token_label')
    if ref.token_label is not None and ref.token_label != label:
        raise ESTError('invalid_input', 'tpm_token_label %r differs from token_label %r' % (label, ref.token_label))
    ref.token_label = label
    store = params['tpm_store']
    if store:
        os.environ['TPM2_PKCS11_STORE'] = store
    result['token_created'] = False
    if any(token['label'] == label for token in tokenkeys.list_tokens(ref.module_path)):
        return
    result['token_created'] = result['changed'] = True
    if module.check_mode:
        return
    if ref.pin is None:
        raise ESTError('token_login', 'tpm_init needs the user PIN of the new token (pin, the URI or %s)' % tokenkeys.PIN_ENV)
    secrets = (ref.pin, params['tpm_so_pin'])
    path = ['--path', store] if store else []
    if store and not os.path.isdir(store):
        os.makedirs(store, 0o700)
    found = re.search(r'id:\s*(\d+)', _ptool(module, ['listprimaries'] + path, secrets))
    if not found:
        found = re.search(r'id:\s*(\d+)', _ptool(module, ['init'] + path, secrets))
        if not found:
            raise ESTError('key_store', 'tpm2_ptool init did not report the id of the primary object it made')
    _ptool(module, ['addtoken', '--pid', found.group(1), '--label', label, '--sopin', params['tpm_so_pin'],
                    '--userpin', ref.pin] + path, secrets)


def run(module, result):
    params = module.params
    check = module.check_mode
    ref = tokenkeys.TokenRef.from_params(uri=params['uri'], pkcs11_module=params['pkcs11_module'],
                                         token_label=params['token_label'], slot=params['slot'], pin=params['pin'],
                                         label=params['label'], key_id=params['key_id'])
    result['label'] = ref.label
    if ref.label is None and ref.key_id is None:
        raise ESTError('invalid_input', 'name the key: label and/or key_id (or object=/id= in uri)')
    if params['tpm_init']:
        ensure_tpm_token(module, ref, result)
        if check and result['token_created']:
            result.update(token_label=ref.token_label, algorithm=params['algorithm'] if params['state'] == 'present' else None,
                          diff={'before': '', 'after': _diff_text({'label': ref.label, 'algorithm': params['algorithm']})})
            return
    wanted = params['algorithm']
    with tokenkeys.session(ref, rw=not check) as session:
        result['token_label'] = session.token.label
        key = tokenkeys.find_key(session, label=ref.label, key_id=ref.key_id)
        before = key.facts() if key else {}
        if params['state'] == 'absent':
            if key is not None:
                result['changed'] = True
                if not check:
                    tokenkeys.destroy_key(session, key)
            result['diff'] = {'before': _diff_text(before), 'after': ''}
            return
        if key is not None and key.algorithm != wanted:
            if not params['force']:
                raise ESTError('key_conflict', 'the token key %r is %s, not %s: set force=true to replace it'
                               % (key.label, key.algorithm, wanted))
            if not check:
                tokenkeys.destroy_key(session, key)
            key = None
        if key is None:
            result['changed'] = True
            if check:
                after = {'label': ref.label, 'algorithm': wanted, 'public_key': '(made in the token)'}
                if ref.key_id is not None:
                    after['key_id'] = result['key_id'] = ref.key_id.hex()
                result.update(algorithm=wanted, diff={'before': _diff_text(before), 'after': _diff_text(after)})
                return
            key = tokenkeys.generate_key(session, ref.label, ref.key_id, wanted)
        result.update(key.facts())
        result.update(uri=key.uri(result['token_label']),
                      extractable=not tokenkeys.check_not_extractable(session, key),
                      diff={'before': _diff_text(before), 'after': _diff_text(key.facts())})


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[('tpm_init', True, ['tpm_so_pin'])])
    if importlib.util.find_spec('pkcs11') is None:
        module.fail_json(msg=missing_required_lib('python-pkcs11'), error_kind='token_library', changed=False)
    require_libraries(module, network=False)
    result = {'changed': False}
    try:
        run(module, result)
    except ESTError as exc:
        result.pop('diff', None)
        fail(module, exc, **result)
    except (OSError, ValueError, TypeError) as exc:
        result.pop('diff', None)
        unexpected(module, exc, **result)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
