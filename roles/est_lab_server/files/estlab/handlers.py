"""The HTTP request handler: request context, body limits, error mapping, output.

Every method is accepted at the HTTP level and routed, so an unexpected method
gets 405 (not http.server's 501).  Malformed header sections get 400.  An
exception inside an operation becomes a generic 500 and is logged; the
connection and the server go on.

Request bodies come with a Content-Length or chunked (RFC 9112 7.1, as Go's
net/http sends a body of unknown length): chunk extensions and trailer fields
are read and ignored, the body size limit holds for both framings.
"""

import logging
import re
from email import errors as email_errors
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from . import __version__
from .response import HttpError, text
from .router import route

log = logging.getLogger("estlab")

# A request body that was not read (an error was answered first) is read and
# thrown away, at most this much and for at most DRAIN_SECONDS, so that closing
# the socket does not reset the connection before the client reads the answer.
# The body is never kept: max_body_bytes still bounds what is buffered.
DRAIN_LIMIT = 16 * 1024 * 1024
DRAIN_SECONDS = 2.0

# Chunked framing: a chunk-size line (with its extensions) and the trailer section are bounded.
MAX_CHUNK_LINE = 4096
MAX_TRAILER_BYTES = 16384

TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# chunk-size [ chunk-ext ] (RFC 9112 7.1.1); the extensions are not interpreted.
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?")


def header_problem(headers):
    """A reason when the header section is malformed (RFC 9110/9112), else None."""
    # http.client parses the header section with the email package, which notes
    # (rather than rejects) lines that are not "name: value".
    if any(isinstance(d, (email_errors.MissingHeaderBodySeparatorDefect, email_errors.FirstHeaderLineIsContinuationDefect))
           for d in headers.defects):
        return "malformed header section"
    for name, value in headers.items():
        if not TOKEN.match(name):
            return "malformed header name"
        if CONTROL.search(value):
            return "control character in header %s" % name[:40]
    return None


def declared_length(headers):
    """Content-Length as an int, None when absent; raises HttpError(400) when malformed."""
    values = [value.strip() for value in headers.get_all("Content-Length") or []]
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].isascii() or not values[0].isdigit() or len(values[0]) > 18:
        raise HttpError(400, "malformed Content-Length")
    return int(values[0])


def transfer_codings(headers):
    """The Transfer-Encoding codings, lowercased, in order ([] when absent)."""
    codings = []
    for value in headers.get_all("Transfer-Encoding") or []:
        codings += [coding.strip().lower() for coding in value.split(",") if coding.strip()]
    return codings


def check_chunked(headers, version):
    """True for a chunked body, False for none declared; raises HttpError (400/501) for framings not accepted."""
    if headers.get("Transfer-Encoding") is None:
        return False
    codings = transfer_codings(headers)
    if version == "HTTP/1.0":
        raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")  # RFC 9112 6.1: faulty framing
    if not codings or codings[-1] != "chunked":
        raise HttpError(400, "the final transfer coding of a request body must be chunked")
    if len(codings) > 1:
        others = ", ".join(coding[:40] for coding in codings[:-1])
        raise HttpError(501, "transfer coding %s is not supported (only chunked)" % others)
    if headers.get("Content-Length") is not None:
        raise HttpError(400, "both Transfer-Encoding and Content-Length in a request")  # RFC 9112 6.3: may be smuggling
    return True


def _framing_line(rfile, limit, what):
    """One CRLF-ended line of chunked framing, without the CRLF."""
    line = rfile.readline(limit + 1)
    if not line.endswith(b"\n"):
        if len(line) > limit:
            raise HttpError(400, "%s line over %d bytes in the chunked body" % (what, limit))
        raise ConnectionError("client closed the connection inside the chunked body")
    if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
        raise HttpError(400, "%s line in the chunked body not ended by CRLF, or with a bare CR" % what)
    return line[:-2]


def read_chunked(rfile, limit):
    """The data of a chunked body (RFC 9112 7.1); 413 once the chunk sizes add up to more than limit, 400 on bad framing."""
    parts = []
    total = 0
    while True:
        match = CHUNK_SIZE.fullmatch(_framing_line(rfile, MAX_CHUNK_LINE, "chunk size"))
        if match is None:
            raise HttpError(400, "malformed chunk size line in the chunked body")
        size = int(match.group(1), 16)
        if size == 0:
            break
        if total + size > limit:
            raise HttpError(413, "request body of at least %d bytes is over the limit of %d bytes" % (total + size, limit))
        data = rfile.read(size)
        if len(data) != size:
            raise ConnectionError("client sent %d of %d bytes of a chunk" % (len(data), size))
        parts.append(data)
        total += size
        end = rfile.read(2)
        if end != b"\r\n":
            if len(end) < 2 and b"\r\n".startswith(end):
                raise ConnectionError("client closed the connection inside the chunked body")
            raise HttpError(400, "chunk data not followed by CRLF (chunk size wrong?) in the chunked body")
    trailer_bytes = 0
    while True:  # the trailer section: read and thrown away
        line = _framing_line(rfile, MAX_TRAILER_BYTES, "trailer")
        if not line:
            return b"".join(parts)
        trailer_bytes += len(line) + 2
        if trailer_bytes > MAX_TRAILER_BYTES:
            raise HttpError(400, "trailer section over %d bytes in the chunked body" % MAX_TRAILER_BYTES)
        if b":" not in line or not TOKEN.match(line.split(b":", 1)[0].decode("latin-1")):
            raise HttpError(400, "malformed trailer field in the chunked body")


def has_body(headers):
    if headers.get("Transfer-Encoding") is not None:
        return True
    try:
        return bool(declared_length(headers))
    except HttpError:
        return True


class RequestContext:
    """What an operation may know about the request, and what it reports back."""

    def __init__(self, handler):
        self._rfile = handler.rfile
        self.method = handler.command
        self.path = urlsplit(handler.path).path
        self.headers = handler.headers
        self.version = handler.request_version
        self.peer_cert_der = handler.peer_cert_der
        self._connection = handler.connection  # the ssl.SSLSocket of this request's connection
        self.body_read = False
        # Filled in by routing and operations, for the request log.
        self.is_est = False
        self.op = None
        self.label = None
        self.auth = "none"
        self.fault = None

    def read_body(self, limit):
        """Read the whole body (Content-Length or chunked), refusing what is not acceptable.

        A Content-Length body over limit gets 413 before anything is read, a
        chunked one as soon as its chunk sizes add up to more than limit; no
        length at all gets 411, malformed framing 400.
        """
        if check_chunked(self.headers, self.version):
            data = read_chunked(self._rfile, limit)
        else:
            length = declared_length(self.headers)
            if length is None:
                raise HttpError(411, "Content-Length (or Transfer-Encoding: chunked) required")
            if length > limit:
                raise HttpError(413, "request body of %d bytes is over the limit of %d bytes" % (length, limit))
            data = self._rfile.read(length)
            if len(data) != length:
                raise ConnectionError("client sent %d of %d body bytes" % (len(data), length))
        self.body_read = True
        return data

    def tls_version(self):
        """"TLSv1.2", "TLSv1.3", ... of the connection the request arrived on (None without TLS)."""
        version = getattr(self._connection, "version", None)
        return version() if version is not None else None

    def tls_unique(self):
        """The tls-unique channel binding (RFC 5929) of the connection, read now (so after a renegotiation the
        current one); None without TLS or on TLS 1.3, which has no tls-unique (RFC 9266) although OpenSSL gives
        a value there too."""
        binding = getattr(self._connection, "get_channel_binding", None)
        if binding is None or self.tls_version() not in ("TLSv1", "TLSv1.1", "TLSv1.2"):
            return None
        return binding("tls-unique")

    def body_settled(self):
        """True when nothing of the request is left unread on the connection."""
        return self.body_read or not has_body(self.headers)


class EstHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "estlab/" + __version__
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"
    # Errors found before the version is known still get a status line.
    default_request_version = "HTTP/1.0"

    abrupt_close = False

    def setup(self):
        self.timeout = self.server.state.config.get("socket_timeout")
        super().setup()
        try:
            self.peer_cert_der = self.connection.getpeercert(binary_form=True)
        except (AttributeError, ValueError):
            self.peer_cert_der = None

    def version_string(self):
        return self.server_version

    def __getattr__(self, name):
        # http.server looks up do_<METHOD>; route every method, known or not.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def parse_request(self):
        self.headers = None  # not the previous request's, should this one fail early
        if not super().parse_request():
            return False
        if len(self.requestline.split()) == 2:
            self.send_error(400, "HTTP/0.9 request lines (no version) are not supported")
            return False
        problem = header_problem(self.headers)
        if problem:
            self.send_error(400, problem)
            return False
        return True

    def send_error(self, code, message=None, explain=None):
        super().send_error(code, message, explain)
        headers = getattr(self, "headers", None)
        if headers is not None and has_body(headers):
            self._drain(headers)

    def _dispatch(self):
        ctx = RequestContext(self)
        try:
            response = route(self.server.state, ctx)
        except HttpError as exc:
            response = exc.response()
        except (ConnectionError, TimeoutError) as exc:
            log.info("%s %s: connection problem while reading: %s", self.command, ctx.path[:100], exc)
            self.close_connection = True
            return
        except Exception:  # pylint: disable=broad-exception-caught  # any bug: answer 500, log it, keep serving
            log.exception("unexpected error in %s %s", self.command, ctx.path[:100])
            response = text(500, "internal server error")
        self._send(ctx, response)
        if ctx.is_est:
            status = None if response.drop else response.status
            self.server.state.requests.add(self.command, ctx.path, ctx.op, ctx.label, status, ctx.auth, ctx.fault)

    def _send(self, ctx, response):
        if response.drop:
            log.info("%s %s: dropping the connection (fault)", self.command, ctx.path)
            self.close_connection = True
            self.abrupt_close = True  # no close_notify either: the client sees the connection drop
            return
        settled = ctx.body_settled()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        bodiless = response.status in (204, 304) or response.status < 200
        if not bodiless:
            self.send_header("Content-Length", str(len(response.body)))
        if not settled:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.body and not bodiless and self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()
        if not settled:
            self._drain(ctx.headers)

    def _drain(self, headers):
        """Throw away an unread request body (bounded in size and time); the connection is closed after."""
        self.close_connection = True
        try:
            remaining = declared_length(headers)
        except HttpError:
            remaining = None
        if remaining is None or headers.get("Transfer-Encoding") is not None:
            remaining = DRAIN_LIMIT
        if remaining > DRAIN_LIMIT:
            return
        deadline = time.monotonic() + DRAIN_SECONDS
        try:
            self.connection.settimeout(0.25)
            while remaining > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
        except (OSError, ValueError):
            pass

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log.info("%s %s", self.client_address[0], format % args)
