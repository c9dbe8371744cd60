"""Revocation: a CRL per issuing CA and an OCSP responder (RFC 5280 5, RFC 6960), over plain HTTP.

Certificates the lab issues name ``http://HOST:HTTP_PORT/crl/<issuer>.crl`` in their CRL
distribution points and ``http://HOST:HTTP_PORT/ocsp`` in their authority information
access, once the HTTP listener (``http_server``) runs.  ``<issuer>`` is
``<label or "default">-<"ca" or "intermediate">``: the CA that signed the certificate signs
its CRL and its OCSP answers (no delegated responder).

What was issued and what was revoked is kept in STATE_DIR/revocation.json, so a restarted
server still knows them.  POST /lab/revoke revokes one certificate and re-issues its CRL.

Faults (POST /lab/revocation/faults, for the next N requests or until cleared), per
target ``crl`` or ``ocsp``: ``down`` (the connection is closed without an answer),
``bad_signature`` (signed by a key that is not the CA's, under the CA's name), ``stale``
(thisUpdate two days and nextUpdate one day in the past).
"""

import base64
import datetime
import json
import logging
import os
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from .ca import signing_hash, utcnow, write_file

log = logging.getLogger("estlab")

CRL_VALIDITY = datetime.timedelta(hours=1)
OCSP_VALIDITY = datetime.timedelta(minutes=10)
STALE_BY = datetime.timedelta(days=1)
MAX_OCSP_REQUEST = 16384
TARGETS = ("crl", "ocsp")
FAULTS = ("down", "bad_signature", "stale")
# RFC 5280 5.3.1 reason names as cryptography spells them (ReasonFlags values).
REASONS = tuple(flag.value for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl)


class RevocationError(ValueError):
    """A revocation request cannot be carried out (the message says why)."""


def issuer_id(ca):
    return "%s-%s" % (ca.label or "default", ca.stem)


def _der_item(data, offset):
    """(start of contents, end) of the DER element at offset (definite lengths only)."""
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    return start, start + length


def _key_hash(cert, algorithm):
    """RFC 6960 4.1.1 issuerKeyHash: the hash of the subjectPublicKey BIT STRING value (no tag, length, unused-bits octet)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    inner, _end = _der_item(spki, 0)
    _algorithm, after_algorithm = _der_item(spki, inner)
    bits_start, bits_end = _der_item(spki, after_algorithm)
    digest = hashes.Hash(algorithm)
    digest.update(spki[bits_start + 1:bits_end])
    return digest.finalize()


class Revocations:
    """Issued serials, revocations, CRLs and faults of one server (thread safe)."""

    def __init__(self, state):
        self._state = state
        self._path = os.path.join(state.state_dir, "revocation.json")
        self._lock = threading.Lock()
        self._faults = {}
        self._crls = {}
        self.base_url = None  # http://host:port of the listener, None while there is none
        self._data = {"issued": {}, "revoked": {}, "crl_number": {}}
        try:
            with open(self._path, encoding="utf-8") as handle:
                loaded = json.load(handle)
            for key in self._data:
                self._data[key].update(loaded.get(key) or {})
        except (OSError, ValueError, AttributeError):
            pass

    # -- what goes into certificates -------------------------------------------------------

    def crl_url(self, ca):
        return "%s/crl/%s.crl" % (self.base_url, issuer_id(ca)) if self.base_url else None

    def ocsp_url(self):
        return "%s/ocsp" % self.base_url if self.base_url else None

    def extensions(self, ca):
        """(extension value, critical) pairs for a certificate ca issues: CRL DP and AIA OCSP, when served."""
        if not self.base_url:
            return []
        crl_dp = x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(self.crl_url(ca))], relative_name=None, reasons=None, crl_issuer=None)])
        aia = x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(self.ocsp_url()))])
        return [(crl_dp, False), (aia, False)]

    def record(self, ca, cert):
        """Remember that ca issued cert (OCSP answers "unknown" for serials it did not issue)."""
        with self._lock:
            self._data["issued"].setdefault(issuer_id(ca), {})[str(cert.serial_number)] = cert.not_valid_after_utc.isoformat()
            self._save()

    def _save(self):
        write_file(self._path, (json.dumps(self._data, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o644)

    # -- revoking --------------------------------------------------------------------------

    def revoke(self, serial, reason="unspecified"):
        """Revoke the certificate with this serial (int, or hex string with an 0x prefix); its CRL is re-issued."""
        if reason not in REASONS:
            raise RevocationError("reason must be one of %s" % ", ".join(REASONS))
        serial = _serial(serial)
        with self._lock:
            owner = next((issuer for issuer, serials in self._data["issued"].items() if str(serial) in serials), None)
            if owner is None:
                raise RevocationError("no certificate with serial %d was issued here" % serial)
            entry = self._data["revoked"].setdefault(owner, {}).get(str(serial))
            if entry is None:
                entry = {"time": utcnow().isoformat(), "reason": reason}
                self._data["revoked"][owner][str(serial)] = entry
                self._crls.pop(owner, None)
                self._save()
        log.info("revoked serial %d of %s (%s)", serial, owner, entry["reason"])
        return {"serial": serial, "issuer": owner, "revocation_time": entry["time"], "reason": entry["reason"]}

    def snapshot(self):
        with self._lock:
            return {"revoked": json.loads(json.dumps(self._data["revoked"])), "faults": dict(self._faults),
                    "crl_url": self.crl_url(self._state.cas.default), "ocsp_url": self.ocsp_url()}

    # -- faults ----------------------------------------------------------------------------

    def set_fault(self, target, fault, count=None):
        if target not in TARGETS:
            raise RevocationError("target must be one of %s" % ", ".join(TARGETS))
        if fault is not None and fault not in FAULTS:
            raise RevocationError("fault must be one of %s, or null to clear" % ", ".join(FAULTS))
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise RevocationError("count must be null (persistent) or an integer >= 1")
        with self._lock:
            if fault is None:
                self._faults.pop(target, None)
            else:
                self._faults[target] = {"fault": fault, "remaining": count}

    def take_fault(self, target):
        with self._lock:
            entry = self._faults.get(target)
            if entry is None:
                return None
            if entry["remaining"] is not None:
                entry["remaining"] -= 1
                if entry["remaining"] <= 0:
                    del self._faults[target]
            return entry["fault"]

    # -- CRL and OCSP ----------------------------------------------------------------------

    def issuers(self):
        """{issuer id: CA} of every CA that signs end-entity certificates (label CAs and their intermediates)."""
        found = {}
        for ca in self._state.cas.all():
            for one in (ca, ca.intermediate):
                if one is not None:
                    found[issuer_id(one)] = one
        return found

    def _signer(self, ca, fault):
        """(name, key, certificate for the responder id) that signs: ca, or under bad_signature a rogue key with ca's name."""
        if fault == "bad_signature":
            name, key = self._state.rogue_signer(ca)
            return name, key, self._state.rogue_ca_cert(ca)
        return ca.cert.subject, ca.key, ca.cert

    def crl_der(self, ident, fault=None):
        """The DER CRL of issuer ident (None when unknown); cached until half its validity has passed."""
        ca = self.issuers().get(ident)
        if ca is None:
            return None
        now = utcnow()
        with self._lock:
            cached = self._crls.get(ident)
            if fault is None and cached is not None and now < cached[1]:
                return cached[0]
            revoked = dict(self._data["revoked"].get(ident, {}))
            number = int(self._data["crl_number"].get(ident, 0)) + (0 if fault else 1)
            if not fault:
                self._data["crl_number"][ident] = number
                self._save()
        this_update, next_update = now, now + CRL_VALIDITY
        if fault == "stale":
            this_update, next_update = now - 2 * STALE_BY, now - STALE_BY
        name, key, _responder = self._signer(ca, fault)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(name)
                   .last_update(this_update).next_update(next_update)
                   .add_extension(x509.CRLNumber(number), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False))
        for serial, entry in sorted(revoked.items()):
            item = (x509.RevokedCertificateBuilder().serial_number(int(serial))
                    .revocation_date(datetime.datetime.fromisoformat(entry["time"])))
            if entry["reason"] != "unspecified":  # RFC 5280 5.3.1: absent rather than unspecified
                item = item.add_extension(x509.CRLReason(x509.ReasonFlags(entry["reason"])), critical=False)
            builder = builder.add_revoked_certificate(item.build())
        der = builder.sign(key, signing_hash(key)).public_bytes(serialization.Encoding.DER)
        if not fault:
            with self._lock:
                self._crls[ident] = (der, now + CRL_VALIDITY / 2)
        return der

    def ocsp_response(self, request_der, fault=None):
        """The DER OCSPResponse for a DER OCSPRequest."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            serial = request.serial_number
        except (ValueError, TypeError, NotImplementedError, x509.UnsupportedGeneralNameType):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        match = None
        for ident, ca in self.issuers().items():
            name_hash = hashes.Hash(algorithm)
            name_hash.update(ca.cert.subject.public_bytes())
            if (name_hash.finalize() == request.issuer_name_hash
                    and _key_hash(ca.cert, algorithm) == request.issuer_key_hash):
                match = ident, ca
                break
        if match is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)  # RFC 6960 2.3: not a CA this responder serves
        ident, ca = match
        with self._lock:
            revoked = self._data["revoked"].get(ident, {}).get(str(serial))
            issued = str(serial) in self._data["issued"].get(ident, {})
        now = utcnow()
        this_update, next_update = now, now + OCSP_VALIDITY
        if fault == "stale":
            this_update, next_update = now - 2 * STALE_BY, now - STALE_BY
        revocation_time = reason = None
        if revoked is not None:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = datetime.datetime.fromisoformat(revoked["time"])
            reason = x509.ReasonFlags(revoked["reason"]) if revoked["reason"] != "unspecified" else None
        elif issued:
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.UNKNOWN
        _name, key, responder_cert = self._signer(ca, fault)
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response_by_hash(request.issuer_name_hash, request.issuer_key_hash, serial, algorithm, status,
                                         this_update, next_update, revocation_time, reason)
                   .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_cert))
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
            builder = builder.add_extension(nonce.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        return builder.sign(key, signing_hash(key)).public_bytes(serialization.Encoding.DER)


def _unsuccessful(status):
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def _serial(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value.replace(":", ""), 16 if ":" in value else 10)
        except ValueError:
            pass
    raise RevocationError("serial must be an integer, 0x-prefixed hex, or colon-separated hex, got %r" % (value,))


# -- the plain HTTP listener ----------------------------------------------------------------


class RevocationHandler(BaseHTTPRequestHandler):
    """GET /crl/<issuer>.crl, POST /ocsp, GET /ocsp/<base64 request> (RFC 6960 A.1)."""

    protocol_version = "HTTP/1.1"
    server_version = "estlab-revocation"

    def setup(self):
        self.timeout = 15
        super().setup()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/crl/") and path.endswith(".crl"):
            self._answer("crl", lambda fault: self._crl(path[len("/crl/"):-len(".crl")], fault))
        elif path.startswith("/ocsp/"):
            try:
                der = base64.b64decode(urllib.parse.unquote(path[len("/ocsp/"):]), validate=False)
            except ValueError:
                der = b""
            self._answer("ocsp", lambda fault: (200, "application/ocsp-response", self.server.state.revocation.ocsp_response(der, fault)))
        else:
            self._send(404, "text/plain", b"not found\n")

    def do_POST(self):  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        if path != "/ocsp":
            self._send(404, "text/plain", b"not found\n")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, "text/plain", b"Content-Length required\n")
            return
        if length > MAX_OCSP_REQUEST:
            self.close_connection = True
            self._send(413, "text/plain", b"OCSP request too large\n")
            return
        der = self.rfile.read(length)
        self._answer("ocsp", lambda fault: (200, "application/ocsp-response", self.server.state.revocation.ocsp_response(der, fault)))

    def _crl(self, ident, fault):
        der = self.server.state.revocation.crl_der(ident, fault)
        if der is None:
            return 404, "text/plain", b"no such CRL\n"
        return 200, "application/pkix-crl", der

    def _answer(self, target, build):
        state = self.server.state
        fault = state.revocation.take_fault(target)
        if fault == "down":
            self.close_connection = True
            state.requests.add(self.command, self.path[:200], target, None, None, "none", fault)
            return
        status, content_type, body = build(fault)
        self._send(status, content_type, body)
        state.requests.add(self.command, self.path[:200], target, None, status, "none", fault)

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log.info("%s revocation %s", self.client_address[0], format % args)


class RevocationHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, state):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        super().__init__(address, RevocationHandler)

    def server_bind(self):
        TCPServer.server_bind(self)  # no reverse DNS lookup (see server.LabHTTPServer)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]
