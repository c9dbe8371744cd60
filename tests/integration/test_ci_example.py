# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/ci.md's job script, run as the doc shows it, against the lab EST server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from conftest import COLLECTIONS, ROOT

DOC = os.path.join(ROOT, 'docs', 'ci.md')
PASSWORD = 's3cret-Pa55'
CN = 'job-42.ci.example.com'


def _job_script():
    """The fenced block after the marker in docs/ci.md: the test runs what the doc says, not a copy."""
    with open(DOC, encoding='utf-8') as handle:
        text = handle.read()
    match = re.search(r'<!-- test_ci_example: job script -->\s*```bash\n(.*?)```', text, re.S)
    assert match, 'docs/ci.md lost its marked job script'
    return match.group(1)


def _run_job(lab, tmp_path, password, **overrides):
    if shutil.which('jq') is None:
        pytest.fail('jq is needed for the job script of docs/ci.md (the Makefile installs it)')
    work = tmp_path / 'job'
    work.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        EST_URL=lab.url, EST_CA_PATH=lab.ca_path, EST_USERNAME='alice', EST_PASSWORD=password, CERT_CN=CN,
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_NOCOLOR='1',
        ANSIBLE_HOME=str(tmp_path / 'ansible-home'), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-local'),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
    )
    env.update(overrides)
    # A CI runner runs the step with bash -e (GitLab and GitHub both do): so does the test.
    proc = subprocess.run(['bash', '-e', '-c', _job_script()], cwd=str(work), env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    result = work / 'enroll.json'
    facts = json.loads(result.read_text()) if result.exists() else None
    return proc, facts, work


def test_job_script_enrolls_and_reports_the_certificate(lab, tmp_path):
    proc, facts, work = _run_job(lab, tmp_path, PASSWORD)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert facts['failed'] is False and facts['action'] == 'enrolled' and facts['changed'] is True

    cert = x509.load_pem_x509_certificate((work / 'certs' / 'ci.crt').read_bytes())
    ca = x509.load_pem_x509_certificate(open(lab.ca_path, 'rb').read())
    cert.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key((work / 'certs' / 'ci.key').read_bytes(), None)
    assert key.public_key() == cert.public_key()
    assert stat.S_IMODE(os.stat(work / 'certs' / 'ci.key').st_mode) == 0o600
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CN
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [CN]

    # The facts the job reads describe the certificate on disk.
    assert facts['serial'] == '%X' % cert.serial_number
    assert facts['sha256_fingerprint'] == cert.fingerprint(hashes.SHA256()).hex()
    assert facts['certificate_path'] == str(work / 'certs' / 'ci.crt')
    assert facts['subject_alt_name'] == ['DNS:' + CN]
    assert facts['not_after'] == cert.not_valid_after_utc.strftime('%Y-%m-%dT%H:%M:%SZ')
    assert 'certificate %s for CN=%s, valid until %s (enrolled)' % (facts['serial'], CN, facts['not_after']) in proc.stdout
    assert [r['op'] for r in lab.requests()] == ['simpleenroll']
    assert PASSWORD not in proc.stdout + proc.stderr + (work / 'enroll.json').read_text()

    # A job that caches its certificate directory: the next run keeps the certificate and asks nothing.
    lab.clear_requests()
    again, facts, _output = _run_job(lab, tmp_path, PASSWORD)
    assert again.returncode == 0, again.stdout + again.stderr
    assert facts['action'] == 'none' and facts['changed'] is False and facts['serial'] == '%X' % cert.serial_number
    assert lab.requests() == []


def test_job_script_fails_the_job_on_a_wrong_password(lab, tmp_path):
    wrong = 'not-the-Pa55word'
    proc, facts, work = _run_job(lab, tmp_path, wrong)
    assert proc.returncode != 0
    assert facts == {'failed': True, 'error_kind': 'auth_required', 'msg': facts['msg'], 'task': 'Enroll the certificate'}
    assert 'HTTP 401' in facts['msg']
    assert 'enrollment failed: auth_required: ' in proc.stderr
    # The playbook itself failed (the script does not just trust the file), and the secret is nowhere.
    assert 'failed=1' in proc.stdout
    assert wrong not in proc.stdout + proc.stderr + (work / 'enroll.json').read_text()
    assert not (work / 'certs' / 'ci.crt').exists()
    assert [(r['op'], r['status']) for r in lab.requests()] == [('simpleenroll', 401)]

    # A job that forgot to set the server: invalid_input, and nothing is asked of any server.
    lab.clear_requests()
    proc, facts, work = _run_job(lab, tmp_path, PASSWORD, EST_URL='')
    assert proc.returncode != 0
    assert (facts['error_kind'], facts['task']) == ('invalid_input', 'Check what the job must provide')
    assert 'enrollment failed: invalid_input: set EST_URL and EST_CA_PATH' in proc.stderr
    assert lab.requests() == []
