"""Linking identity and POP (RFC 7030 3.5): require_tls_unique, the challengePassword = base64 tls-unique
(RFC 5929) of the TLS connection a CSR arrives on; /csrattrs listing challengePassword; tls_min_version.

The client side is ssl + http.client: one connection is made, its tls-unique read,
the CSR built for it with cryptography and POSTed over that same connection.
"""

import base64
import http.client
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AttributeOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import char, univ
from pyasn1_modules import rfc2986, rfc7030

from lab_helpers import certs_from_body, client_module, enroll_cert, get, load_pem, name, new_key, write_identity
from support.labserver import LabServer, LabServerError

EST = "/.well-known/est/"
TIMEOUT = 10
TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
MISMATCH = "challengePassword does not match the tls-unique of this TLS session (RFC 7030 3.5)"
MISSING = "is missing"
NEEDS_TLS12 = "needs TLS 1.2"


def basic(user="alice", password="secret"):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def connect(server, version=TLS12, cert=None):
    """An open HTTPSConnection to server with exactly TLS version (and a client certificate (certfile, keyfile))."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(server.ca_path)
    context.minimum_version = context.maximum_version = version
    if cert:
        context.load_cert_chain(*cert)
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=TIMEOUT)
    conn.connect()
    return conn


def tls_unique(conn):
    """base64 of the connection's tls-unique, as RFC 7030 3.5 puts it into challengePassword."""
    return base64.b64encode(conn.sock.get_channel_binding("tls-unique")).decode("ascii")


def csr(key, challenge=None, common_name="linked.example.test", dns=(), tag=None):
    """DER CSR for key; challenge (str) becomes challengePassword (UTF8String, cryptography's default, or tag)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(name(common_name))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if challenge is not None:
        kw = {"_tag": tag} if tag is not None else {}
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode("utf-8"), **kw)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def csr_with_raw_attributes(key, attributes):
    """DER CSR (EC key) whose attributes are [(oid, [pyasn1 values])] as given, e.g. several values or repeats."""
    plain, dummy = decoder.decode(csr(key), asn1Spec=rfc2986.CertificationRequest())
    info = rfc2986.CertificationRequestInfo()
    for field in ("version", "subject", "subjectPKInfo"):
        info[field] = plain["certificationRequestInfo"][field]
    for index, (oid, values) in enumerate(attributes):
        attribute = rfc2986.Attribute()
        attribute["type"] = univ.ObjectIdentifier(oid)
        for position, value in enumerate(values):
            attribute["values"][position] = univ.Any(encoder.encode(value))
        info["attributes"][index] = attribute
    request = rfc2986.CertificationRequest()
    request["certificationRequestInfo"] = info
    request["signatureAlgorithm"] = plain["signatureAlgorithm"]
    request["signature"] = univ.BitString.fromOctetString(key.sign(encoder.encode(info), ec.ECDSA(hashes.SHA256())))
    return encoder.encode(request)


def send(conn, op, der, label=None, auth=True):
    """POST der (base64) to op over conn; (status, body bytes)."""
    headers = {"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"}
    if auth:
        headers["Authorization"] = basic()
    path = EST + ("%s/" % label if label else "") + op
    conn.request("POST", path, body=base64.encodebytes(der), headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def linked_enroll(server, key=None, op="simpleenroll", version=TLS12, cert=None, **csr_kw):
    """One connection, a CSR linked to it, sent over it: (status, body, key)."""
    key = key or new_key()
    conn = connect(server, version, cert)
    try:
        status, body = send(conn, op, csr(key, tls_unique(conn), **csr_kw), auth=cert is None)
    finally:
        conn.close()
    return status, body, key


def issued_for(body, key):
    (cert,) = certs_from_body(body)
    return cert.public_key() == key.public_key()


def csrattrs_oids(server):
    """The OIDs (or attribute types) of the /csrattrs answer, in order; None for a 204."""
    response = get(server, "csrattrs")
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    attrs, rest = decoder.decode(base64.b64decode(b"".join(response.content.split())), asn1Spec=rfc7030.CsrAttrs())
    assert rest == b""
    return [str(item["oid"]) if item.getName() == "oid" else str(item["attribute"]["attrType"]) for item in attrs]


@pytest.fixture
def linking(server):
    server.set_config(require_tls_unique=True)
    return server


# -- /simpleenroll, /simplereenroll ------------------------------------------------------------------------------


def test_linked_csr_is_issued(linking):
    status, body, key = linked_enroll(linking)
    assert status == 200, body
    assert issued_for(body, key)
    entry = linking.requests()[-1]
    assert (entry["op"], entry["status"]) == ("simpleenroll", 200)


def test_linked_csr_at_a_label(linking):
    key = new_key()
    conn = connect(linking)
    try:
        status, body = send(conn, "simpleenroll", csr(key, tls_unique(conn)), label="iot")
    finally:
        conn.close()
    assert status == 200, body
    (cert,) = certs_from_body(body)
    assert cert.issuer == load_pem(linking.label_ca_path("iot")).subject


def test_printable_string_is_accepted(linking):
    status, body, dummy = linked_enroll(linking, tag=_ASN1Type.PrintableString)
    assert status == 200, body


def test_other_value_is_refused(linking):
    conn = connect(linking)
    try:
        real = tls_unique(conn)
        wrong = base64.b64encode(bytes(b ^ 1 for b in base64.b64decode(real))).decode()
        for value in (wrong, real[:-1], real + "\n", " " + real, "secret"):
            status, body = send(conn, "simpleenroll", csr(new_key(), value))
            assert status == 400 and MISMATCH in body.decode(), (value, body)
    finally:
        conn.close()


def test_missing_challenge_password_is_refused(linking):
    conn = connect(linking)
    try:
        status, body = send(conn, "simpleenroll", csr(new_key()))
    finally:
        conn.close()
    assert status == 400
    assert MISSING in body.decode() and "RFC 7030 3.5" in body.decode()
    assert linking.requests()[-1]["status"] == 400


def test_csr_made_for_another_connection_is_refused(linking):
    first, second = connect(linking), connect(linking)
    try:
        key = new_key()
        made_for_first = csr(key, tls_unique(first))
        assert tls_unique(first) != tls_unique(second)
        status, body = send(second, "simpleenroll", made_for_first)
        assert status == 400 and MISMATCH in body.decode()
        status, body = send(first, "simpleenroll", made_for_first)  # where it belongs
        assert status == 200, body
        assert issued_for(body, key)
    finally:
        first.close()
        second.close()


def test_csr_replayed_on_a_new_connection_is_refused(linking):
    conn = connect(linking)
    try:
        der = csr(new_key(), tls_unique(conn))
        assert send(conn, "simpleenroll", der)[0] == 200
    finally:
        conn.close()
    again = connect(linking)
    try:
        status, body = send(again, "simpleenroll", der)
    finally:
        again.close()
    assert status == 400 and MISMATCH in body.decode()


def test_several_requests_on_one_connection(linking):
    conn = connect(linking)
    try:
        for dummy in range(2):
            key = new_key()
            status, body = send(conn, "simpleenroll", csr(key, tls_unique(conn)))
            assert status == 200, body
            assert issued_for(body, key)
    finally:
        conn.close()


def test_resumed_tls12_session(linking):
    """On an abbreviated handshake tls-unique is the server's Finished (RFC 5929 3.1); client and server agree."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(linking.ca_path)
    context.minimum_version = context.maximum_version = TLS12
    first = context.wrap_socket(socket.create_connection(("127.0.0.1", linking.port), timeout=TIMEOUT),
                                server_hostname="127.0.0.1")
    session = first.session
    first.close()
    conn = http.client.HTTPSConnection("127.0.0.1", linking.port, context=context, timeout=TIMEOUT)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", linking.port), timeout=TIMEOUT),
                                    server_hostname="127.0.0.1", session=session)
    try:
        assert conn.sock.session_reused
        key = new_key()
        status, body = send(conn, "simpleenroll", csr(key, tls_unique(conn)))
    finally:
        conn.close()
    assert status == 200, body


@pytest.mark.parametrize("with_value", [False, True])
def test_tls13_connection_is_refused(linking, with_value):
    conn = connect(linking, TLS13)
    try:
        assert conn.sock.version() == "TLSv1.3"
        # OpenSSL hands out a "tls-unique" on TLS 1.3 too (the same on both ends); it is not one (RFC 9266).
        value = tls_unique(conn) if with_value else None
        status, body = send(conn, "simpleenroll", csr(new_key(), value))
    finally:
        conn.close()
    assert status == 400
    assert NEEDS_TLS12 in body.decode() and "TLSv1.3" in body.decode()


@pytest.mark.parametrize("tag", [_ASN1Type.IA5String, _ASN1Type.BMPString])
def test_other_string_types_are_refused(linking, tag):
    conn = connect(linking)
    try:
        value = tls_unique(conn)
        if tag == _ASN1Type.BMPString:
            value = value.encode("utf-16-be").decode("latin-1")  # the BMPString octets of value
        builder = x509.CertificateSigningRequestBuilder().subject_name(name("x.example.test"))
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, value.encode("latin-1"), _tag=tag)
        key = new_key()
        status, body = send(conn, "simpleenroll", builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    finally:
        conn.close()
    assert status == 400
    assert "UTF8String or PrintableString" in body.decode()


@pytest.mark.parametrize("shape, reason", [("two values", "attributes cannot be read"), ("no value", "attributes cannot be read"),
                                           ("twice", "challengePassword 2 times"), ("integer", "UTF8String or PrintableString")])
def test_malformed_challenge_password_is_400(linking, shape, reason):
    key = ec.generate_private_key(ec.SECP256R1())
    conn = connect(linking)
    try:
        value = char.UTF8String(tls_unique(conn))
        attributes = {
            "two values": [(OID_CHALLENGE_PASSWORD, [value, value])],
            "twice": [(OID_CHALLENGE_PASSWORD, [value]), (OID_CHALLENGE_PASSWORD, [value])],
            "no value": [(OID_CHALLENGE_PASSWORD, [])],
            "integer": [(OID_CHALLENGE_PASSWORD, [univ.Integer(5)])],
        }[shape]
        status, body = send(conn, "simpleenroll", csr_with_raw_attributes(key, attributes))
    finally:
        conn.close()
    assert status == 400 and reason in body.decode(), body


def test_linking_comes_after_authentication_and_before_faults(linking):
    conn = connect(linking)
    try:
        status, dummy = send(conn, "simpleenroll", csr(new_key()), auth=False)
        assert status == 401  # authentication first
    finally:
        conn.close()
    linking.set_fault("simpleenroll", "http500", count=1)
    conn = connect(linking)
    try:
        assert send(conn, "simpleenroll", csr(new_key()))[0] == 400
        status, dummy = send(conn, "simpleenroll", csr(new_key(), tls_unique(conn)))
        assert status == 500  # the fault was still there for the first request that passed every check
    finally:
        conn.close()


def test_pending_request_is_linked_anew_on_each_connection(linking):
    linking.set_config(pending={"after_polls": 1})
    key = new_key()
    status, dummy, dummy = linked_enroll(linking, key)
    assert status == 202
    status, body, dummy = linked_enroll(linking, key)  # the poll, re-signed for its own connection
    assert status == 200, body
    assert issued_for(body, key)


@pytest.fixture
def identity(server, tmp_path):
    """An enrolled certificate for TLS client authentication: (cert, key, (certfile, keyfile)); made before the
    test switches require_tls_unique on."""
    cert, key = enroll_cert(server, common_name="relink.example.test", dns=("relink.example.test",))
    return cert, key, write_identity(tmp_path, cert, key)


def test_linked_reenroll(server, identity):
    old, key, files = identity
    server.set_config(require_tls_unique=True)  # after the identity was enrolled
    status, body, dummy = linked_enroll(server, key, op="simplereenroll", cert=files,
                                        common_name="relink.example.test", dns=("relink.example.test",))
    assert status == 200, body
    (new,) = certs_from_body(body)
    assert new.subject == old.subject and new.serial_number != old.serial_number


def test_unlinked_reenroll_is_refused(server, identity):
    dummy, key, files = identity
    server.set_config(require_tls_unique=True)  # after the identity was enrolled
    conn = connect(server, cert=files)
    try:
        status, body = send(conn, "simplereenroll", csr(key, common_name="relink.example.test", dns=("relink.example.test",)),
                            auth=False)
    finally:
        conn.close()
    assert status == 400 and MISSING in body.decode()


# -- option off -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [TLS12, TLS13])
@pytest.mark.parametrize("challenge", [None, "a static one-time password"])
def test_option_off_is_unaffected(server, version, challenge):
    assert server.get_config()["require_tls_unique"] is False
    conn = connect(server, version)
    try:
        key = new_key()
        status, body = send(conn, "simpleenroll", csr(key, challenge))
    finally:
        conn.close()
    assert status == 200, body
    assert issued_for(body, key)


def test_option_can_be_switched_off_again(linking):
    linking.set_config(require_tls_unique=False)
    status, body, dummy = linked_enroll(linking, version=TLS13)
    assert status == 200, body


# -- /serverkeygen: not required, verified when present ----------------------------------------------------------


def test_serverkeygen_does_not_require_linking(linking):
    conn = connect(linking, TLS13)
    try:
        status, body = send(conn, "serverkeygen", csr(new_key()))
    finally:
        conn.close()
    assert status == 200, body


def test_serverkeygen_verifies_a_challenge_password_it_carries(linking):
    conn = connect(linking)
    try:
        status, body = send(conn, "serverkeygen", csr(new_key(), tls_unique(conn)))
        assert status == 200, body
        status, body = send(conn, "serverkeygen", csr(new_key(), "not the tls-unique"))
        assert status == 400 and MISMATCH in body.decode()
    finally:
        conn.close()


# -- /csrattrs --------------------------------------------------------------------------------------------------


def test_csrattrs_lists_challenge_password_when_nothing_is_configured(linking):
    assert csrattrs_oids(linking) == [OID_CHALLENGE_PASSWORD]
    response = get(linking, "csrattrs", label="web")
    assert response.headers["Content-Type"] == "application/csrattrs"
    assert linking.get_config()["csrattrs"] is None  # the configuration itself is unchanged


def test_csrattrs_challenge_password_is_appended(linking):
    linking.set_config(csrattrs=["1.2.840.10045.4.3.3", {"oid": "1.2.840.10045.2.1", "values": ["1.3.132.0.34"]}])
    assert csrattrs_oids(linking) == ["1.2.840.10045.4.3.3", "1.2.840.10045.2.1", OID_CHALLENGE_PASSWORD]


@pytest.mark.parametrize("item", [OID_CHALLENGE_PASSWORD, {"oid": OID_CHALLENGE_PASSWORD}])
def test_csrattrs_challenge_password_is_not_repeated(linking, item):
    linking.set_config(csrattrs=[item, "1.2.840.10045.4.3.2"])
    assert csrattrs_oids(linking) == [OID_CHALLENGE_PASSWORD, "1.2.840.10045.4.3.2"]


def test_csrattrs_template_form_gets_challenge_password(linking):
    linking.set_config(csrattrs={"template": {"subject": [["CN", None]]}})
    oids = csrattrs_oids(linking)
    assert oids == ["1.2.840.113549.1.9.16.2.61", OID_CHALLENGE_PASSWORD]


def test_csrattrs_404_stays_404(linking):
    linking.set_config(csrattrs="404")
    assert get(linking, "csrattrs").status_code == 404


def test_csrattrs_without_the_option(server):
    assert csrattrs_oids(server) is None
    server.set_config(csrattrs=["1.2.840.10045.4.3.2"])
    assert csrattrs_oids(server) == ["1.2.840.10045.4.3.2"]


# -- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [{"require_tls_unique": "yes"}, {"require_tls_unique": 1}, {"tls_min_version": "1.1"},
                                     {"tls_min_version": 1.3}, {"tls_min_version": "TLSv1.3"}])
def test_invalid_settings_are_refused(server, changes):
    with pytest.raises(LabServerError, match="400"):
        server.set_config(**changes)


def test_defaults(server):
    config = server.get_config()
    assert config["require_tls_unique"] is False and config["tls_min_version"] == "1.2"


# -- tls_min_version --------------------------------------------------------------------------------------------


def test_tls_min_version_at_runtime(server):
    server.set_config(tls_min_version="1.3")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        connect(server, TLS12)
    kept = connect(server, TLS13)
    try:
        server.set_config(tls_min_version="1.2")  # new handshakes only: the open connection goes on
        kept.request("GET", EST + "cacerts")
        response = kept.getresponse()
        assert response.status == 200 and response.read()
    finally:
        kept.close()
    conn = connect(server, TLS12)
    assert conn.sock.version() == "TLSv1.2"
    conn.close()


def test_tls13_only_server_cannot_link(tmp_path):
    config = {"users": {"alice": "secret"}, "require_tls_unique": True, "tls_min_version": "1.3"}
    with LabServer(tmp_path / "state", config=config) as own:
        own.start()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            connect(own, TLS12)
        status, body, dummy = linked_enroll(own, version=TLS13)
        assert status == 400 and NEEDS_TLS12 in body.decode()
        assert csrattrs_oids(own) == [OID_CHALLENGE_PASSWORD]  # it asks for linking all the same


# -- the collection's client ------------------------------------------------------------------------------------


def test_client_parser_sees_linking_required(linking):
    csrattrs = client_module("csrattrs")
    response = get(linking, "csrattrs")
    parsed = csrattrs.parse_csrattrs(base64.b64decode(b"".join(response.content.split())))
    assert csrattrs.to_csr_requirements(parsed)["challenge_password_required"] is True
