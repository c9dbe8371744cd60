"""The HTTP request handler: request context, body limits, error mapping, output.

Every method is accepted at the HTTP level and routed, so an unexpected method
gets 405 (not http.server's 501).  Malformed header sections get 400.  An
exception inside an operation becomes a generic 500 and is logged; the
connection and the server go on.
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

TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


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
        self.peer_cert_der = handler.peer_cert_der
        self.body_read = False
        # Filled in by routing and operations, for the request log.
        self.is_est = False
        self.op = None
        self.label = None
        self.auth = "none"
        self.fault = None

    def read_body(self, limit):
        """Read the whole body, refusing (411/413) before reading anything when it is not acceptable."""
        if self.headers.get("Transfer-Encoding") is not None:
            raise HttpError(411, "send the body with a Content-Length (no Transfer-Encoding)")
        length = declared_length(self.headers)
        if length is None:
            raise HttpError(411, "Content-Length required")
        if length > limit:
            raise HttpError(413, "request body of %d bytes is over the limit of %d bytes" % (length, limit))
        data = self._rfile.read(length)
        if len(data) != length:
            raise ConnectionError("client sent %d of %d body bytes" % (len(data), length))
        self.body_read = True
        return data

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
