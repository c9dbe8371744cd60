# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installing the renewal agent on a host: what the est_agent module writes, without Ansible.

The agent (:mod:`.agent`) runs from a versioned directory::

    <install_dir>/<version>/pki-est-agent              entry script (the host's Python in its shebang)
    <install_dir>/<version>/pki_est_engine/*.py        the engine files, as the modules run them
    <install_dir>/<version>/pki_est_engine/.complete   written last: the version is whole

``<bin_path>`` is a symbolic link to the entry script of the current version. An install
unpacks the engine (a zip the est_agent action plugin sends from the controller) into a
temporary directory beside the version directories, marks it complete, renames it into place
and only then turns the link: a process killed at any point leaves the previous version
running, and the next install removes the debris. Not part of what the agent itself runs
(the leading underscore keeps it out of the engine the action plugin packs).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shutil
import tempfile
import zipfile

from .agent import CONFIG_VERSION, ConfigError, check_config
from .errors import ESTError
from .fileio import atomic_write, crash_point, make_directories

ENGINE_DIR = 'pki_est_engine'
ENTRY_NAME = 'pki-est-agent'
COMPLETE = '.complete'
_PARTIAL = '.partial-'
# <collection version>-<12 hex digits of the engine digest>, as the action plugin names versions.
_VERSION_DIR = re.compile(r'^[0-9][A-Za-z0-9.+_]*-[0-9a-f]{12}$')
_VERSION = re.compile(r'^[A-Za-z0-9][A-Za-z0-9.+_-]*$')
_ENGINE_FILE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*\.py$')
_UNIT_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9:_.@-]*$')
_CRON_FILE = re.compile(r'^[A-Za-z0-9_-]+$')

# Keys of the est_enroll role's resolved entries that the agent does not take: what only the
# first enrollment needs (its credentials, CSR attributes, waiting), or what is the role's own.
_ENROLL_ONLY_KEYS = frozenset(('dir', 'username', 'client_cert_path', 'client_key_path', 'wait_timeout',
                               'csr_attributes', 'backup', 'pkcs12'))
# Secrets never reach the config, whatever the entry holds: they go to the credentials file.
_SECRET_KEYS = frozenset(('password', 'pkcs12_passphrase', 'pin'))
_SKIPPED_KEYS = _ENROLL_ONLY_KEYS | _SECRET_KEYS | frozenset(('commands', 'restart_services', 'reload_services', 'post_renew'))


def config_entries(certificates):
    """The agent's config entries from ``certificates``, in the agent's format or as est_enroll resolves them.

    An est_enroll entry's ``commands`` (argument lists, or strings split on blanks),
    ``restart_services`` and ``reload_services`` become ``post_renew`` commands; empty
    values are left out; keys only the first enrollment needs are dropped.
    """
    entries = []
    for index, item in enumerate(certificates or []):
        if not isinstance(item, dict):
            raise ConfigError('certificates[%d] must be an object, got %r' % (index, item))
        entry = {}
        post = list(item.get('post_renew') or [])
        for command in item.get('commands') or []:
            post.append(command.split() if isinstance(command, str) else list(command))
        for verb, key in (('restart', 'restart_services'), ('reload', 'reload_services')):
            for service in item.get(key) or []:
                post.append(['systemctl', verb, service])
        for key, value in item.items():
            if key in _SKIPPED_KEYS:
                continue
            if value is None or value == '' or value == [] or value == {}:
                continue
            entry[key] = value
        if post:
            entry['post_renew'] = post
        entries.append(entry)
    return entries


def agent_config(certificates, state_dir, metrics_path=None, credentials_path=None):
    """The config document (checked as the agent checks it)."""
    config = {'version': CONFIG_VERSION, 'state_dir': state_dir, 'certificates': config_entries(certificates)}
    if metrics_path:
        config['metrics_path'] = metrics_path
    if credentials_path:
        config['credentials_path'] = credentials_path
    return check_config(config)


def check_credentials(credentials, names):
    """``credentials`` when they map certificate names (or ``*``) to username/password/pkcs12_passphrase."""
    allowed = ('username', 'password', 'pkcs12_passphrase', 'pin')
    for name, value in (credentials or {}).items():
        if name != '*' and name not in names:
            raise ConfigError('credentials are given for %r, which names no certificate (%s)'
                              % (name, ', '.join(sorted(names)) or 'none'))
        if not isinstance(value, dict):
            raise ConfigError('credentials[%r] must be an object with %s' % (name, ', '.join(allowed)))
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ConfigError('credentials[%r] has unknown keys %s (known: %s)' % (name, ', '.join(unknown), ', '.join(allowed)))
    return credentials or {}


def check_version(version):
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ESTError('invalid_input', 'the agent version %r is not a plain directory name' % (version,))
    return version


def entry_script(python, version):
    """The entry script of ``version``: runs :func:`.agent.main` with ``python``."""
    if not python or not os.path.isabs(python) or any(c.isspace() for c in python):
        raise ESTError('invalid_input', 'python must be an absolute path without blanks, got %r' % (python,))
    return ('#!%s\n'
            '# pki-est-agent %s: renews this host\'s EST certificates.\n'
            '# Installed by pki.est (est_agent module, est_renewal role); see docs/renewal.md of the collection.\n'
            'import os\n'
            'import sys\n\n'
            'sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))\n'
            'from %s.agent import main  # noqa: E402\n\n'
            'raise SystemExit(main())\n') % (python, version, ENGINE_DIR)


def version_dir(install_dir, version):
    return os.path.join(install_dir, check_version(version))


def installed(install_dir, version):
    """Whether ``version`` is whole under ``install_dir``."""
    return os.path.isfile(os.path.join(version_dir(install_dir, version), ENGINE_DIR, COMPLETE))


def link_target(install_dir, version):
    return os.path.join(version_dir(install_dir, version), ENTRY_NAME)


def link_ok(bin_path, target):
    try:
        return os.readlink(bin_path) == target
    except OSError:
        return False


def unpack(bundle, install_dir, version, python):
    """Put ``version`` in place from the zip ``bundle``: unpack beside, mark complete, rename."""
    final = version_dir(install_dir, version)
    makedirs(install_dir, 0o755)
    partial = tempfile.mkdtemp(prefix='.%s%s' % (version, _PARTIAL), dir=install_dir)
    try:
        engine = os.path.join(partial, ENGINE_DIR)
        os.mkdir(engine, 0o755)
        try:
            with zipfile.ZipFile(bundle) as archive:
                names = archive.namelist()
                bad = [n for n in names if not _ENGINE_FILE.match(n)]
                if bad or 'agent.py' not in names:
                    raise ESTError('invalid_input', 'the agent bundle %s is not an engine bundle (unexpected: %s)'
                                   % (bundle, ', '.join(bad[:5]) or 'no agent.py'))
                for name in names:
                    atomic_write(os.path.join(engine, name), archive.read(name), 0o644)
        except (zipfile.BadZipfile, OSError) as exc:
            raise ESTError('host_state', 'cannot unpack the agent bundle %s: %s' % (bundle, exc))
        atomic_write(os.path.join(partial, ENTRY_NAME), entry_script(python, version), 0o755)
        atomic_write(os.path.join(engine, COMPLETE), version + '\n', 0o644)
        os.chmod(partial, 0o755)
        if os.path.lexists(final):
            # An incomplete directory of this version (an install killed before the mark): replace it.
            shutil.rmtree(final)
        crash_point('rename', final)
        os.rename(partial, final)
    except OSError as exc:
        raise ESTError('host_state', 'cannot install the agent in %s: %s' % (install_dir, exc.strerror or exc))
    finally:
        if os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)
    return final


def point_link(bin_path, target):
    """Turn ``bin_path`` into a link to ``target`` in one rename."""
    makedirs(os.path.dirname(bin_path), 0o755)
    temp = '%s.new-%d' % (bin_path, os.getpid())
    try:
        if os.path.lexists(temp):
            os.unlink(temp)
        os.symlink(target, temp)
        crash_point('rename', bin_path)
        os.rename(temp, bin_path)
    except OSError as exc:
        raise ESTError('host_state', 'cannot point %s at %s: %s' % (bin_path, target, exc.strerror or exc))


def link_debris(bin_path):
    """Temporary links :func:`point_link` left when a process died between making and renaming one."""
    directory, base = os.path.split(bin_path)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names
            if n.startswith(base + '.new-') and n[len(base) + 5:].isdigit() and os.path.islink(os.path.join(directory, n))]


def leftovers(install_dir, version):
    """Other versions and debris of killed installs under ``install_dir``, by name (not the current version).

    Names alone decide, so that a version a killed removal left half deleted is still found.
    """
    try:
        names = sorted(os.listdir(install_dir))
    except OSError:
        return []
    return [os.path.join(install_dir, name) for name in names
            if name != version and (_VERSION_DIR.match(name) or (name.startswith('.') and _PARTIAL in name))]


def remove_tree(path):
    crash_point('remove', path)
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    except OSError as exc:
        raise ESTError('host_state', 'cannot remove %s: %s' % (path, exc.strerror or exc))


def systemd_units(unit_name, bin_path, config_path, on_calendar, randomized_delay):
    """``{file name: content}`` of the service and timer that run the agent."""
    if not _UNIT_NAME.match(unit_name or ''):
        raise ESTError('invalid_input', 'unit_name %r is not a systemd unit name' % (unit_name,))
    for name, value in (('on_calendar', on_calendar), ('bin_path', bin_path), ('config_path', config_path)):
        if not value or '\n' in value:
            raise ESTError('invalid_input', '%s must be one line, got %r' % (name, value))
    header = '# Installed by pki.est (est_agent module, est_renewal role).\n'
    service = (header + '[Unit]\nDescription=Renew EST certificates (pki-est-agent)\n'
               'Documentation=man:systemd.timer(5)\nWants=network-online.target\nAfter=network-online.target\n\n'
               '[Service]\nType=oneshot\nExecStart=%s --config %s\nSyslogIdentifier=pki-est-agent\n'
               % (_unit_quote(bin_path), _unit_quote(config_path)))
    timer = (header + '[Unit]\nDescription=Renew EST certificates (pki-est-agent timer)\n\n'
             '[Timer]\nOnCalendar=%s\nRandomizedDelaySec=%d\nPersistent=true\n\n'
             '[Install]\nWantedBy=timers.target\n' % (on_calendar, int(randomized_delay)))
    return {unit_name + '.service': service, unit_name + '.timer': timer}


def _unit_quote(path):
    if any(c.isspace() or c in '"\'\\%$;' for c in path):
        raise ESTError('invalid_input', 'the path %r cannot go into a systemd unit as it is (blanks or quotes)' % (path,))
    return path


def cron_entry(cron_file, minute, hour, bin_path, config_path, user='root'):
    """``(file name, content)`` of an /etc/cron.d file that runs the agent and sends its lines to syslog."""
    if not _CRON_FILE.match(cron_file or ''):
        raise ESTError('invalid_input', 'cron_file %r: cron only reads files named with letters, digits, - and _' % (cron_file,))
    for name, value in (('cron_minute', minute), ('cron_hour', hour)):
        if not re.match(r'^[0-9*/,-]+$', str(value)):
            raise ESTError('invalid_input', '%s %r is not a cron time field' % (name, value))
    for path in (bin_path, config_path):
        _unit_quote(path)
    return cron_file, ('# Installed by pki.est (est_agent module, est_renewal role).\n'
                       'SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
                       '%s %s * * * %s %s --config %s 2>&1 | logger -t pki-est-agent\n'
                       % (minute, hour, user, bin_path, config_path))


def makedirs(path, mode):
    """``path`` and its missing ancestors with ``mode`` (see :func:`.fileio.make_directories`)."""
    if path:
        make_directories(path, mode)
