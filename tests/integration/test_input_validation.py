# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""est_enroll refuses malformed subject and subjectAltName values before it writes or sends anything."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

PASSWORD = 's3cret-Pa55'


def _args(lab, tmp_path, **extra):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    args = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD,
                path=str(work / 'host.crt'), private_key_path=str(work / 'host.key'), chain_path=str(work / 'chain.pem'),
                common_name='app.example.test', subject_alt_name=['DNS:app.example.test'])
    args.update(extra)
    return args


@pytest.mark.parametrize('bad, fragment', [
    (dict(common_name='a\nb'), "common_name contains a control character: 'a\\nb'"),
    (dict(subject={'OU': 'Ops\tWeb'}), "subject attribute 'OU' contains a control character: 'Ops\\tWeb'"),
    (dict(subject_alt_name=['DNS:app.example.test', 'email:not an email']),
     "subject_alt_name entry 'email:not an email' is not a valid email address"),
    (dict(subject_alt_name=['DNS:a b.example.test']), "subject_alt_name entry 'DNS:a b.example.test' is not a valid DNS name"),
], ids=['cn-line-feed', 'subject-tab', 'san-email', 'san-dns-space'])
def test_enroll_refuses_bad_input_before_anything_happens(runner, lab, tmp_path, bad, fragment):
    out = runner.call('pki.est.est_enroll', _args(lab, tmp_path, **bad))[0]
    assert out['failed'] and out['error_kind'] == 'invalid_input', out
    assert fragment in out['msg'], out
    assert not out.get('changed'), out
    assert sorted(p.name for p in (tmp_path / 'work').iterdir()) == []
    assert lab.requests() == []
