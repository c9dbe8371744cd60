# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_csrattrs and est_enroll's csr_attributes=apply against the lab EST server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

CHALLENGE = '1.2.840.113549.1.9.7'
EC_KEY = '1.2.840.10045.2.1'
SECP384R1 = '1.3.132.0.34'
EXT_REQ = '1.2.840.113549.1.9.14'

ATTRS = [{'oid': CHALLENGE}, {'oid': EC_KEY, 'values': [{'oid': SECP384R1}]}, {'oid': EXT_REQ, 'extensions': ['2.5.29.17']}]


def _conn(lab):
    return dict(url=lab.url, ca_path=lab.ca_path, username='alice', password='s3cret-Pa55')


def test_csrattrs_decoded(runner, lab):
    lab.set_config(csrattrs=ATTRS)
    out = runner.call('pki.est.est_csrattrs', _conn(lab))[0]
    assert out['supported'] and not out['changed'], out
    assert out['oids'] == [CHALLENGE, EC_KEY, EXT_REQ]
    names = [item['name'] for item in out['attributes']]
    assert names[0] == 'challengePassword' and names[2] == 'extensionRequest', names
    assert out['requirements']['key_spec'] == 'ec-p384'
    assert out['requirements']['challenge_password_required']


def test_csrattrs_in_check_mode(runner, lab):
    lab.set_config(csrattrs=ATTRS)
    out = runner.call('pki.est.est_csrattrs', _conn(lab), check=True)[0]
    assert out['oids'] == [CHALLENGE, EC_KEY, EXT_REQ], out


def test_csrattrs_none_and_not_supported(runner, lab):
    lab.set_config(csrattrs=None)
    out = runner.call('pki.est.est_csrattrs', _conn(lab))[0]
    assert out['supported'] and out['attributes'] == [], out
    lab.set_config(csrattrs='404')
    out = runner.call('pki.est.est_csrattrs', _conn(lab))[0]
    assert not out['failed'] and not out['supported'] and out['attributes'] == [], out


def test_csrattrs_garbage_is_a_clear_error(runner, lab):
    lab.set_config(csrattrs=ATTRS)
    lab.set_fault('csrattrs', 'garbage', count=1)
    out = runner.call('pki.est.est_csrattrs', _conn(lab))[0]
    assert out['failed'] and out['error_kind'] == 'bad_response', out


def test_enroll_applies_csrattrs(runner, lab, tmp_path):
    from cryptography.hazmat.primitives import serialization
    lab.set_config(csrattrs=ATTRS)
    work = tmp_path / 'work'
    work.mkdir()
    args = dict(_conn(lab), path=str(work / 'c.pem'), private_key_path=str(work / 'k.pem'), common_name='attrs.example.test',
                csr_attributes='apply')
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'enrolled', out
    assert [r['op'] for r in lab.requests()] == ['csrattrs', 'simpleenroll']
    key = serialization.load_pem_private_key((work / 'k.pem').read_bytes(), None)
    assert key.curve.name == 'secp384r1'
    # challengePassword is listed: the request was linked to its TLS session (RFC 7030 3.5), no warning needed.
    assert not any('challengePassword' in w for w in out.get('warnings', [])), out
    # Idempotent: /csrattrs is only asked when a request is made.
    lab.clear_requests()
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'none' and lab.requests() == []


TEMPLATE = {'template': {'subject': [['2.5.4.3', None], ['2.5.4.10', 'Example Org']],
                         'key': {'algorithm': EC_KEY, 'curve': SECP384R1},
                         'extensions': [{'oid': '2.5.29.17', 'value_dns': ['tmpl.example.test']},
                                        {'oid': '2.5.29.37', 'eku': ['1.3.6.1.5.5.7.3.1']}]}}


def test_csrattrs_template_form(runner, lab):
    lab.set_config(csrattrs=TEMPLATE)
    out = runner.call('pki.est.est_csrattrs', _conn(lab))[0]
    assert out['supported'], out
    req = out['requirements']
    assert req['from_template'] and req['key_spec'] == 'ec-p384', req
    assert req['subject'].get('organizationName') == 'Example Org', req
    assert 'DNS:tmpl.example.test' in req['subject_alt_name'], req


def test_enroll_applies_the_template(runner, lab, tmp_path):
    lab.set_config(csrattrs=TEMPLATE)
    work = tmp_path / 'work'
    work.mkdir()
    args = dict(_conn(lab), path=str(work / 'c.pem'), private_key_path=str(work / 'k.pem'), common_name='tmpl.example.test',
                csr_attributes='apply')
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'enrolled', out
    assert 'O=Example Org' in out['subject'] and 'DNS:tmpl.example.test' in out['subject_alt_name'], out


RSA_KEY = '1.2.840.113549.1.1.1'


def test_enroll_meets_a_bare_rsa_demand(runner, lab, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    lab.set_config(csrattrs=[{'oid': RSA_KEY}])
    work = tmp_path / 'work'
    work.mkdir()
    args = dict(_conn(lab), path=str(work / 'c.pem'), private_key_path=str(work / 'k.pem'), common_name='rsa.example.test',
                csr_attributes='apply')
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['action'] == 'enrolled', out
    key = serialization.load_pem_private_key((work / 'k.pem').read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def test_enroll_refuses_a_demand_it_cannot_meet_before_anything_happens(runner, lab, tmp_path):
    # An EC key on a curve nobody implements, and an extension named without a value.
    lab.set_config(csrattrs=[{'oid': EC_KEY, 'values': [{'oid': '1.3.6.1.4.1.55555.99'}]},
                             {'oid': EXT_REQ, 'extensions': ['2.5.29.32']}])
    work = tmp_path / 'work'
    work.mkdir()
    args = dict(_conn(lab), path=str(work / 'c.pem'), private_key_path=str(work / 'k.pem'), common_name='odd.example.test',
                csr_attributes='apply')
    out = runner.call('pki.est.est_enroll', args)[0]
    assert out['failed'] and out['error_kind'] == 'invalid_input' and not out['changed'], out
    assert '1.3.6.1.4.1.55555.99' in out['msg'] and 'csr_attributes_unmet=warn' in out['msg'], out
    assert [r['op'] for r in lab.requests()] == ['csrattrs']
    assert list(work.iterdir()) == []
    # The operator chooses to proceed: a default key, the request goes out, the demands are warnings.
    out, run = runner.call('pki.est.est_enroll', dict(args, csr_attributes_unmet='warn'))
    assert out['action'] == 'enrolled', out
    assert 'certificatePolicies' in run.output and '1.3.6.1.4.1.55555.99' in run.output
