# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module killed (SIGKILL) at every file step of an installation; the next run repairs the host.

The modules run as their own processes, as Ansible runs them, against the lab server over
TLS. A fault point in ``fileio`` (``PKI_EST_CRASH_AT=N``) kills the process at the Nth file
step: a temp file complete but not yet renamed, or a file about to be removed. A first run
with ``PKI_EST_CRASH_LOG`` lists the steps, so every one of them is hit, deterministically.
After each kill the same task runs again with the credentials the host normally has (a
renewing host: only its certificate) and must leave a matching, verified key and certificate
and nothing else beside them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import signal

import pytest
from support.modrun import run_module as _module

PASSWORD = 's3cret-Pa55'
FILES = ['chain.pem', 'fullchain.pem', 'host.crt', 'host.crt.est.json', 'host.key']


def _pair(work):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key((work / 'host.key').read_bytes(), None)
    cert = x509.load_pem_x509_certificate((work / 'host.crt').read_bytes())
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki), 'key and certificate differ'
    return cert


def _verify(work, lab):
    """The certificate chains through the chain file to the lab CA, and the full chain holds both."""
    from cryptography import x509
    cert = _pair(work)
    chain = x509.load_pem_x509_certificates((work / 'chain.pem').read_bytes())
    anchors = x509.load_pem_x509_certificates(open(lab.ca_path, 'rb').read())
    cert.verify_directly_issued_by(chain[0])
    assert any(chain[-1] == a or _issued(chain[-1], a) for a in anchors)
    assert x509.load_pem_x509_certificates((work / 'fullchain.pem').read_bytes())[0] == cert
    return cert


def _issued(cert, issuer):
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:  # pylint: disable=broad-except
        return False


# (module of the first enrollment, module of the task that is killed, its extra options, cert-only credentials)
SCENARIOS = {
    'est_enroll-renew': ('est_enroll', 'est_enroll', dict(force=True), True),
    'est_reenroll-rekey': ('est_enroll', 'est_reenroll', dict(force=True, rekey=True), True),
    'est_serverkeygen': ('est_serverkeygen', 'est_serverkeygen', dict(force=True), False),
    'est_fullcmc': ('est_fullcmc', 'est_fullcmc', dict(force=True), False),
}


@pytest.mark.parametrize('scenario', sorted(SCENARIOS))
def test_killed_at_every_install_step_the_next_run_repairs(lab, tmp_path, scenario):
    first_module, module, extra, cert_only = SCENARIOS[scenario]
    work = tmp_path / 'work'
    work.mkdir()
    files = dict(path=str(work / 'host.crt'), private_key_path=str(work / 'host.key'), chain_path=str(work / 'chain.pem'),
                 fullchain_path=str(work / 'fullchain.pem'))
    basic = dict(url=lab.url, ca_path=lab.ca_path, username='alice', password=PASSWORD)
    rc, out = _module(tmp_path, first_module, dict(basic, common_name='crash.example.test',
                                                   subject_alt_name=['DNS:crash.example.test'], **files))
    assert rc == 0 and out['action'] == 'enrolled', out
    old_cert = _verify(work, lab)
    saved = tmp_path / 'saved'
    shutil.copytree(str(work), str(saved))

    # A renewing host has only its certificate: the renewal tasks run without the password.
    conn = dict(url=lab.url, ca_path=lab.ca_path) if cert_only else basic
    task = dict(conn, **files)
    if module != 'est_reenroll':
        task.update(common_name='crash.example.test', subject_alt_name=['DNS:crash.example.test'])
    task.update(extra)

    log = tmp_path / 'steps.log'
    rc, out = _module(tmp_path, module, task, env={'PKI_EST_CRASH_LOG': str(log)})
    assert rc == 0 and out['action'] in ('renewed', 'rekeyed', 'enrolled'), out
    steps = log.read_text().splitlines()
    staged = [i for i, line in enumerate(steps, 1) if line.split()[1:] == ['rename', str(work / 'host.crt.pending.pem')]]
    assert len(steps) >= 5 and len(staged) == 1, steps
    commit = staged[0]
    done = [i for i, line in enumerate(steps, 1) if line.split()[1:] == ['remove', str(work / 'host.crt.pending.pem')]][0]

    outcomes = []
    for at in range(1, len(steps) + 1):
        shutil.rmtree(str(work))
        shutil.copytree(str(saved), str(work))
        rc, out = _module(tmp_path, module, task, env={'PKI_EST_CRASH_AT': str(at)})
        assert rc == -signal.SIGKILL, (at, steps[at - 1], rc, out)
        left = sorted(os.listdir(str(work)))
        # The same task again, with the same credentials: it repairs and then does its job.
        rc, out = _module(tmp_path, module, task)
        assert rc == 0 and not out.get('failed'), (at, steps[at - 1], left, out)
        assert sorted(os.listdir(str(work))) == FILES, (at, steps[at - 1], left)
        cert = _verify(work, lab)
        assert cert != old_cert
        if commit < at <= done:
            # The killed run had staged its verified pair: the next run installed it before anything else.
            assert any("interrupted run left a verified certificate" in r for r in out.get("repaired", [])), (at, steps, left, out)
        outcomes.append((steps[at - 1], left != FILES))
    # Every step was hit, and some kills did leave files behind for the next run to deal with.
    assert len(outcomes) == len(steps) and any(dirty for _step, dirty in outcomes)


def _unrelated_ca(path):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, 'Unrelated CA')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_failure_before_any_answer_changes_nothing(lab, tmp_path):
    """Unreachable server, wrong trust, empty trust file, http:// URL: nothing written, changed false."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'empty.pem').write_text('')
    files = dict(path=str(work / 'host.crt'), private_key_path=str(work / 'host.key'), common_name='x.example.test')
    cases = [
        dict(url=lab.url.replace('https://', 'http://'), ca_path=lab.ca_path),
        dict(url=lab.url, ca_path=str(work / 'empty.pem')),
        dict(url=lab.url, ca_path=_unrelated_ca(work / 'other-ca.pem')),  # the server's certificate does not verify
        dict(url='https://127.0.0.1:1', ca_path=lab.ca_path),
    ]
    for case in cases:
        rc, out = _module(tmp_path, 'est_enroll', dict(case, username='alice', password=PASSWORD, **files))
        assert out['failed'] and out['changed'] is False, (case, out)
        assert sorted(os.listdir(str(work))) == ['empty.pem', 'other-ca.pem'], (case, out)
