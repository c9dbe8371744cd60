# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE of pki.est.win_renewal_task (see win_certstore.py beside it): the real action plugin runs in front of
it; this module answers as the PowerShell one does (sources_needed when the client version is not installed) and
records in the PKI_EST_FAKE_WINSTORE file what it was given: {"renewal": {"version", "sources", "configs", "task"}}.
The client's behaviour itself is tested with Mono (tests/windows)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible.module_utils.basic import AnsibleModule

PROVIDERS = {'software': 'Microsoft Software Key Storage Provider', 'tpm': 'Microsoft Platform Crypto Provider'}


def main():
    module = AnsibleModule(argument_spec=dict(
        state=dict(type='str', default='present', choices=['present', 'absent']),
        certificates=dict(type='list', elements='dict', default=[]), ca_bundle=dict(type='str'),
        install_dir=dict(type='path', default='C:\\ProgramData\\pki.est'), task_name=dict(type='str', default='pki.est renewal'),
        run_times=dict(type='list', elements='str', default=['00:00', '12:00']), random_delay=dict(type='int', default=60),
        client_version=dict(type='str', required=True), client_sources=dict(type='dict'),
    ), required_if=[('state', 'present', ('ca_bundle',))], supports_check_mode=True)
    params = module.params
    path = os.environ['PKI_EST_FAKE_WINSTORE']
    with open(path) as handle:
        data = json.load(handle)
    data['calls'].append(['renewal_task', params['state']])
    had = data.get('renewal') or {}
    result = dict(changed=False, client_version=params['client_version'], client_built=False)
    if params['state'] == 'absent':
        result['changed'] = bool(had)
        data['renewal'] = {}
    else:
        if had.get('version') != params['client_version']:
            if params['client_sources'] is None:
                module.exit_json(sources_needed=True, **result)
            result.update(changed=True, client_built=True)
        configs = {}
        for entry in params['certificates']:
            config = dict(url=entry['url'], ca_path=params['install_dir'] + '\\ca.pem', certificate=entry['certificate'],
                          store_location=entry.get('store_location', 'LocalMachine'), store_name=entry.get('store_name', 'My'),
                          renew_before=entry.get('renew_before', '33%'), rekey=entry.get('rekey', False),
                          key_provider=PROVIDERS[entry.get('key_storage', 'software')], timeout=entry.get('timeout', 30))
            for optional in ('ca_label', 'friendly_name', 'key_type'):
                if entry.get(optional):
                    config[optional] = entry[optional]
            configs['renewal-%s.json' % entry['name']] = config
        wanted = dict(version=params['client_version'], ca_bundle=params['ca_bundle'], configs=configs,
                      task=dict(name=params['task_name'], run_times=params['run_times'], random_delay=params['random_delay']),
                      sources=sorted(params['client_sources']) if params['client_sources'] else had.get('sources'))
        result['changed'] = result['changed'] or wanted != had
        result['changed_keys'] = sorted(key for key in wanted if wanted[key] != had.get(key))
        result['configs'] = sorted(configs)
        if not module.check_mode:
            data['renewal'] = wanted
    with open(path + '.tmp', 'w') as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(path + '.tmp', path)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
