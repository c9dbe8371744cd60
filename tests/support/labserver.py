"""Start and drive the lab EST server (roles/est_lab_server/files/estlab) from tests.

    from support.labserver import lab_server

    def test_something(tmp_path):
        with lab_server(tmp_path, config={"users": {"alice": "secret"}}) as server:
            requests.get(server.url + "/.well-known/est/cacerts", verify=server.ca_path)

The server runs as a subprocess (``sys.executable -m estlab``) on 127.0.0.1 with
a free port.  Every HTTP call made here passes ``verify=`` explicitly so that a
REQUESTS_CA_BUNDLE in the environment does not decide which CA is trusted.

Pending mode: with ``{"pending": {"after_polls": N}}`` the first N requests for a
key get 202 and the next one the certificate; with ``{"after_seconds": N}``
requests get 202 until N seconds after the key was first seen.

/serverkeygen and /fullcmc are served too; their answer forms can be varied for
client tolerance tests with ``set_config(serverkeygen_order=..., serverkeygen_eol=...,
serverkeygen_key_format=..., serverkeygen_cte=..., serverkeygen_encrypted_content=...,
fullcmc_response=..., fullcmc_pending=..., fullcmc_fail_status=...)`` and faulted with
``set_fault("serverkeygen"|"fullcmc", ...)`` (fullcmc also takes "bad_signature" and
"wrong_nonce").  /csrattrs also takes the RFC 9908 template form
``set_config(csrattrs={"template": {...}, "attributes": [...]})``.  See the role README.

Throttle: with ``{"throttle": {"max_in_flight": N, "per_second": R, "retry_after": S, "status": 503}}`` (at
start or through set_config) EST requests beyond it get 503 (or 429) with Retry-After; ``throttle_stats()``
counts admitted and refused ones, and refused ones are in ``requests()`` with fault "throttled".

Intermediate CA: with ``{"issuing_ca": "intermediate"}`` (at start or through
set_config) certificates are issued by a subordinate CA of the root;
``intermediate_path`` / ``label_intermediate_path(label)`` name its PEM file, to be
handed to a client out of band when ``{"cacerts_omit_intermediate": true}`` leaves
it out of /cacerts and the enrollment answers.

Revocation: issued certificates name the lab's CRL (``crl_url`` for the default CA)
and OCSP responder (``ocsp_url``), served over plain HTTP on a port of their own;
``revoke(serial, reason)`` revokes one (its CRL is re-issued) and
``set_revocation_fault("crl"|"ocsp", "down"|"bad_signature"|"stale", count)`` breaks them.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import requests

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER_PYTHONPATH = REPO_ROOT / "roles" / "est_lab_server" / "files"
START_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0


class LabServerError(RuntimeError):
    """The lab server did not start (the message includes its log) or a lab call failed."""


class LabServer:
    """A lab EST server process bound to one state directory."""

    def __init__(self, state_dir, config=None, key_type="ec", port=0, extra_args=()):
        self.state_dir = pathlib.Path(state_dir)
        self.config = dict(config or {})
        self.key_type = key_type
        self.port = port
        self.http_port = 0
        self.extra_args = list(extra_args)
        self.url = None
        self.ca_path = None
        self.ca_fingerprint = None
        self.ready = {}
        self.process = None
        self._log = None

    # -- paths ---------------------------------------------------------------

    @property
    def ready_file(self):
        return self.state_dir / "ready.json"

    @property
    def config_file(self):
        return self.state_dir / "estlab-config.json"

    @property
    def log_file(self):
        return self.state_dir / "estlab-test.log"

    def label_ca_path(self, label):
        labels = self.ready.get("labels", {})
        if label in labels:
            return labels[label]["ca_path"]
        return str(self.state_dir / "labels" / label / "ca.pem")

    def label_ca_fingerprint(self, label):
        return self.ready["labels"][label]["ca_fingerprint"]

    @property
    def intermediate_path(self):
        """PEM of the default CA's intermediate, STATE_DIR/intermediate.pem (it exists once issuing_ca was "intermediate")."""
        return self.ready.get("intermediate_path") or str(self.state_dir / "intermediate.pem")

    def label_intermediate_path(self, label):
        """PEM of the intermediate of a label's CA, STATE_DIR/labels/<label>/intermediate.pem."""
        path = self.ready.get("labels", {}).get(label, {}).get("intermediate_path")
        return path or str(self.state_dir / "labels" / label / "intermediate.pem")

    def est_url(self, op, label=None):
        """https://127.0.0.1:PORT/.well-known/est/[label/]op"""
        middle = "%s/" % label if label else ""
        return "%s/.well-known/est/%s%s" % (self.url, middle, op)

    def log(self):
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # -- process -------------------------------------------------------------

    def start(self):
        """Start (or restart) the server on the same port and state directory."""
        if self.running:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(self.config), encoding="utf-8")
        try:
            self.ready_file.unlink()
        except FileNotFoundError:
            pass
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SERVER_PYTHONPATH), env.get("PYTHONPATH")) if p)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep __pycache__ out of the role's files/
        command = [sys.executable, "-m", "estlab", "--state-dir", str(self.state_dir), "--bind", "127.0.0.1",
                   "--port", str(self.port), "--http-port", str(self.http_port), "--config", str(self.config_file), "--ready-file", str(self.ready_file),
                   "--key-type", self.key_type] + self.extra_args
        self._log = open(self.log_file, "ab")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                raise LabServerError("lab server exited with %s before it was ready:\n%s" % (self.process.returncode, self.log()))
            try:
                ready = json.loads(self.ready_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                ready = None
            if ready and ready.get("pid") == self.process.pid:
                self.ready = ready
                self.port = ready["port"]
                self.http_port = ready["http_port"]
                self.url = ready["url"]
                self.ca_path = ready["ca_path"]
                self.ca_fingerprint = ready["ca_fingerprint"]
                return
            time.sleep(0.05)
        self._kill()
        raise LabServerError("lab server not ready after %.0f s:\n%s" % (START_TIMEOUT, self.log()))

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """SIGTERM and wait (SIGKILL after 10 s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        self._close_log()

    def _kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    # -- lab API -------------------------------------------------------------

    def _call(self, method, path, payload=None):
        response = requests.request(method, self.url + path, json=payload, verify=self.ca_path, timeout=HTTP_TIMEOUT)
        if response.status_code != 200:
            raise LabServerError("%s %s -> %d %s" % (method, path, response.status_code, response.text.strip()))
        return response.json()

    def healthz(self):
        return self._call("GET", "/healthz")

    def requests(self):
        """EST requests seen since start or the last clear_requests()."""
        return self._call("GET", "/lab/requests")

    def clear_requests(self):
        self._call("DELETE", "/lab/requests")

    def get_config(self):
        return self._call("GET", "/lab/config")

    def set_config(self, **changes):
        """Merge changes into the running configuration (top-level keys replace)."""
        new = self._call("POST", "/lab/config", changes)
        self.config.update(changes)
        if "labels" in changes or "issuing_ca" in changes:  # the server rewrote its ready file
            self.ready = json.loads(self.ready_file.read_text(encoding="utf-8"))
        return new

    def set_fault(self, op, fault, count=None):
        self._call("POST", "/lab/faults", {"op": op, "fault": fault, "count": count})

    def clear_faults(self):
        self._call("DELETE", "/lab/faults")

    def pending(self):
        """Pending-approval table: {sha256 of SPKI: {"first_seen", "requests"}}."""
        return self._call("GET", "/lab/pending")

    def clear_pending(self):
        self._call("DELETE", "/lab/pending")

    def throttle_stats(self):
        """{"admitted", "refused", "peak_in_flight", "in_flight"} of the throttle (config key "throttle")."""
        return self._call("GET", "/lab/throttle")

    def clear_throttle_stats(self):
        return self._call("DELETE", "/lab/throttle")

    @property
    def crl_url(self):
        """http://127.0.0.1:HTTP_PORT/crl/default-ca.crl: the CRL of the default CA (the root, not an intermediate)."""
        return self.ready["crl_url"]

    @property
    def ocsp_url(self):
        return self.ready["ocsp_url"]

    def revoke(self, serial, reason="unspecified"):
        """Revoke the certificate with this serial (int or "0x.." hex); returns {"serial", "issuer", "revocation_time", "reason"}."""
        return self._call("POST", "/lab/revoke", {"serial": serial, "reason": reason})

    def revocation(self):
        """{"revoked": {issuer: {serial: {"time", "reason"}}}, "faults": ..., "crl_url", "ocsp_url"}."""
        return self._call("GET", "/lab/revocation")

    def set_revocation_fault(self, target, fault, count=None):
        """Break the next count (None: all) answers of target "crl" or "ocsp": "down", "bad_signature", "stale"; fault None clears."""
        self._call("POST", "/lab/revocation/faults", {"target": target, "fault": fault, "count": count})


def start_lab_server(state_dir, config=None, key_type="ec"):
    """Start a lab server on a free port; raise LabServerError (with its log) if it is not ready in 20 s."""
    server = LabServer(state_dir, config=config, key_type=key_type)
    server.start()
    return server


@contextlib.contextmanager
def lab_server(tmp_path, config=None, **kw):
    """Context manager: a running LabServer with state in tmp_path/estlab-state, stopped on exit."""
    server = LabServer(pathlib.Path(tmp_path) / "estlab-state", config=config, **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()
