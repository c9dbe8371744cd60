# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Session-scoped test PKI for the engine tests (keys are made once per run)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.pki.est.tests.unit.plugins.module_utils import _pki
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fakehttp import fixture_bytes


class PKI:
    """Everything the tests need, built once."""

    def __init__(self):
        self.root, self.root_key = _pki.self_signed('Test Root CA')
        self.intermediate, self.intermediate_key = _pki.issued('Test Issuing CA', self.root, self.root_key)
        self.leaf_key = _pki.new_key()
        self.leaf, _key = _pki.issued('device.example.com', self.intermediate, self.intermediate_key, ca=False,
                                      key=self.leaf_key, days=365)
        self.other_key = _pki.new_key()
        self.other_leaf, _key = _pki.issued('other.example.com', self.intermediate, self.intermediate_key, ca=False,
                                            key=self.other_key, days=365)
        self.leaf_no_bc, _key = _pki.issued('plain.example.com', self.root, self.root_key, ca=False, basic_constraints=False)
        self.csr = _pki.make_csr(self.leaf_key)
        self.rollover = _pki.Rollover('Rollover Root CA')
        # An intermediate under the old root key, as a CA in the middle of a rollover serves it.
        self.rollover_intermediate, _key = _pki.issued('Rollover Issuing CA', self.rollover.old_with_old,
                                                       self.rollover.old_key)
        # Certificates an attacker could slip into a /cacerts answer.
        self.unrelated_root, _key = _pki.self_signed('Unrelated Root CA')
        self.impostor_root, impostor_key = _pki.self_signed('Rollover Root CA')  # same name, another key
        self.impostor_sub, _key = _pki.issued('Rollover Issuing CA', self.impostor_root, impostor_key)


@pytest.fixture(scope='session')
def pki():
    return PKI()


@pytest.fixture(scope='session')
def recorded_cacerts():
    """What the recorded /cacerts answers in tests/unit/fixtures hold."""
    return json.loads(fixture_bytes('cacerts_expected.json').decode('utf-8'))
