"""Interoperability with other EST clients: chunked request bodies (Go net/http),
LF base64 line ends (libest) and an orderly TLS close (close_notify).

Written against the standard library's http.client and ssl, so that request
framing and the TLS close are exactly what the tests say.
"""

import base64
import http.client
import socket
import ssl

import pytest

from lab_helpers import b64, certs_from_body, make_csr, new_key

EST = "/.well-known/est/"
TIMEOUT = 10


def basic(user="alice", password="secret"):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def connection(server):
    context = ssl.create_default_context(cafile=server.ca_path)
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=TIMEOUT)


def send_raw_body(conn, path, raw_body, headers=(), transfer_encoding="chunked"):
    """POST path with Transfer-Encoding: chunked and raw_body sent as it is (the chunk framing included)."""
    conn.putrequest("POST", path)
    for name, value in [("Content-Type", "application/pkcs10"), ("Authorization", basic()),
                        ("Transfer-Encoding", transfer_encoding)] + list(headers):
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(raw_body)
    return conn.getresponse()


def chunked(data, size=100, extension=b"", trailers=b""):
    """data in chunk framing: chunks of size bytes, each with extension after its size, then trailers."""
    out = b""
    for start in range(0, len(data), size):
        piece = data[start:start + size]
        out += b"%x%s\r\n%s\r\n" % (len(piece), extension, piece)
    return out + b"0%s\r\n%s\r\n" % (extension, trailers)


def issued_for(response, key):
    body = response.read()
    assert response.status == 200, body
    (cert,) = certs_from_body(body)
    return cert.public_key() == key.public_key()


# -- chunked request bodies (RFC 9112 7.1) -------------------------------------------------------------------


def test_chunked_simpleenroll(server):
    """http.client sends an iterable body chunked, as Go's net/http does a body of unknown length."""
    key = new_key()
    csr = b64(make_csr(key)).encode()
    conn = connection(server)
    try:
        conn.request("POST", EST + "simpleenroll", body=iter([csr[:50], csr[50:51], csr[51:]]),
                     headers={"Content-Type": "application/pkcs10", "Authorization": basic()})
        response = conn.getresponse()
        assert issued_for(response, key)
        assert response.getheader("Connection") is None  # the body was read: the connection stays usable
        conn.request("GET", EST + "cacerts")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    entry = server.requests()[0]
    assert (entry["op"], entry["status"]) == ("simpleenroll", 200)


def test_chunk_extensions_and_trailers_are_ignored(server):
    key = new_key()
    raw = chunked(b64(make_csr(key)).encode(), size=64, extension=b' ; ext=1;quoted="a b"',
                  trailers=b"X-Checksum: none\r\nX-Other: 1\r\n")
    conn = connection(server)
    try:
        assert issued_for(send_raw_body(conn, EST + "simpleenroll", raw), key)
        conn.request("GET", "/healthz")  # the trailers were read too: the next request parses
        assert conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.mark.parametrize("raw", [
    pytest.param(b"zz\r\nAAAA\r\n0\r\n\r\n", id="size-not-hex"),
    pytest.param(b"\r\nAAAA\r\n0\r\n\r\n", id="size-missing"),
    pytest.param(b"-4\r\nAAAA\r\n0\r\n\r\n", id="size-negative"),
    pytest.param(b"0x4\r\nAAAA\r\n0\r\n\r\n", id="size-0x"),
    pytest.param(b"4\r\nAAAAAAAA\r\n0\r\n\r\n", id="data-longer-than-size"),
    pytest.param(b"4\nAAAA\n0\n\n", id="bare-lf"),
    pytest.param(b"4\rAAAA\r\n0\r\n\r\n", id="bare-cr"),
    pytest.param(b"4\r\nAAAA\r\n0\r\nno colon here\r\n\r\n", id="trailer-without-colon"),
    pytest.param(b"1" * 5000 + b"\r\n", id="size-line-too-long"),
])
def test_malformed_chunked_body_gets_400(server, raw):
    conn = connection(server)
    try:
        response = send_raw_body(conn, EST + "simpleenroll", raw)
        assert response.status == 400
        assert "chunk" in response.read().decode()
        assert response.getheader("Connection") == "close"
    finally:
        conn.close()


def test_oversized_chunked_body_gets_413(server):
    server.set_config(max_body_bytes=100)
    conn = connection(server)
    try:  # 60 + 60 bytes: over the limit while reading
        response = send_raw_body(conn, EST + "simpleenroll", chunked(b"A" * 120, size=60))
        assert response.status == 413
        assert response.read().decode().endswith("over the limit of 100 bytes\n")
        assert response.getheader("Connection") == "close"
    finally:
        conn.close()
    conn = connection(server)
    try:  # one chunk declared far too large, its data never sent
        response = send_raw_body(conn, EST + "simpleenroll", b"ffffffffffffffffffff\r\n")
        assert response.status == 413
        assert response.read().decode().endswith("over the limit of 100 bytes\n")
    finally:
        conn.close()
    assert [e["status"] for e in server.requests()] == [413, 413]


def test_chunked_body_at_the_limit_is_read(server):
    csr = b64(make_csr(new_key())).encode()
    server.set_config(max_body_bytes=len(csr))
    conn = connection(server)
    try:
        assert send_raw_body(conn, EST + "simpleenroll", chunked(csr, size=7)).status == 200
    finally:
        conn.close()


@pytest.mark.parametrize("transfer_encoding,headers,status", [
    pytest.param("chunked", [("Content-Length", "4")], 400, id="with-content-length"),
    pytest.param("gzip, chunked", [], 501, id="gzip-then-chunked"),
    pytest.param("chunked, identity", [], 400, id="chunked-not-last"),
])
def test_other_transfer_encodings(server, transfer_encoding, headers, status):
    conn = connection(server)
    try:
        response = send_raw_body(conn, EST + "simpleenroll", b"4\r\nAAAA\r\n0\r\n\r\n", headers, transfer_encoding)
        assert response.status == status
        assert response.getheader("Connection") == "close"
    finally:
        conn.close()


# -- base64 line ends ----------------------------------------------------------------------------------------


def test_single_part_bodies_end_lines_in_lf_by_default(server):
    body = connection_get(server, EST + "cacerts")
    assert body.endswith(b"\n") and b"\r" not in body
    lines = body.split(b"\n")
    assert lines[-1] == b"" and all(len(line) == 64 for line in lines[:-2]) and 0 < len(lines[-2]) <= 64
    key = new_key()
    conn = connection(server)
    try:
        conn.request("POST", EST + "simpleenroll", body=b64(make_csr(key)),
                     headers={"Content-Type": "application/pkcs10", "Authorization": basic()})
        body = conn.getresponse().read()
    finally:
        conn.close()
    assert body.endswith(b"\n") and b"\r" not in body
    assert certs_from_body(body)[0].public_key() == key.public_key()


def test_crlf_line_ends_are_configurable(server):
    server.set_config(response_eol="crlf")
    body = connection_get(server, EST + "cacerts")
    assert body.endswith(b"\r\n") and body.count(b"\n") == body.count(b"\r\n") > 1


def test_multipart_delimiters_stay_crlf(server):
    """RFC 2046 5.1.1: the multipart/mixed /serverkeygen answer keeps CRLF whatever response_eol says."""
    conn = connection(server)
    try:
        conn.request("POST", EST + "serverkeygen", body=b64(make_csr(new_key())),
                     headers={"Content-Type": "application/pkcs10", "Authorization": basic()})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    boundary = response.getheader("Content-Type").split("boundary=", 1)[1].encode()
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.count(b"\r\n--" + boundary + b"\r\n") == 1 and body.endswith(b"\r\n--" + boundary + b"--\r\n")
    assert body.count(b"\n") == body.count(b"\r\n")


def connection_get(server, path):
    conn = connection(server)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


# -- orderly TLS close (RFC 8446 6.1) ------------------------------------------------------------------------


def read_until_closed(server, raw, tls_version=None):
    """Send raw, read to the end; ragged EOFs are not suppressed, so a close without close_notify raises SSLEOFError."""
    context = ssl.create_default_context(cafile=server.ca_path)
    if tls_version is not None:
        context.minimum_version = context.maximum_version = tls_version
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1", suppress_ragged_eofs=False) as tls:
            tls.sendall(raw)
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:  # close_notify received: an orderly end
                    return data
                data += chunk


def test_connection_close_sends_close_notify(server):
    data = read_until_closed(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b'{\n "status": "ok"\n}\n')


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_error_close_sends_close_notify(server, version):
    """An answer that closes the connection itself (413, body left unread) ends with close_notify too."""
    server.set_config(max_body_bytes=10)
    raw = (b"POST " + EST.encode() + b"simpleenroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/pkcs10\r\n"
           b"Content-Length: 20\r\n\r\n" + b"A" * 20)
    data = read_until_closed(server, raw, version)
    assert data.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in data


def test_idle_timeout_sends_close_notify(server):
    """A kept-alive connection the server closes for idleness ends with close_notify."""
    server.set_config(socket_timeout=1)
    data = read_until_closed(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close" not in data
