"""A SoftHSM2 token in a temporary directory, for tests of token keys.

    from support.softhsm import softhsm_token, softhsm_available

    with softhsm_token(tmp_path) as token:
        token.module_path, token.label, token.pin, token.so_pin, token.env  # env: {'SOFTHSM2_CONF': ...}

The token directory and config live under the given directory; ``SOFTHSM2_CONF`` must be in the
environment of whatever loads the library (set ``os.environ`` for the test process, or pass
``token.env`` to a subprocess). SoftHSM2 reads its config when the library is initialised, so a
process that already loaded it sees a new token directory only after re-initialising the library
(``tokenkeys`` does that when a token is not found).
"""

import contextlib
import glob
import os
import shutil
import subprocess

MODULE_CANDIDATES = (
    '/usr/lib/softhsm/libsofthsm2.so',
    '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
    '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
    '/usr/local/lib/softhsm/libsofthsm2.so',
    '/usr/lib64/pkcs11/libsofthsm2.so',
    '/usr/lib/pkcs11/libsofthsm2.so',
)


def find_module():
    """The path of libsofthsm2.so, or None."""
    for path in MODULE_CANDIDATES:
        if os.path.isfile(path):
            return path
    for pattern in ('/usr/lib/*/softhsm/libsofthsm2.so', '/usr/lib*/softhsm/libsofthsm2.so', '/usr/**/libsofthsm2.so'):
        found = sorted(glob.glob(pattern, recursive=True))
        if found:
            return found[0]
    return None


def softhsm_available():
    """Whether SoftHSM2 is installed; with PKI_EST_REQUIRE_TPM=1 (make test, which installs it) always True, so that
    a test that would be skipped fails instead."""
    if os.environ.get('PKI_EST_REQUIRE_TPM', '') not in ('', '0'):
        return True
    return bool(shutil.which('softhsm2-util')) and find_module() is not None


class SoftHSMToken:
    def __init__(self, directory, label, pin, so_pin):
        self.directory = str(directory)
        self.label = label
        self.pin = pin
        self.so_pin = so_pin
        self.module_path = find_module()
        self.conf = os.path.join(self.directory, 'softhsm2.conf')
        self.tokendir = os.path.join(self.directory, 'tokens')
        self.env = {'SOFTHSM2_CONF': self.conf}

    def setup(self):
        os.makedirs(self.tokendir, exist_ok=True)
        with open(self.conf, 'w') as handle:
            handle.write('directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' % self.tokendir)
        self.init_token(self.label, self.pin, self.so_pin)

    def init_token(self, label, pin, so_pin):
        """Add another initialised token to this token directory."""
        env = dict(os.environ, **self.env)
        subprocess.run(['softhsm2-util', '--init-token', '--free', '--label', label, '--so-pin', so_pin, '--pin', pin],
                       env=env, check=True, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def softhsm_token(directory, label='pki-est-test', pin='1234-user', so_pin='5678-so'):
    """Yield a :class:`SoftHSMToken` with one initialised token; its files go with ``directory``."""
    token = SoftHSMToken(directory, label, pin, so_pin)
    token.setup()
    try:
        yield token
    finally:
        shutil.rmtree(token.tokendir, ignore_errors=True)
