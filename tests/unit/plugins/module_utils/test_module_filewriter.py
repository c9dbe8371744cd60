# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""FileWriter's directory creation: only with make_dirs, only when writing, not in check mode; owner and group."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import os
import pwd
import stat

import pytest

from ansible_collections.pki.est.plugins.module_utils._module import FileWriter
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = dict(owner=None, group=None, mode=None)
        self.params.update(params)


def _write(writer, path, **kwargs):
    return writer.write(str(path), b'data', 0o644, file_args=False, mode_param=False, **kwargs)


def _ids(path):
    st = os.stat(str(path))
    return st.st_uid, st.st_gid


def test_creates_missing_directories_with_owner_and_group(tmp_path):
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    writer = FileWriter(FakeModule(owner=user, group=group), make_dirs=True)
    assert _write(writer, tmp_path / 'a' / 'b' / 'file')
    assert writer.changed and writer.created_dirs == [str(tmp_path / 'a'), str(tmp_path / 'a' / 'b')]
    for path in writer.created_dirs:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o755 and _ids(path) == (os.getuid(), os.getgid())
    assert (tmp_path / 'a' / 'b' / 'file').read_bytes() == b'data'


def test_numeric_owner_and_group(tmp_path):
    writer = FileWriter(FakeModule(owner=str(os.getuid()), group=str(os.getgid())), make_dirs=True)
    _write(writer, tmp_path / 'a' / 'file')
    assert _ids(tmp_path / 'a') == (os.getuid(), os.getgid())


def test_quiet_write_that_creates_a_directory_is_a_change(tmp_path):
    writer = FileWriter(FakeModule(), make_dirs=True)
    _write(writer, tmp_path / 'a' / 'record.json', quiet=True)
    assert writer.changed and writer.created_dirs == [str(tmp_path / 'a')]
    writer = FileWriter(FakeModule(), make_dirs=True)
    _write(writer, tmp_path / 'a' / 'other.json', quiet=True)
    assert not writer.changed and writer.created_dirs == []


def test_check_mode_creates_nothing(tmp_path):
    writer = FileWriter(FakeModule(check_mode=True), make_dirs=True)
    assert _write(writer, tmp_path / 'a' / 'file')
    assert os.listdir(str(tmp_path)) == [] and writer.created_dirs == []


def test_without_make_dirs_a_missing_directory_is_an_error(tmp_path):
    writer = FileWriter(FakeModule())
    with pytest.raises(ESTError) as info:
        _write(writer, tmp_path / 'a' / 'file')
    assert 'does not exist' in info.value.message
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('params, option', [(dict(owner='no-such-user-x9'), 'owner'), (dict(group='no-such-group-x9'), 'group')])
def test_unknown_owner_or_group_fails_before_anything_is_made(tmp_path, params, option):
    writer = FileWriter(FakeModule(**params), make_dirs=True)
    with pytest.raises(ESTError) as info:
        _write(writer, tmp_path / 'a' / 'file')
    assert info.value.kind == 'invalid_input' and info.value.message.startswith(option + ':')
    assert os.listdir(str(tmp_path)) == [] and not writer.changed
