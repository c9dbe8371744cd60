# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The error taxonomy."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.pki.est.plugins.module_utils.errors import ERROR_KINDS, ESTError, ESTPending


@pytest.mark.parametrize('kind', ERROR_KINDS)
def test_every_kind(kind):
    error = ESTError(kind, 'it broke')
    assert error.kind == kind and str(error) == 'it broke' and error.message == 'it broke'
    assert error.as_dict() == {'error_kind': kind}


def test_unknown_kind():
    pytest.raises(ValueError, ESTError, 'oops', 'x')


def test_as_dict_with_status_and_details():
    error = ESTError('auth_required', 'who?', status=401, details={'www_authenticate': 'Basic'})
    assert error.as_dict() == {'error_kind': 'auth_required', 'http_status': 401, 'www_authenticate': 'Basic'}


def test_pending():
    error = ESTPending('later', retry_after=30)
    assert isinstance(error, ESTError)
    assert (error.kind, error.status, error.retry_after) == ('pending', 202, 30)
    assert error.as_dict() == {'error_kind': 'pending', 'http_status': 202, 'retry_after': 30}
    assert ESTPending('later').as_dict() == {'error_kind': 'pending', 'http_status': 202, 'retry_after': None}
