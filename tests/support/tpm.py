# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An emulated TPM 2.0 behind PKCS#11 (tpm2-pkcs11), started and stopped by the test.

    from support.tpm import emulated_tpm            # tests/integration (conftest puts tests/ on sys.path)
    from ansible_collections.pki.est.tests.support.tpm import emulated_tpm   # tests/unit

    def test_something(tmp_path):
        with emulated_tpm(tmp_path) as tpm:
            env = dict(os.environ, **tpm.env)       # what a module process needs
            ... pkcs11 module_path=tpm.module_path, token_label=tpm.token_label, pin=tpm.pin ...

Or the fixtures: importing ``tpm_token`` (one TPM per test) or ``tpm_token_session`` (one per
pytest process, i.e. per xdist worker) into a test module or conftest makes them available:

    from support.tpm import tpm_token  # noqa: F401  pylint: disable=unused-import

    def test_other(tpm_token):
        with tpm_token.pkcs11() as lib:             # python-pkcs11, loaded with tpm_token.env
            token = lib.get_token(token_label=tpm_token.token_label)

What runs, each in its own process group, all killed on exit:
  swtpm socket --tpm2 (TCP on 127.0.0.1:P, control channel P+1, state in <tmp>/tpm/state),
  a private dbus-daemon (session type, own config: no service activation, socket in a short
  /tmp directory because tmp_path can be longer than a unix socket path may be),
  tpm2-abrmd --session --allow-root --tcti=swtpm:host=127.0.0.1,port=P
  (without a resource manager the TPM runs out of object slots; tpm2_ptool needs it too).
The tpm2-pkcs11 store (<tmp>/tpm/store) gets a primary object (``tpm2_ptool init``) and one
token (``tpm2_ptool addtoken``).  Logs: <tmp>/tpm/*.log.  Later TPMs in the same pytest process
with the same label/PINs start from a copy of that fresh state and store (``use_template``).

Wrong PINs: tpm2-pkcs11 checks a PIN by a TPM unseal, so each wrong PIN is a TPM authorization
failure; after 3 swtpm is locked out (CKR_PIN_LOCKED for every token, right PIN included).  The
fixture raises the limit to 1000 (``da_max_tries``; None keeps 3); ``tpm.clear_lockout()``.

Missing binaries or library: pytest.skip, unless PKI_EST_REQUIRE_TPM=1 (then fail), so that a
CI run where the packages did not install does not pass silently.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import glob
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
TCTI = 'tabrmd:bus_type=session'
TABRMD_BUS_NAME = 'com.intel.tss2.Tabrmd'

# program -> Debian package (for the skip message)
PROGRAMS = {
    'swtpm': 'swtpm',
    'dbus-daemon': 'dbus-daemon',
    'tpm2-abrmd': 'tpm2-abrmd',
    'tpm2_ptool': 'libtpm2-pkcs11-tools',
    'tpm2_getrandom': 'tpm2-tools',
}
# Debian installs tpm2-abrmd in /usr/sbin, which a non-login PATH may lack.
EXTRA_PATH = ('/usr/sbin', '/sbin', '/usr/local/sbin')

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


# (token_label, pin, so_pin, da_max_tries) -> directory with state/ and store/ of a freshly set-up TPM,
# saved by the first start in this process (under its tmp_path) and copied by the next ones.
_TEMPLATES = {}


class TPMError(RuntimeError):
    """The emulated TPM did not start; the message carries the logs."""


def _which(program):
    path = os.environ.get('PATH', '') + os.pathsep + os.pathsep.join(EXTRA_PATH)
    return shutil.which(program, path=path)


def find_module_path():
    """Path of libtpm2_pkcs11.so, or None.  TPM2_PKCS11_MODULE in the environment wins."""
    override = os.environ.get('TPM2_PKCS11_MODULE')
    if override:
        return override if os.path.isfile(override) else None
    patterns = [
        # Debian/Ubuntu multiarch; the pkcs11/ one is what p11-kit and the package ship unversioned
        '/usr/lib/*/pkcs11/libtpm2_pkcs11.so',
        '/usr/lib/*/libtpm2_pkcs11.so',
        '/usr/lib/*/libtpm2_pkcs11.so.1',
        # Fedora/RHEL, Arch, source installs
        '/usr/lib64/pkcs11/libtpm2_pkcs11.so', '/usr/lib64/libtpm2_pkcs11.so*',
        '/usr/lib/pkcs11/libtpm2_pkcs11.so', '/usr/lib/libtpm2_pkcs11.so*',
        '/usr/local/lib/libtpm2_pkcs11.so*', '/usr/local/lib/*/libtpm2_pkcs11.so*',
    ]
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path):
                return path
    try:  # last resort: the dynamic linker cache
        out = subprocess.run(['ldconfig', '-p'], capture_output=True, text=True, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if 'libtpm2_pkcs11.so' in line and '=>' in line:
            path = line.split('=>', 1)[1].strip()
            if os.path.isfile(path):
                return path
    return None


def missing():
    """What is missing to run an emulated TPM, as 'program (package)' strings; [] when all is there."""
    lacking = ['%s (%s)' % (prog, pkg) for prog, pkg in sorted(PROGRAMS.items()) if not _which(prog)]
    if find_module_path() is None:
        lacking.append('libtpm2_pkcs11.so (libtpm2-pkcs11-1)')
    if not glob.glob('/usr/lib/*/libtss2-tcti-tabrmd.so*') + glob.glob('/usr/lib*/libtss2-tcti-tabrmd.so*'):
        if not _ldconfig_has('libtss2-tcti-tabrmd.so'):
            lacking.append('libtss2-tcti-tabrmd.so (libtss2-tcti-tabrmd0)')
    if not glob.glob('/usr/lib/*/libtss2-tcti-swtpm.so*') + glob.glob('/usr/lib*/libtss2-tcti-swtpm.so*'):
        if not _ldconfig_has('libtss2-tcti-swtpm.so'):
            lacking.append('libtss2-tcti-swtpm.so (libtss2-tcti-swtpm0)')
    return lacking


def _ldconfig_has(name):
    try:
        return name in subprocess.run(['ldconfig', '-p'], capture_output=True, text=True, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False


def require():
    """pytest.skip (or fail with PKI_EST_REQUIRE_TPM=1) when the emulated TPM cannot run here."""
    lacking = missing()
    if lacking:
        message = 'emulated TPM not available, missing: ' + ', '.join(lacking)
        if os.environ.get('PKI_EST_REQUIRE_TPM', '') not in ('', '0'):
            pytest.fail(message)
        pytest.skip(message)


def _port_pair():
    """A free port P on 127.0.0.1 with P+1 free too (swtpm's TCTI takes the control port as P+1)."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first:
            first.bind(('127.0.0.1', 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second:
                try:
                    second.bind(('127.0.0.1', port + 1))
                except OSError:
                    continue
                return port
    raise TPMError('no two adjacent free TCP ports on 127.0.0.1')


def _connectable(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


class EmulatedTPM:
    """A running swtpm + dbus-daemon + tpm2-abrmd and a tpm2-pkcs11 store with one token.

    Attributes: module_path, token_label, pin, so_pin, store_dir, state_dir, log_dir, port
    (swtpm; control port is port+1), dbus_address, tcti, env (the variables a process using the
    token needs), timings (seconds per start phase).
    """

    def __init__(self, base_dir, token_label='pki-est-tpm', pin='1234-user', so_pin='5678-so', da_max_tries=1000,
                 use_template=True):
        self.da_max_tries = da_max_tries
        self.use_template = use_template
        self.base_dir = pathlib.Path(base_dir)
        self.state_dir = self.base_dir / 'state'
        self.store_dir = self.base_dir / 'store'
        self.log_dir = self.base_dir
        self.token_label = token_label
        self.pin = pin
        self.so_pin = so_pin
        self.module_path = None
        self.port = None
        self.dbus_address = None
        self.tcti = TCTI
        self.timings = {}
        self._procs = {}   # name -> Popen, in start order
        self._logs = []
        self._dbus_dir = None

    # -- environment ---------------------------------------------------------

    @property
    def env(self):
        """Variables for any process that talks to the token (module, tpm2_ptool, tpm2-tools)."""
        return {
            'TPM2_PKCS11_STORE': str(self.store_dir),
            'TPM2_PKCS11_TCTI': self.tcti,
            'TPM2TOOLS_TCTI': self.tcti,
            'TSS2_TCTI': self.tcti,
            'DBUS_SESSION_BUS_ADDRESS': self.dbus_address,
            'TSS2_LOG': 'all+NONE',           # tpm2-tss: no "WARNING:esys..." lines on stderr
            'TPM2_PKCS11_LOG_LEVEL': '0',     # tpm2-pkcs11: errors only
        }

    def full_env(self, base=None):
        """``base`` (default os.environ) updated with :attr:`env`, PATH extended with /usr/sbin."""
        env = dict(os.environ if base is None else base)
        env.update((key, value) for key, value in self.env.items() if value is not None)
        env['PATH'] = os.pathsep.join([env.get('PATH', '')] + list(EXTRA_PATH))
        return env

    def run(self, argv, check=True, timeout=60):
        """Run a command (e.g. tpm2-tools) against this TPM; returns CompletedProcess (text)."""
        proc = subprocess.run(argv, env=self.full_env(), capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise TPMError('%s failed (rc=%d):\n%s%s' % (' '.join(argv), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def ptool(self, *args, **kwargs):
        """``tpm2_ptool ARGS`` against this store, e.g. ptool('addkey', '--label=...', '--algorithm=ecc256', ...)."""
        return self.run([_which('tpm2_ptool') or 'tpm2_ptool'] + list(args), **kwargs)

    def set_lockout(self, max_tries, recovery_time=0):
        """TPM dictionary-attack parameters, and clear a lockout.

        tpm2-pkcs11 checks a PIN by unsealing with it, so a wrong PIN counts as a TPM authorization
        failure: with swtpm's defaults (3 tries) after the third wrong PIN every key of every token is locked
        (CKR_PIN_LOCKED) until the lockout is cleared.  The fixture sets max_tries (1000) by default.
        """
        self.run([_which('tpm2_dictionarylockout') or 'tpm2_dictionarylockout', '--setup-parameters',
                  '--max-tries=%d' % max_tries, '--recovery-time=%d' % recovery_time, '--lockout-recovery-time=0',
                  '--clear-lockout'])

    def clear_lockout(self):
        self.run([_which('tpm2_dictionarylockout') or 'tpm2_dictionarylockout', '--clear-lockout'])

    def add_token(self, label, pin, so_pin, pid=1):
        """A further token in the same store (same primary object)."""
        self.ptool('addtoken', '--pid=%d' % pid, '--label=%s' % label, '--sopin=%s' % so_pin, '--userpin=%s' % pin)

    @contextlib.contextmanager
    def pkcs11(self):
        """python-pkcs11 ``lib`` loaded in this process with :attr:`env`; finalized and env restored on exit.

        tpm2-pkcs11 reads its environment in C_Initialize, so os.environ is patched around it.
        """
        import pkcs11  # pylint: disable=import-outside-toplevel
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update((key, value) for key, value in self.env.items() if value is not None)
        lib = None
        try:
            lib = pkcs11.lib(self.module_path)   # C_Initialize
            yield lib
        finally:
            if lib is not None:
                try:
                    lib.finalize()
                except Exception:  # pylint: disable=broad-except
                    pass
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def logs(self):
        text = []
        for path in sorted(self.log_dir.glob('*.log')):
            try:
                text.append('--- %s\n%s' % (path.name, path.read_text(errors='replace')[-4000:]))
            except OSError:
                pass
        return '\n'.join(text)

    # -- start ---------------------------------------------------------------

    def start(self):
        lacking = missing()
        if lacking:
            raise TPMError('missing: ' + ', '.join(lacking))
        self.module_path = find_module_path()
        total = time.monotonic()
        key = (self.token_label, self.pin, self.so_pin, self.da_max_tries)
        template = _TEMPLATES.get(key) if self.use_template else None
        if template and not all(os.path.isdir(os.path.join(template, part)) for part in ('state', 'store')):
            template = None
        try:
            if template:  # the same TPM state and store as a fresh one, without 2 s of tpm2_ptool
                self._phase('copy_template', lambda: self._copy_from(template))
            else:
                self.state_dir.mkdir(parents=True, exist_ok=True)
                self.store_dir.mkdir(parents=True, exist_ok=True)
            self._phase('swtpm', self._start_swtpm)
            self._phase('dbus', self._start_dbus)
            self._phase('abrmd', self._start_abrmd)
            if not template:
                if self.da_max_tries:
                    self._phase('da_lockout', lambda: self.set_lockout(self.da_max_tries))
                self._phase('ptool_init', lambda: self.ptool('init'))
                self._phase('ptool_addtoken', lambda: self.add_token(self.token_label, self.pin, self.so_pin))
                if self.use_template:
                    self._phase('save_template', lambda: self._save_template(key))
        except BaseException:
            self.stop()
            raise
        self.timings['total'] = round(time.monotonic() - total, 3)
        return self

    def _copy_from(self, template):
        self.base_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(os.path.join(template, 'state'), str(self.state_dir))
        shutil.copytree(os.path.join(template, 'store'), str(self.store_dir))

    def _save_template(self, key):
        # swtpm writes NV (persistent primary key, DA parameters) to tpm2-00.permall at once, and
        # nothing writes the store between tpm2_ptool runs: a copy now is a consistent snapshot.
        target = self.base_dir / 'template'
        shutil.copytree(str(self.state_dir), str(target / 'state'))
        shutil.copytree(str(self.store_dir), str(target / 'store'))
        _TEMPLATES[key] = str(target)

    def _phase(self, name, func):
        began = time.monotonic()
        func()
        self.timings[name] = round(time.monotonic() - began, 3)

    def _spawn(self, name, argv, **kwargs):
        log = open(self.log_dir / ('%s.log' % name), 'ab')  # pylint: disable=consider-using-with
        self._logs.append(log)
        kwargs.setdefault('stdout', log)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=log, env=self.full_env(),  # pylint: disable=consider-using-with
                                start_new_session=True, **kwargs)
        self._procs[name] = proc
        return proc

    def _fail(self, message):
        raise TPMError('%s\n%s' % (message, self.logs()))

    def _start_swtpm(self):
        for _attempt in range(5):  # another process may take the ports between the probe and swtpm's bind
            port = _port_pair()
            proc = self._spawn('swtpm', [
                _which('swtpm'), 'socket', '--tpm2',
                '--server', 'type=tcp,port=%d,bindaddr=127.0.0.1' % port,
                '--ctrl', 'type=tcp,port=%d,bindaddr=127.0.0.1' % (port + 1),
                '--tpmstate', 'dir=%s' % self.state_dir,
                '--flags', 'not-need-init,startup-clear'])
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                if _connectable(port) and _connectable(port + 1):
                    break
                time.sleep(0.02)
            time.sleep(0.02)  # a swtpm that lost the bind race exits at once: do not take the other listener for it
            if proc.poll() is None and _connectable(port):
                self.port = port
                return
            self._kill('swtpm')
        self._fail('swtpm did not start')

    def _start_dbus(self):
        # unix socket paths are limited to 107 bytes: keep it out of tmp_path
        self._dbus_dir = tempfile.mkdtemp(prefix='pki-est-dbus-')
        config = os.path.join(self._dbus_dir, 'bus.conf')
        with open(config, 'w') as handle:
            handle.write(DBUS_CONFIG % os.path.join(self._dbus_dir, 'bus'))
        read_end, write_end = os.pipe()
        try:
            proc = self._spawn('dbus', [_which('dbus-daemon'), '--config-file=%s' % config, '--nofork', '--nosyslog',
                                        '--print-address=%d' % write_end], pass_fds=(write_end,))
            os.close(write_end)
            write_end = None
            address = b''
            deadline = time.monotonic() + START_TIMEOUT
            while not address.endswith(b'\n') and time.monotonic() < deadline:
                ready, _w, _x = select.select([read_end], [], [], 0.2)
                if ready:
                    chunk = os.read(read_end, 4096)
                    if not chunk:
                        break
                    address += chunk
                elif proc.poll() is not None:
                    break
        finally:
            os.close(read_end)
            if write_end is not None:
                os.close(write_end)
        if not address.strip():
            self._fail('dbus-daemon gave no address')
        self.dbus_address = address.decode().strip()

    def _start_abrmd(self):
        proc = self._spawn('abrmd', [_which('tpm2-abrmd'), '--session', '--allow-root', '--logger=stdout',
                                     '--tcti=swtpm:host=127.0.0.1,port=%d' % self.port])
        getrandom = _which('tpm2_getrandom')
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._fail('tpm2-abrmd exited with %s' % proc.returncode)
            last = self.run([getrandom, '--hex', '8'], check=False, timeout=10)
            if last.returncode == 0:
                return
            time.sleep(0.05)
        self._fail('tpm2-abrmd not ready after %.0f s; tpm2_getrandom said:\n%s' % (START_TIMEOUT, last and last.stderr))

    # -- stop ----------------------------------------------------------------

    def _kill(self, name):
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # leftovers of the group, if the leader exited first
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self):
        """Stop abrmd, dbus-daemon and swtpm (reverse start order); remove the bus directory."""
        for name in reversed(list(self._procs)):
            self._kill(name)
        for log in self._logs:
            log.close()
        self._logs = []
        if self._dbus_dir:
            shutil.rmtree(self._dbus_dir, ignore_errors=True)
            self._dbus_dir = None

    @property
    def running(self):
        return bool(self._procs) and all(proc.poll() is None for proc in self._procs.values())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


@contextlib.contextmanager
def emulated_tpm(tmp_path, token_label='pki-est-tpm', pin='1234-user', so_pin='5678-so', da_max_tries=1000,
                 skip_if_missing=True, use_template=True):
    """Start an emulated TPM with a tpm2-pkcs11 token under ``tmp_path/tpm``; yield :class:`EmulatedTPM`; stop it.

    ``da_max_tries=None`` keeps the TPM's own dictionary-attack limit (3 wrong PINs lock it).
    ``use_template``: the first start in this process with the same label/PINs saves the fresh TPM
    state and store; later starts copy them instead of running tpm2_ptool (about 0.3 s instead of
    2.5 s).  The TPM seeds are then the same in those TPMs; False for a TPM of its own.
    """
    if skip_if_missing:
        require()
    tpm = EmulatedTPM(pathlib.Path(tmp_path) / 'tpm', token_label=token_label, pin=pin, so_pin=so_pin,
                      da_max_tries=da_max_tries, use_template=use_template)
    try:
        tpm.start()
        yield tpm
    finally:
        tpm.stop()


@pytest.fixture
def tpm_token(tmp_path):
    """One emulated TPM + token per test (2-3 s for the first in a process, then about 0.3 s)."""
    with emulated_tpm(tmp_path) as tpm:
        yield tpm


@pytest.fixture(scope='session')
def tpm_token_session(tmp_path_factory):
    """One emulated TPM + token per pytest process (per xdist worker); tests must not depend on its key set."""
    with emulated_tpm(tmp_path_factory.mktemp('tpm-session')) as tpm:
        yield tpm
