# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file replacement: final mode before the rename, nothing half-written, nothing left behind."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat
import tempfile

import pytest

from ansible_collections.pki.est.plugins.module_utils import fileio
from ansible_collections.pki.est.plugins.module_utils.errors import ESTError


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Run with a known umask and give the old one back."""
    old = os.umask(0o022)
    yield 0o022
    os.umask(old)


@pytest.fixture
def renames(monkeypatch):
    """Record what every rename moves into place, as seen at the moment of the rename."""
    seen = []
    real_rename = os.rename

    def spy(src, dst):
        with open(src, 'rb') as handle:
            seen.append({'src': src, 'dst': dst, 'mode': _mode(src), 'data': handle.read()})
        return real_rename(src, dst)

    monkeypatch.setattr(os, 'rename', spy)
    return seen


def test_new_file_gets_mode_before_rename(tmp_path, renames, umask):
    path = tmp_path / 'device.key'
    fileio.atomic_write(str(path), b'-----BEGIN PRIVATE KEY-----\n', mode=0o600)
    assert path.read_bytes() == b'-----BEGIN PRIVATE KEY-----\n'
    assert _mode(path) == 0o600
    (rename,) = renames
    assert rename['dst'] == str(path)
    assert rename['mode'] == 0o600
    assert rename['data'] == b'-----BEGIN PRIVATE KEY-----\n'
    assert os.path.dirname(rename['src']) == str(tmp_path)
    assert os.listdir(str(tmp_path)) == ['device.key']


def test_replacing_world_readable_file_with_private_one(tmp_path, renames, umask):
    path = tmp_path / 'device.key'
    path.write_bytes(b'old')
    path.chmod(0o644)
    fileio.atomic_write(str(path), b'new secret', mode=0o600)
    assert renames[0]['mode'] == 0o600
    assert _mode(path) == 0o600 and path.read_bytes() == b'new secret'
    assert os.listdir(str(tmp_path)) == ['device.key']


@pytest.mark.parametrize('mode', [0o400, 0o640, 0o644, 0o755, 0o2750])
def test_explicit_modes(tmp_path, umask, mode):
    path = tmp_path / 'file'
    fileio.atomic_write(str(path), b'x', mode=mode)
    assert _mode(path) == mode  # umask does not apply to an explicit mode


def test_existing_mode_kept_without_mode(tmp_path, renames, umask):
    path = tmp_path / 'ca.pem'
    path.write_bytes(b'old')
    path.chmod(0o640)
    fileio.atomic_write(str(path), b'new')
    assert _mode(path) == 0o640 and path.read_bytes() == b'new'
    assert renames[0]['mode'] == 0o640


@pytest.mark.parametrize('mask, expected', [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640)])
def test_new_file_without_mode_follows_umask(tmp_path, mask, expected):
    old = os.umask(mask)
    try:
        fileio.atomic_write(str(tmp_path / 'ca.pem'), b'x')
        assert os.umask(mask) == mask  # the umask is given back unchanged
    finally:
        os.umask(old)
    assert _mode(tmp_path / 'ca.pem') == expected


def test_text_is_written_as_utf8(tmp_path):
    path = tmp_path / 'note'
    fileio.atomic_write(str(path), 'caf\u00e9\n', mode=0o644)
    assert path.read_bytes() == b'caf\xc3\xa9\n'


def test_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    fileio.atomic_write('relative.pem', b'x', mode=0o644)
    assert (tmp_path / 'relative.pem').read_bytes() == b'x'
    assert os.listdir(str(tmp_path)) == ['relative.pem']


def test_missing_directory(tmp_path):
    path = tmp_path / 'missing' / 'device.key'
    with pytest.raises(ESTError) as info:
        fileio.atomic_write(str(path), b'x', mode=0o600)
    assert info.value.kind == 'host_state'
    assert str(tmp_path / 'missing') in info.value.message
    assert os.listdir(str(tmp_path)) == []


def test_failed_rename_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'device.key'
    path.write_bytes(b'old key')
    path.chmod(0o600)

    def refuse(src, dst):
        raise OSError(30, 'Read-only file system')

    monkeypatch.setattr(os, 'rename', refuse)
    with pytest.raises(ESTError) as info:
        fileio.atomic_write(str(path), b'new key', mode=0o644)
    assert info.value.kind == 'host_state'
    assert 'Read-only file system' in info.value.message and str(path) in info.value.message
    assert path.read_bytes() == b'old key' and _mode(path) == 0o600
    assert os.listdir(str(tmp_path)) == ['device.key']


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'ca.pem'
    path.write_bytes(b'old')

    def full(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full)
    with pytest.raises(ESTError) as info:
        fileio.atomic_write(str(path), b'new' * 1000, mode=0o644)
    assert info.value.kind == 'host_state'
    assert 'No space left on device' in info.value.message
    assert path.read_bytes() == b'old'
    assert os.listdir(str(tmp_path)) == ['ca.pem']


def test_cannot_create_temporary_file(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(13, 'Permission denied')

    monkeypatch.setattr(tempfile, 'mkstemp', refuse)
    with pytest.raises(ESTError) as info:
        fileio.atomic_write(str(tmp_path / 'ca.pem'), b'x')
    assert info.value.kind == 'host_state'
    assert 'cannot create a file in %s' % tmp_path in info.value.message


def test_directory_fsync_failure_is_not_fatal(tmp_path, monkeypatch):
    real_open = os.open

    def no_directories(path, flags, *args):
        if os.path.isdir(path):
            raise OSError(13, 'Permission denied')
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, 'open', no_directories)
    fileio.atomic_write(str(tmp_path / 'ca.pem'), b'x', mode=0o644)
    assert (tmp_path / 'ca.pem').read_bytes() == b'x'


def test_read_bytes(tmp_path):
    path = tmp_path / 'ca.pem'
    assert fileio.read_bytes(str(path)) is None
    path.write_bytes(b'\x00data\r\n')
    assert fileio.read_bytes(str(path)) == b'\x00data\r\n'


def test_read_bytes_unreadable(tmp_path):
    with pytest.raises(ESTError) as info:
        fileio.read_bytes(str(tmp_path))  # a directory
    assert info.value.kind == 'host_state'
    assert str(tmp_path) in info.value.message


# -- make_directories -------------------------------------------------------------------------------

def test_make_directories_creates_missing_ancestors_0755(tmp_path):
    old = os.umask(0o077)  # the mode is exact, whatever the umask
    try:
        created = fileio.make_directories(str(tmp_path / 'a' / 'b' / 'c'), 0o755)
    finally:
        os.umask(old)
    assert created == [str(tmp_path / 'a'), str(tmp_path / 'a' / 'b'), str(tmp_path / 'a' / 'b' / 'c')]
    for path in created:
        assert os.path.isdir(path) and _mode(path) == 0o755
    assert os.listdir(str(tmp_path)) == ['a'] and os.listdir(str(tmp_path / 'a')) == ['b']
    # Again: nothing to do.
    assert fileio.make_directories(str(tmp_path / 'a' / 'b' / 'c'), 0o755) == []


def test_make_directories_leaves_existing_ones_alone(tmp_path):
    (tmp_path / 'a').mkdir()
    os.chmod(str(tmp_path / 'a'), 0o700)
    created = fileio.make_directories(str(tmp_path / 'a' / 'b'), 0o755)
    assert created == [str(tmp_path / 'a' / 'b')]
    assert _mode(tmp_path / 'a') == 0o700 and _mode(tmp_path / 'a' / 'b') == 0o755


def test_make_directories_sets_owner_before_the_rename(tmp_path, monkeypatch):
    """Owner and mode are set under the temp name: the directory appears finished or not at all."""
    calls = []
    real_chown, real_rename = os.chown, os.rename

    def chown(path, uid, gid):
        calls.append(('chown', os.path.basename(path), uid, gid))
        return real_chown(path, uid, gid)

    def rename(src, dst):
        calls.append(('rename', os.path.basename(src), os.path.basename(dst), _mode(src)))
        return real_rename(src, dst)

    monkeypatch.setattr(os, 'chown', chown)
    monkeypatch.setattr(os, 'rename', rename)
    fileio.make_directories(str(tmp_path / 'd'), 0o750, os.getuid(), os.getgid())
    (chown_call, rename_call) = calls
    assert chown_call[0] == 'chown' and chown_call[1].startswith('.d.') and chown_call[2:] == (os.getuid(), os.getgid())
    assert rename_call[0] == 'rename' and rename_call[1] == chown_call[1] and rename_call[2:] == ('d', 0o750)
    assert _mode(tmp_path / 'd') == 0o750


def test_make_directories_removes_temp_directories_of_killed_runs(tmp_path):
    stale = tmp_path / '.certs.abcd1234.tmp'
    stale.mkdir()
    keep = tmp_path / '.certs.notatemp'
    keep.mkdir()
    full = tmp_path / '.certs.wxyz9876.tmp'
    full.mkdir()
    (full / 'something').write_text('x')  # not empty: never removed
    fileio.make_directories(str(tmp_path / 'certs'))
    assert sorted(os.listdir(str(tmp_path))) == ['.certs.notatemp', '.certs.wxyz9876.tmp', 'certs']


def test_make_directories_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / 'a').write_text('x')
    with pytest.raises(ESTError) as info:
        fileio.make_directories(str(tmp_path / 'a' / 'b'))
    assert info.value.kind == 'host_state'
    assert str(tmp_path / 'a') in info.value.message and 'not a directory' in info.value.message
    assert os.listdir(str(tmp_path)) == ['a']


def test_make_directories_failure_leaves_nothing(tmp_path, monkeypatch):
    def refuse(path, uid, gid):
        raise OSError(1, 'Operation not permitted')

    monkeypatch.setattr(os, 'chown', refuse)
    with pytest.raises(ESTError) as info:
        fileio.make_directories(str(tmp_path / 'a'), 0o755, 12345, 12345)
    assert info.value.kind == 'host_state'
    assert 'cannot create the directory %s: Operation not permitted' % (tmp_path / 'a') in info.value.message
    assert os.listdir(str(tmp_path)) == []


def test_make_directories_made_meanwhile_by_someone_else(tmp_path, monkeypatch):
    real_mkdtemp = tempfile.mkdtemp

    def racing(*args, **kwargs):
        made = real_mkdtemp(*args, **kwargs)
        (tmp_path / 'a').mkdir()
        (tmp_path / 'a' / 'theirs').write_text('x')
        return made

    monkeypatch.setattr(tempfile, 'mkdtemp', racing)
    assert fileio.make_directories(str(tmp_path / 'a')) == []
    assert os.listdir(str(tmp_path)) == ['a'] and os.listdir(str(tmp_path / 'a')) == ['theirs']


def test_make_directories_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    assert fileio.make_directories(os.path.join('x', 'y')) == [str(tmp_path / 'x'), str(tmp_path / 'x' / 'y')]
