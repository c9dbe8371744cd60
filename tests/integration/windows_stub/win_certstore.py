# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE of pki.est.win_certstore for the controller-side tests of the roles' Windows branch.

It is put in place of plugins/modules/win_certstore.py in a throw-away copy of the collections path
(tests/integration/test_windows_roles.py), never shipped. It takes the real module's options and gives its
results, keeping "the store" in the JSON file named by the environment variable PKI_EST_FAKE_WINSTORE:
{"keys": {name: {"pem": ..., "certificate": thumbprint|null}}, "stores": {"LocalMachine/My": {thumbprint: {...}}},
"calls": [[state, name-or-store], ...]}. Keys are software keys made with cryptography; requests are built with
the collection's own CSR code. What it proves is the order and the idempotence of the roles' tasks, with real
EST enrollments in between; the Windows side itself is tested with Mono (tests/windows)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule


def _load(path):
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    return {'keys': {}, 'stores': {}, 'calls': []}


def _save(path, data):
    with open(path + '.tmp', 'w') as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(path + '.tmp', path)


def _certs(pem_text):
    from cryptography import x509
    return x509.load_pem_x509_certificates(pem_text.encode('ascii'))


def _thumbprint(cert):
    from cryptography.hazmat.primitives import serialization
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # nosec - the Windows thumbprint


def _facts(cert, record, renew_before):
    from ansible_collections.pki.est.plugins.module_utils import certinfo, csr, hoststate
    now = datetime.datetime.now(datetime.timezone.utc)
    due = hoststate.renewal_time(cert, hoststate.parse_renew_before(renew_before))
    return dict(thumbprint=_thumbprint(cert), subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                not_before=certinfo.not_before(cert).strftime('%Y-%m-%dT%H:%M:%SZ'),
                not_after=certinfo.not_after(cert).strftime('%Y-%m-%dT%H:%M:%SZ'),
                subject_alt_name=csr.extension_values(cert)['sans'], friendly_name=record.get('friendly_name'),
                has_private_key=bool(record.get('key')), key_provider='Microsoft Software Key Storage Provider' if record.get('key') else None,
                renewal_due=now >= due or certinfo.not_after(cert) <= now,
                days_remaining=(certinfo.not_after(cert) - now).days)


def main():
    module = AnsibleModule(argument_spec=dict(
        state=dict(type='str', default='present', choices=['present', 'absent', 'request', 'accept', 'query']),
        store_location=dict(type='str', default='LocalMachine', choices=['LocalMachine', 'CurrentUser']),
        store_name=dict(type='str', default='My'), path=dict(type='path'), content=dict(type='str'),
        password=dict(type='str', no_log=True), thumbprint=dict(type='str'), subject=dict(type='str'),
        match_subject=dict(type='bool', default=False), friendly_name=dict(type='str'), name=dict(type='str'),
        subject_alt_name=dict(type='list', elements='str'), key_usage=dict(type='list', elements='str'),
        extended_key_usage=dict(type='list', elements='str'),
        key_algorithm=dict(type='str', default='rsa-2048', choices=['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384']),
        key_storage=dict(type='str', default='software', choices=['software', 'tpm']),
        key_exportable=dict(type='bool', default=False), certificate=dict(type='str'),
        renew_before=dict(type='str', default='33%'),
    ), supports_check_mode=True)
    params = module.params
    path = os.environ['PKI_EST_FAKE_WINSTORE']
    data = _load(path)
    state = params['state']
    data['calls'].append([state, params['name'] or params['store_name']])
    where = '%s/%s' % (params['store_location'], params['store_name'])
    result = dict(changed=False)
    if state == 'query':
        wanted = (params['thumbprint'] or '').replace(' ', '').upper()
        found = []
        for record in data['stores'].get(where, {}).values():
            cert = _certs(record['pem'])[0]
            if (wanted and _thumbprint(cert) == wanted) or (params['friendly_name'] and record.get('friendly_name') == params['friendly_name']) \
                    or (params['subject'] and cert.subject.rfc4514_string() == params['subject']):
                found.append(_facts(cert, record, params['renew_before']))
        result['certificates'] = sorted(found, key=lambda facts: facts['not_after'], reverse=True)
    elif state == 'request':
        from cryptography.hazmat.primitives import serialization
        from ansible_collections.pki.est.plugins.module_utils import csr, keys
        record = data['keys'].get(params['name'])
        reused = record is not None and record.get('certificate') is None
        if reused:
            key = serialization.load_pem_private_key(record['pem'].encode('ascii'), None)
        else:
            key = keys.generate_private_key(params['key_algorithm'])
            result['changed'] = True
            if not module.check_mode:
                data['keys'][params['name']] = dict(pem=keys.private_key_pem(key).decode('ascii'), certificate=None,
                                                    storage=params['key_storage'])
        if module.check_mode and not reused:
            module.exit_json(changed=True, reused=False, key_name='pki-est-' + params['name'])  # no key made, so no request
        cn = params['subject'].split('CN=', 1)[1].split(',')[0]
        request = csr.build_csr(key, csr.subject_pairs(common_name=cn), [csr.normalize_san(s) for s in params['subject_alt_name'] or []],
                                key_usage=params['key_usage'], eku=csr.eku_oids(params['extended_key_usage']))
        result.update(csr=csr.csr_pem(request).decode('ascii'), reused=reused, key_name='pki-est-' + params['name'])
    elif state == 'accept':
        from cryptography.hazmat.primitives import serialization
        record = data['keys'].get(params['name'])
        cert = _certs(params['certificate'])[0]
        if record is None:
            module.fail_json(msg='there is no pending key pki-est-%s' % params['name'], error_kind='host_state')
        key = serialization.load_pem_private_key(record['pem'].encode('ascii'), None)
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            module.fail_json(msg='the certificate is not for the key pki-est-%s' % params['name'], error_kind='host_state')
        result.update(changed=True, thumbprint=_thumbprint(cert), key_name='pki-est-' + params['name'])
        if not module.check_mode:
            record['certificate'] = _thumbprint(cert)
            data['stores'].setdefault(where, {})[_thumbprint(cert)] = dict(
                pem=params['certificate'], key=params['name'], friendly_name=params['friendly_name'])
    elif state == 'present':
        imported = []
        for cert in _certs(params['content']):
            store = params['store_name']
            if store == 'auto':
                store = 'Root' if cert.issuer == cert.subject else 'CA'
            target = data['stores'].setdefault('%s/%s' % (params['store_location'], store), {})
            if _thumbprint(cert) not in target:
                imported.append(_thumbprint(cert))
                if not module.check_mode:
                    from cryptography.hazmat.primitives import serialization
                    target[_thumbprint(cert)] = dict(pem=cert.public_bytes(serialization.Encoding.PEM).decode('ascii'),
                                                     friendly_name=params['friendly_name'])
        result.update(changed=bool(imported), thumbprints=imported)
    else:
        module.fail_json(msg='the test double does not do state=%s' % state)
    _save(path, data)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
