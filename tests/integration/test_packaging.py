# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as users get it: ansible-galaxy build, install, enroll from the installed copy; the EE build context.

The tarball is built from a copy of what git knows (tracked and untracked-not-ignored files) plus
the junk a work tree gathers (venvs, build output, keys, test state), so the result depends on
galaxy.yml's build_ignore and not on what happens to lie around here; a second build of the real
work tree shows that .venv and .build, which CI's fresh clone has too, stay out.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import ROOT, Runner

BIN = os.path.dirname(sys.executable)

# The build_ignore lines proposed for galaxy.yml (added to the copy's galaxy.yml until the real one has them).
PROPOSED_BUILD_IGNORE = [
    '.cache',
    '*/.pytest_cache',
    '*/.hypothesis',
    'reports',
    'changelogs/.plugin-cache.yaml',
    '*.key',
    '*.p8',
    '*.p12',
    '*.pfx',
]

# What a work tree gathers: a venv, the collections link, the demo's keys, caches, reports, stray keys.
JUNK = [
    '.venv/bin/python3', '.build/collections/ansible_collections/pki/README', '.demo/host/host.key',
    '.ansible/tmp/x', '.cache/ansible-compat/x', 'tests/output/junit/python3.11-units.xml',
    '.pytest_cache/v/cache/lastfailed', 'tests/unit/.pytest_cache/v/cache/nodeids', '.hypothesis/examples/x',
    'tests/unit/.hypothesis/examples/x', 'plugins/module_utils/__pycache__/codecs.cpython-311.pyc',
    'benchmarks/output/fleet.json', 'reports/junit.xml', 'playbooks/enroll.retry', 'changelogs/.plugin-cache.yaml',
    'pki-est-0.0.9.tar.gz', 'host.key', 'certs/web.p12', 'certs/web.pfx',
]

PEM_PRIVATE_KEY = re.compile(rb'-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?-----END \1-----', re.S)


def _run(command, **kwargs):
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert proc.returncode == 0, '%s\n%s\n%s' % (' '.join(command), proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def _galaxy_env(home, collections):
    env = dict(os.environ)
    # Only the given collections path: with the work tree's link on the path, install would find pki.est there and do nothing.
    env.update(ANSIBLE_HOME=str(home), ANSIBLE_NOCOLOR='1', ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
               ANSIBLE_COLLECTIONS_PATH=str(collections))
    return env


def _build(source, output, home):
    _run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', str(source), '--output-path', str(output)],
         env=_galaxy_env(home, home / 'collections'))
    tarballs = [name for name in os.listdir(str(output)) if name.endswith('.tar.gz')]
    assert len(tarballs) == 1, tarballs
    return output / tarballs[0]


def _members(tarball):
    with tarfile.open(str(tarball)) as archive:
        return {member.name: (archive.extractfile(member).read() if member.isfile() else None) for member in archive.getmembers()}


def _private_keys(members):
    """Names of the members that hold a private key cryptography can load (PEM blocks or a DER file)."""
    found = []
    for name, data in members.items():
        if data is None:
            continue
        candidates = [(serialization.load_pem_private_key, m.group(0)) for m in PEM_PRIVATE_KEY.finditer(data)]
        candidates.append((serialization.load_der_private_key, data))
        for load, blob in candidates:
            try:
                load(blob, None)
            except TypeError:  # encrypted: still a private key
                pass
            except ValueError:
                continue
            found.append(name)
            break
    return found


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """The tarball built from a clean copy with the proposed build_ignore, and its installed copy."""
    base = tmp_path_factory.mktemp('packaging')
    source = base / 'src' / 'pki_est'
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split('\0')
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src):  # deleted in the work tree, not yet in the index
            continue
        dest = source / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, str(dest), follow_symlinks=False)
    galaxy = yaml.safe_load((source / 'galaxy.yml').read_text())
    galaxy['build_ignore'] += [line for line in PROPOSED_BUILD_IGNORE if line not in galaxy['build_ignore']]
    (source / 'galaxy.yml').write_text(yaml.safe_dump(galaxy, sort_keys=False))
    for rel in JUNK:
        path = source / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('junk\n')
    # The demo's key is a real one, so that the key scan below is shown to find what it looks for.
    (source / '.demo' / 'host' / 'host.key').write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert _private_keys({'k': (source / '.demo' / 'host' / 'host.key').read_bytes()}) == ['k']

    tarball = _build(source, base / 'dist', base / 'home')
    installed = base / 'installed'
    installed.mkdir()
    # Offline: galaxy.yml has no dependencies, so nothing is fetched (Galaxy is unreachable here).
    _run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', str(tarball), '-p', str(installed)],
         env=_galaxy_env(base / 'home', installed))
    return dict(source=source, tarball=tarball, installed=installed, version=galaxy['version'])


def test_tarball_has_the_collection_and_nothing_of_the_work_tree(built):
    members = _members(built['tarball'])
    names = set(members)
    for required in ('MANIFEST.json', 'FILES.json', 'meta/runtime.yml', 'meta/execution-environment.yml',
                     'meta/ee-requirements.txt', 'meta/bindep.txt', 'README.md', 'playbooks/ci_enroll.yml'):
        assert required in names, required
    # Everything the collection is made of is in it: nothing needed matches a build_ignore pattern.
    source = built['source']
    for top in ('plugins', 'roles', 'playbooks', 'docs', 'meta', 'changelogs'):
        for dirpath, _dirs, files in os.walk(str(source / top)):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), str(source))
                if '__pycache__' not in rel and rel not in JUNK:
                    assert rel in names, rel
    for rel in JUNK:
        assert rel not in names, rel
    for name in names:
        first = name.split('/')[0]
        assert first not in ('.venv', '.build', '.demo', '.ansible', '.cache', '.pytest_cache', '.hypothesis', 'reports'), name
        assert not fnmatch.fnmatch(name, '*__pycache__*') and not name.startswith('tests/output'), name
        assert not name.endswith(('.pyc', '.retry', '.tar.gz')), name
    assert _private_keys(members) == []
    manifest = json.loads(members['MANIFEST.json'])
    assert (manifest['collection_info']['namespace'], manifest['collection_info']['name']) == ('pki', 'est')


def test_real_tree_build_leaves_out_local_state(tmp_path):
    # CI's fresh clone has .venv and .build too (make creates them): without them here this test shows nothing.
    for local in ('.venv', '.build'):
        assert os.path.isdir(os.path.join(ROOT, local)), local
    members = _members(_build(ROOT, tmp_path / 'dist', tmp_path / 'home'))
    for name in members:
        assert name.split('/')[0] not in ('.venv', '.build', '.demo', '.ansible', '.pytest_cache', '.hypothesis'), name
        assert not name.startswith(('tests/output/', 'benchmarks/output/')), name
    # The unit tests' fixture keys stay out once galaxy.yml has PROPOSED_BUILD_IGNORE.
    assert _private_keys(members) == [], 'add PROPOSED_BUILD_IGNORE to galaxy.yml build_ignore'


def test_installed_copy_enrolls_against_the_lab(built, lab, tmp_path):
    installed = built['installed']
    collection = installed / 'ansible_collections' / 'pki' / 'est'
    assert not os.path.islink(str(collection)) and (collection / 'MANIFEST.json').is_file()
    runner = Runner(tmp_path)
    env = runner.env()
    env['ANSIBLE_COLLECTIONS_PATH'] = str(installed)  # the installed copy, and no other
    listing = _run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'list', 'pki.est', '--format', 'json'], env=env)
    assert json.loads(listing.stdout) == {str(installed / 'ansible_collections'): {'pki.est': {'version': built['version']}}}

    agent = tmp_path / 'agent'
    (agent / 'sbin').mkdir(parents=True)
    pki = tmp_path / 'pki'
    extra = dict(est_url=lab.url, est_ca_fingerprint=lab.ca_fingerprint, est_bundle_path=str(pki / 'ca.pem'),
                 est_cert_dir=str(pki), est_username='alice', est_password='s3cret-Pa55',
                 est_renewal_install_dir=str(agent / 'lib'), est_renewal_bin_path=str(agent / 'sbin' / 'pki-est-agent'),
                 est_renewal_config_path=str(agent / 'config.json'), est_renewal_credentials_path=str(agent / 'credentials.json'),
                 est_renewal_state_dir=str(agent / 'state'), est_renewal_scheduler='none')
    # The collection's own playbook by its name, as a user of the installed collection runs it.
    play = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', str(runner.inventory), 'pki.est.enroll',
                           '-e', json.dumps(extra)], env=env, cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=300, check=False)
    assert play.returncode == 0, play.stdout[-6000:] + play.stderr[-3000:]
    assert 'enrolled: CN=testhost' in play.stdout, play.stdout[-3000:]
    assert str(ROOT) not in play.stdout + play.stderr  # nothing came from the work tree

    cert = x509.load_pem_x509_certificate((pki / 'host.crt').read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(open(lab.ca_path, 'rb').read()))
    key = serialization.load_pem_private_key((pki / 'host.key').read_bytes(), None)
    assert key.public_key() == cert.public_key()
    assert 'simpleenroll' in [r['op'] for r in lab.requests()]
    # The renewal agent was installed with the engine files of the installed copy, and they work.
    check = subprocess.run([str(agent / 'sbin' / 'pki-est-agent'), '--config', str(agent / 'config.json'), '--check'],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'host' in check.stdout + check.stderr


def test_execution_environment_build_context(built, tmp_path):
    builder = os.path.join(BIN, 'ansible-builder')
    assert os.path.exists(builder), 'ansible-builder is missing: pip install -r requirements-dev.txt'
    work = tmp_path / 'ee'
    work.mkdir()
    # As docs/packaging.md says: the definition, and the tarball built beside it.
    shutil.copy(os.path.join(ROOT, 'execution-environment.yml'), str(work))
    shutil.copy(str(built['tarball']), str(work))
    _run([builder, 'create', '--file', 'execution-environment.yml', '--context', 'context', '--output-filename', 'Containerfile'],
         cwd=str(work))
    context = work / 'context'
    containerfile = (context / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE=' in containerfile
    assert 'COPY _build/collection/ /tmp/pki-est-collection/' in containerfile
    assert (context / '_build' / 'collection' / built['tarball'].name).is_file()
    requirements = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())
    assert requirements == {'collections': [{'name': '/tmp/pki-est-collection/pki-est.tar.gz', 'type': 'file'}]}
    # The collection is installed, then its Python and system packages are found and installed.
    steps = [line for line in containerfile.splitlines() if line.startswith('RUN ')]
    order = [next(i for i, line in enumerate(steps) if marker in line)
             for marker in ('ansible-galaxy collection install', 'introspect.py introspect --write-bindep', 'install-from-bindep')]
    assert order == sorted(order), steps

    # What that introspection step will find in the image: run the context's own script on the installed copy.
    found = yaml.safe_load(_run([sys.executable, str(context / '_build' / 'scripts' / 'introspect.py'), 'introspect',
                                 str(built['installed'])]).stdout)
    ee_python = _requirement_lines(os.path.join(ROOT, 'meta', 'ee-requirements.txt'))
    assert sorted(line.split('#')[0].strip() for line in found['python']) == sorted(ee_python)
    assert all('from collection pki.est' in line for line in found['python'])
    system = [line.split('#')[0].strip() for line in found['system']]
    for package in ('softhsm2 [platform:dpkg]', 'softhsm [platform:rpm]', 'tpm2-tools [platform:dpkg platform:rpm]',
                    'libtpm2-pkcs11-1 [platform:dpkg]', 'libtpm2-pkcs11-tools [platform:dpkg]', 'tpm2-pkcs11 [platform:rpm]',
                    'tpm2-openssl [platform:dpkg platform:rpm]'):
        assert package in system, package


def test_ee_requirements_follow_the_dev_requirements():
    """The EE's Python packages are requirements.txt's, with the same bounds, minus what the EE brings itself."""
    dev = dict((_name(line), line) for line in _requirement_lines(os.path.join(ROOT, 'requirements.txt')))
    ee = _requirement_lines(os.path.join(ROOT, 'meta', 'ee-requirements.txt'))
    assert sorted(_name(line) for line in ee) == sorted(['cryptography', 'requests', 'pyasn1', 'pyasn1-modules',
                                                         'python-pkcs11', 'pywinrm'])
    for line in ee:
        assert dev[_name(line)] == line, line


def test_bindep_debian_names_exist():
    """Each [platform:dpkg] package of meta/bindep.txt is known to apt here (rpm names cannot be checked on Debian)."""
    if not shutil.which('apt-cache'):
        pytest.skip('not a Debian system')
    names = []
    for line in _requirement_lines(os.path.join(ROOT, 'meta', 'bindep.txt')):
        match = re.match(r'(\S+)\s*\[([^\]]*)\]', line)
        if match and 'platform:dpkg' in match.group(2).split():
            names.append(match.group(1))
    assert len(names) >= 7, names
    proc = subprocess.run(['apt-cache', 'show', '--no-all-versions'] + names, capture_output=True, text=True, check=False)
    known = set(re.findall(r'^Package: (\S+)$', proc.stdout, re.M))
    assert sorted(set(names) - known) == []


def _requirement_lines(path):
    with open(path, encoding='utf-8') as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith(('#', '-r'))]


def _name(line):
    return re.split(r'[<>=!~ \[]', line, maxsplit=1)[0].lower()
