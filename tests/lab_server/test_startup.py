"""Start-up, ready file, persistence of the state directory, daemon mode."""

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lab_helpers import certs_from_body, enroll_cert, get, load_pem
from support.labserver import SERVER_PYTHONPATH, LabServer, LabServerError, lab_server


def der_sha256(path):
    return hashlib.sha256(load_pem(path).public_bytes(serialization.Encoding.DER)).hexdigest()


def test_ready_file_contents(server):
    ready = json.loads(server.ready_file.read_text())
    assert set(ready) == {"port", "url", "ca_path", "ca_fingerprint", "intermediate_path", "labels", "pid", "http_port", "crl_url",
                          "ocsp_url"}
    assert ready["crl_url"] == "http://127.0.0.1:%d/crl/default-ca.crl" % ready["http_port"]
    assert ready["ocsp_url"] == "http://127.0.0.1:%d/ocsp" % ready["http_port"]
    assert ready["url"] == "https://127.0.0.1:%d" % ready["port"]
    assert ready["pid"] == server.process.pid
    assert ready["ca_path"] == str(server.state_dir / "ca.pem")
    assert ready["ca_fingerprint"] == der_sha256(ready["ca_path"])
    assert len(ready["ca_fingerprint"]) == 64 and ready["ca_fingerprint"] == ready["ca_fingerprint"].lower()
    assert set(ready["labels"]) == {"iot", "web"}
    assert ready["intermediate_path"] in (None, str(server.state_dir / "intermediate.pem"))  # null until issuing_ca=intermediate
    for label, info in ready["labels"].items():
        assert info["ca_path"] == str(server.state_dir / "labels" / label / "ca.pem")
        assert info["ca_fingerprint"] == der_sha256(info["ca_path"])
        assert info["intermediate_path"] in (None, str(server.state_dir / "labels" / label / "intermediate.pem"))
    assert server.label_ca_path("iot") == ready["labels"]["iot"]["ca_path"]


def test_state_files_and_modes(server):
    for rel in ("ca.key", "server.key", "labels/iot/ca.key", "labels/web/ca.key"):
        assert stat.S_IMODE(os.stat(server.state_dir / rel).st_mode) == 0o600, rel
    ca_cert = load_pem(server.ca_path)
    assert isinstance(ca_cert.public_key(), ec.EllipticCurvePublicKey)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server_cert = load_pem(server.state_dir / "server.pem")
    server_cert.verify_directly_issued_by(ca_cert)
    san = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


def test_healthz_and_hostname_validation(server):
    assert requests.get(server.url + "/healthz", verify=server.ca_path, timeout=5).json() == {"status": "ok"}
    localhost = server.url.replace("127.0.0.1", "localhost")
    assert requests.get(localhost + "/healthz", verify=server.ca_path, timeout=5).status_code == 200


def test_restart_keeps_ca_and_port(tmp_path):
    with lab_server(tmp_path) as server:
        first_fingerprint, first_port = server.ca_fingerprint, server.port
        server.stop()
        assert not server.ready_file.exists()  # removed on a clean stop
        server.start()
        assert (server.ca_fingerprint, server.port) == (first_fingerprint, first_port)
        assert get(server, "cacerts").status_code == 200
    with lab_server(tmp_path) as again:  # a new process, new port, same state dir
        assert again.ca_fingerprint == first_fingerprint


def test_rsa_key_type(tmp_path):
    with lab_server(tmp_path, key_type="rsa", config={"users": {"a": "b"}}) as server:
        assert isinstance(load_pem(server.ca_path).public_key(), rsa.RSAPublicKey)
        cert = enroll_cert(server, auth=("a", "b"))[0]
        assert cert.signature_hash_algorithm.name == "sha256"


def test_bad_config_fails_with_log(tmp_path):
    with pytest.raises(LabServerError, match="cert_lifetime_days"):
        LabServer(tmp_path / "s", config={"cert_lifetime_days": "long"}).start()
    with pytest.raises(LabServerError, match="unknown configuration key"):
        LabServer(tmp_path / "s", config={"no_such_key": 1}).start()


def test_rollover_certificates_are_served_and_persisted(tmp_path):
    with lab_server(tmp_path, config={"rollover": True}) as server:
        certs = certs_from_body(get(server, "cacerts").content)
        old = load_pem(server.ca_path)
        assert len(certs) == 4 and old in certs  # a SET OF: the order is not kept
        (new_with_new,) = [c for c in certs if c != old and c.subject == c.issuer]
        (old_with_new,) = [c for c in certs if c.subject == old.subject and c.issuer == new_with_new.subject]
        (new_with_old,) = [c for c in certs if c.subject == new_with_new.subject and c.issuer == old.subject]
        new_with_new.verify_directly_issued_by(new_with_new)
        assert new_with_new.not_valid_after_utc > old.not_valid_after_utc
        assert old_with_new.public_key() == old.public_key()
        old_with_new.verify_directly_issued_by(new_with_new)
        assert new_with_old.public_key() == new_with_new.public_key()
        new_with_old.verify_directly_issued_by(old)
        server.stop()
        server.start()
        assert sorted(c.fingerprint(hashes.SHA256()) for c in certs_from_body(get(server, "cacerts").content)) == \
            sorted(c.fingerprint(hashes.SHA256()) for c in certs)


def run_cli(*args, timeout=30):
    env = dict(os.environ, PYTHONPATH=str(SERVER_PYTHONPATH))
    return subprocess.run([sys.executable, "-m", "estlab"] + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_daemon_start_and_stop(tmp_path):
    state = tmp_path / "state"
    pidfile, logfile = tmp_path / "estlab.pid", tmp_path / "estlab.log"
    started = run_cli("--state-dir", str(state), "--port", "0", "--daemon", "--pidfile", str(pidfile), "--logfile", str(logfile))
    try:
        assert started.returncode == 0, started.stderr
        assert "estlab started" in started.stdout
        ready = json.loads((state / "ready.json").read_text())
        assert int(pidfile.read_text()) == ready["pid"]
        response = requests.get(ready["url"] + "/healthz", verify=ready["ca_path"], timeout=5)
        assert response.json() == {"status": "ok"}
        status = run_cli("--state-dir", str(state), "--status", "--pidfile", str(pidfile)).stdout.strip()
        assert status == "running pid=%d" % ready["pid"]
    finally:
        stopped = run_cli("--state-dir", str(state), "--stop", "--pidfile", str(pidfile))
    assert stopped.stdout.strip() == "stopped"
    assert not pidfile.exists()
    assert "listening on" in logfile.read_text()
    assert run_cli("--state-dir", str(state), "--stop", "--pidfile", str(pidfile)).stdout.strip() == "not-running"
    assert run_cli("--state-dir", str(state), "--status", "--pidfile", str(pidfile)).stdout.strip() == "not-running"


def test_daemon_reports_failure(tmp_path):
    with lab_server(tmp_path) as server:  # the port is taken
        result = run_cli("--state-dir", str(tmp_path / "other"), "--port", str(server.port), "--daemon",
                         "--pidfile", str(tmp_path / "p"), "--logfile", str(tmp_path / "l"))
    assert result.returncode == 1
    assert "failed to start" in result.stderr
