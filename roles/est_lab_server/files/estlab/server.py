"""The TLS listener, the ready file and the main loop."""

import json
import logging
import os
import select
import signal
import socket
import ssl
import threading
import time
from http.server import ThreadingHTTPServer
from socketserver import TCPServer

from .ca import cert_pem, ensure_server_cert, write_file
from .handlers import EstHandler
from .revocation import RevocationHTTPServer
from .state import LabState

log = logging.getLogger("estlab")

# OpenSSL X509_V_FLAG_NO_CHECK_TIME: let expired client certificates through the
# handshake so that the application answers 403 with a reason.
X509_V_FLAG_NO_CHECK_TIME = 0x200000
HANDSHAKE_TIMEOUT = 10
# tls_min_version -> the context's minimum_version (TLS 1.3 is the highest version either way).
MINIMUM_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# After sending close_notify, how long to wait for the client's before closing the socket anyway.
CLOSE_NOTIFY_TIMEOUT = 1.0


def make_ssl_context(state):
    """The server's one TLS context: TLS 1.2 and 1.3 (1.3 only with tls_min_version "1.3"), client certificate optional.

    A change of tls_min_version through POST /lab/config applies to the
    handshakes after it (connections already open keep their version), and a
    new CA is trusted at once: both change this context in place.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def versions(snapshot):
        context.minimum_version = MINIMUM_VERSIONS[snapshot["tls_min_version"]]

    versions(state.config.snapshot())
    state.on_config_changed(versions)
    context.load_cert_chain(os.path.join(state.state_dir, "server.pem"), os.path.join(state.state_dir, "server.key"))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags = context.verify_flags | X509_V_FLAG_NO_CHECK_TIME

    def trust(cas):
        for ca in cas:
            for cert in ca.issuer_certs():  # with the intermediate, clients need not send it along
                context.load_verify_locations(cadata=cert_pem(cert).decode("ascii"))

    trust(state.cas.all())
    state.on_cas_changed(trust)
    return context


class LabHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does the TLS handshake in the worker thread."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, state, ssl_context):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        self.ssl_context = ssl_context
        super().__init__(address, EstHandler)

    def server_bind(self):
        # HTTPServer.server_bind would do a reverse DNS lookup of the address.
        TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address):
        # Headers and body are separate writes: without NODELAY, Nagle plus the
        # peer's delayed ACK adds ~40 ms to every response.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            connection = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("%s: TLS handshake failed: %s", client_address[0], exc)
            return
        handler = None
        try:
            handler = self.RequestHandlerClass(connection, client_address, self)
        finally:
            if handler is None or not handler.abrupt_close:
                send_close_notify(connection)
            connection.close()

    def handle_error(self, request, client_address):
        log.exception("%s: connection error", client_address[0])


def send_close_notify(connection):
    """End TLS with a close_notify alert (RFC 8446 6.1) so that clients see an orderly close, not a truncation.

    The alert is sent at once; then the client's own close_notify is awaited
    for at most CLOSE_NOTIFY_TIMEOUT in all (the client closing the connection,
    or sending more data, ends the wait at once).  A client that went away is
    no error.
    """
    deadline = time.monotonic() + CLOSE_NOTIFY_TIMEOUT
    try:
        connection.setblocking(False)
        while True:
            try:
                connection.unwrap()
                return
            except ssl.SSLWantReadError:
                readable, writable = [connection], []
            except ssl.SSLWantWriteError:
                readable, writable = [], [connection]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            select.select(readable, writable, [], remaining)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        log.debug("close_notify: %s", exc)


def url_host(bind):
    if bind in ("", "0.0.0.0", "127.0.0.1"):
        return "127.0.0.1"
    if bind in ("::", "::1"):
        return "[::1]"
    if ":" in bind:
        return "[%s]" % bind
    return bind


def intermediate_path(ca):
    """PEM path of ca's intermediate, None while it has none."""
    return ca.intermediate.cert_path if ca.intermediate is not None else None


def ready_info(state, bind, port, http_port=None):
    labels = {}
    for label, ca in sorted(state.labelled_cas().items()):
        labels[label] = {"ca_path": ca.cert_path, "ca_fingerprint": ca.fingerprint, "intermediate_path": intermediate_path(ca)}
    return {
        "port": port,
        "url": "https://%s:%d" % (url_host(bind), port),
        "ca_path": state.cas.default.cert_path,
        "ca_fingerprint": state.cas.default.fingerprint,
        "intermediate_path": intermediate_path(state.cas.default),
        "labels": labels,
        "pid": os.getpid(),
        "http_port": http_port,
        "crl_url": state.revocation.crl_url(state.cas.default),
        "ocsp_url": state.revocation.ocsp_url(),
    }


def write_json(path, data):
    write_file(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o644)


def remove_if_ours(path, check_pid=True):
    """Remove a pid/ready file when it names this process."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
        if check_pid:
            pid = json.loads(content)["pid"] if content.lstrip().startswith("{") else int(content.strip())
            if pid != os.getpid():
                return
        os.unlink(path)
    except (OSError, ValueError, KeyError, TypeError):
        pass


class Options:
    """What serve() needs from the command line."""

    def __init__(self, state_dir, bind="127.0.0.1", port=8443, config=None, ready_file=None, key_type="ec",
                 server_names=(), pidfile=None, http_port=None):
        self.state_dir = state_dir
        self.bind = bind
        self.port = port
        self.config = config or {}
        self.ready_file = ready_file or os.path.join(state_dir, "ready.json")
        self.key_type = key_type
        self.server_names = list(server_names)
        self.pidfile = pidfile
        self.http_port = http_port  # the CRL / OCSP listener (plain HTTP); None: none


def serve(options, on_ready=None):
    """Create or load the PKI, listen, write the ready file and serve until SIGTERM/SIGINT."""
    os.makedirs(options.state_dir, mode=0o700, exist_ok=True)
    state = LabState(options.state_dir, options.key_type, options.config)
    extra_names = list(options.server_names)
    if options.bind not in ("", "0.0.0.0", "::"):
        extra_names.append(options.bind)
    ensure_server_cert(options.state_dir, state.cas.default, options.key_type, extra_names)
    server = LabHTTPServer((options.bind, options.port), state, make_ssl_context(state))
    port = server.server_address[1]
    http_server = http_port = None
    if options.http_port is not None:
        http_server = RevocationHTTPServer((options.bind, options.http_port), state)
        http_port = http_server.server_address[1]
        state.revocation.base_url = "http://%s:%d" % (url_host(options.bind), http_port)
        threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def publish(_new_cas=None):
        write_json(options.ready_file, ready_info(state, options.bind, port, http_port))

    state.on_cas_changed(publish)

    def stop(signum, _frame):
        log.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()
        if http_server is not None:
            threading.Thread(target=http_server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if options.pidfile:
        write_file(options.pidfile, b"%d\n" % os.getpid(), 0o644)
    publish()
    log.info("estlab listening on %s (state %s)", ready_info(state, options.bind, port)["url"], options.state_dir)
    if on_ready is not None:
        on_ready(ready_info(state, options.bind, port, http_port))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if http_server is not None:
            http_server.server_close()
        remove_if_ours(options.ready_file)
        if options.pidfile:
            remove_if_ours(options.pidfile)
        log.info("estlab stopped")
    return 0
