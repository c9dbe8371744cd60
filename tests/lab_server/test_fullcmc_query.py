"""/fullcmc Query Pending (RFC 5272 6.13) and the response signer modes (fullcmc_signer, fullcmc_omit_signer_cert)."""

import time

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyasn1.codec.der import encoder
from pyasn1.type import univ

from cmc_helpers import (CMC_RESPONSE_TYPE, OID_KP_CMC_RA, OID_QUERY_PENDING, Request, extended_key_usages, query_pending,
                         read_response)
from lab_helpers import enroll_cert, load_pem, make_csr, name, new_key, post
from support.labserver import LabServerError, lab_server
from test_fullcmc import assert_failed, issued_for, send

CMC_RA = OID_KP_CMC_RA
SERVER_AND_CLIENT_AUTH = [ExtendedKeyUsageOID.SERVER_AUTH.dotted_string, ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string]


@pytest.fixture(scope="module")
def ra_identity(shared_server):
    return enroll_cert(shared_server, common_name="query-ra.example.test")


def pending_response(http, request, status=202):
    assert http.status_code == status, http.text
    assert http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    response = read_response(http)
    assert response.signature_ok and response.status == "pending", response.status_string
    assert response.echoes(request)
    return response


def start_pending(server, key, status=202):
    """Send a POP-signed request for key that is answered pending; return (request, pending response)."""
    request = Request([make_csr(key, common_name="queried.example.test")], key)
    return request, pending_response(send(server, request), request, status)


def pending_entry(server):
    """The one entry of the pending table."""
    (entry,) = server.pending().values()
    return entry


def query_for(request, pending, key, **kw):
    """The Query Pending for the pending answer of request, signed by key, as a compliant client sends it."""
    return query_pending(pending.pend[0], key, request.transaction_id, recipient_nonce=pending.sender_nonce, **kw)


# -- Query Pending -----------------------------------------------------------------------------------------


def test_query_pending_until_approved(server):
    server.set_config(pending={"after_polls": 2}, retry_after=9)
    key = new_key()
    request, first = start_pending(server, key)
    token, pend_time = first.pend
    assert first.body_list == [1] and len(token) == 16
    assert pending_entry(server)["pend_token"] == token.hex()

    query = query_for(request, first, key)
    http = send(server, query)
    assert http.headers["Retry-After"] == "9"
    second = pending_response(http, query)
    assert second.pend == (token, pend_time)  # RFC 5272 6.13: the same pendInfo as the original answer
    assert second.body_list == [1]  # the bodyPartID of the original certification request
    assert second.sender_nonce not in (first.sender_nonce, query.sender_nonce)

    query = query_for(request, second, key)
    http = send(server, query)
    assert http.status_code == 200 and http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    done = read_response(http)
    ca = load_pem(server.ca_path)
    assert done.signature_ok and done.signer_cert == ca
    assert done.status == "success" and done.body_list == [1]
    assert done.transaction_id == query.transaction_id and done.recipient_nonce == query.sender_nonce
    (cert,) = issued_for(done, key)
    assert cert.subject == name("queried.example.test")
    cert.verify_directly_issued_by(ca)
    assert server.pending() == {}
    assert [e["status"] for e in server.requests()] == [202, 202, 200]

    again = query_pending(token, key, request.transaction_id)  # issued: the token is forgotten
    failed = assert_failed(send(server, again), again, "badRequest", [again.control_id(OID_QUERY_PENDING)])
    assert failed.status_string == "unknown pendToken"


def test_query_pending_ra_signed_two_csrs_on_a_label(server, ra_identity):
    server.set_config(pending={"after_polls": 1}, fullcmc_pending="cmc200")
    ra_cert, ra_key = ra_identity
    keys = [new_key(), new_key("rsa")]
    request = Request([make_csr(k, common_name="ra-queried%d.example.test" % i) for i, k in enumerate(keys)], ra_key,
                      signer_cert=ra_cert)
    first = pending_response(send(server, request, label="iot"), request, status=200)
    assert first.body_list == [1, 2]
    query = query_pending(first.pend[0], ra_key, request.transaction_id, signer_cert=ra_cert)  # no recipientNonce: optional
    http = send(server, query, label="iot")
    assert http.status_code == 200
    done = read_response(http)
    label_ca = load_pem(server.label_ca_path("iot"))
    assert done.signature_ok and done.signer_cert == label_ca and done.status == "success" and done.echoes(query)
    assert done.body_list == [1, 2]
    for key in keys:
        (cert,) = issued_for(done, key)
        cert.verify_directly_issued_by(label_ca)


def test_query_pending_after_seconds_and_switched_off(server):
    server.set_config(pending={"after_seconds": 1}, fullcmc_pending="cmc200")
    key = new_key()
    request, first = start_pending(server, key, status=200)
    query = query_for(request, first, key)
    assert read_response(send(server, query)).status == "pending"
    time.sleep(1.1)
    query = query_pending(first.pend[0], key, request.transaction_id)  # no recipientNonce this time
    done = read_response(send(server, query))
    assert done.status == "success" and issued_for(done, key)

    other = new_key()
    request, first = start_pending(server, other, status=200)
    server.set_config(pending=None)  # approval policy switched off while the request waits
    done = read_response(send(server, query_pending(first.pend[0], other, request.transaction_id)))
    assert done.status == "success" and issued_for(done, other)
    assert server.pending() == {}


def test_query_unknown_token(server):
    key = new_key()
    query = query_pending(b"\x00" * 16, key, 12345)
    failed = assert_failed(send(server, query), query, "badRequest", [query.control_id(OID_QUERY_PENDING)])
    assert failed.status_string == "unknown pendToken"

    server.set_config(pending={"after_polls": 5})
    request, first = start_pending(server, key)
    query = query_for(request, first, key)
    failed = assert_failed(send(server, query, label="web"), query, "badRequest")  # the token belongs to the default CA
    assert failed.status_string == "unknown pendToken"
    pending_response(send(server, query), query)  # where it was handed out it is known


def test_query_signed_by_another_key(server):
    server.set_config(pending={"after_polls": 1})
    key, stranger = new_key(), new_key()
    request, first = start_pending(server, key)
    query = query_for(request, first, stranger)  # the stranger's own key identifier: not the original request's key
    assert_failed(send(server, query), query, "badIdentity", [0])
    original_ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    query = query_for(request, first, stranger, ski=original_ski)  # names the original key, signed by another
    assert_failed(send(server, query), query, "badMessageCheck", [0])
    query = query_for(request, first, key, tamper="signature")
    assert_failed(send(server, query), query, "badMessageCheck", [0])
    assert pending_entry(server)["requests"] == 1  # refused queries are no polls
    query = query_for(request, first, key)
    done = read_response(send(server, query))
    assert done.status == "success" and done.echoes(query) and issued_for(done, key)


def test_query_checks(server):
    server.set_config(pending={"after_polls": 3})
    key = new_key()
    request, first = start_pending(server, key)
    token = first.pend[0]

    query = query_pending(token, key, request.transaction_id + 1)  # RFC 5272 6.6: the same transactionId throughout
    failed = assert_failed(send(server, query), query, "badRequest", [query.control_id(OID_QUERY_PENDING)])
    assert "transactionId" in failed.status_string

    query = query_pending(token, key, request.transaction_id, recipient_nonce=b"not the server's nonce")
    failed = assert_failed(send(server, query), query, "badRequest")
    assert "recipientNonce" in failed.status_string

    query = query_pending(token, key, request.transaction_id, csrs_der=[make_csr(key)])  # a request and a query
    assert_failed(send(server, query), query, "badRequest", [query.control_id(OID_QUERY_PENDING)])

    query = query_pending(token, key, request.transaction_id,
                          extra_controls=[(OID_QUERY_PENDING, encoder.encode(univ.OctetString(token)))])
    assert_failed(send(server, query), query, "badRequest")

    empty = Request([], key)  # neither requests nor queryPending
    failed = assert_failed(send(server, empty), empty, "badRequest", [0])
    assert failed.status_string == "the PKIData carries no certification request"

    # The recipientNonce must follow the server's last senderNonce for the token.
    query = query_for(request, first, key)
    second = pending_response(send(server, query), query)
    stale = query_for(request, first, key)  # first.sender_nonce is no longer the last one
    assert_failed(send(server, stale), stale, "badRequest")
    query = query_for(request, second, key)
    assert read_response(send(server, query)).status == "pending"
    assert pending_entry(server)["requests"] == 3  # the request and two good queries


# -- response signers --------------------------------------------------------------------------------------


def enroll_response(server, label=None, known_certs=()):
    key = new_key()
    request = Request([make_csr(key)], key)
    http = send(server, request, label=label)
    assert http.status_code == 200 and http.headers["Content-Type"] == CMC_RESPONSE_TYPE
    response = read_response(http, known_certs)
    assert response.status == "success" and response.echoes(request) and issued_for(response, key)
    return response


@pytest.mark.parametrize("omit", [False, True])
def test_signer_ca(server, omit):
    server.set_config(fullcmc_omit_signer_cert=omit)
    ca = load_pem(server.ca_path)
    response = enroll_response(server)
    assert response.sid_kind == "issuerAndSerialNumber"
    assert (ca in response.certificates) is not omit
    assert response.signature_ok is not omit  # without the certificate the reader cannot find the signer ...
    known = enroll_response(server, known_certs=[ca])
    assert known.signature_ok and known.signer_cert == ca  # ... unless it already has the CA certificate
    assert len(known.certificates) == (1 if omit else 2)


@pytest.mark.parametrize("omit", [False, True])
def test_signer_cmc_ra(server, omit):
    server.set_config(fullcmc_signer="cmc_ra", fullcmc_omit_signer_cert=omit)
    ra_path = server.state_dir / "cmc-ra.pem"
    ra = load_pem(ra_path)  # made when the mode was configured
    ca = load_pem(server.ca_path)
    response = enroll_response(server, known_certs=[ra])
    assert response.sid_kind == "issuerAndSerialNumber"
    assert response.signature_ok and response.signer_cert == ra
    assert extended_key_usages(ra) == [CMC_RA]
    assert ra.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ra.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ra.subject != ca.subject
    ra.verify_directly_issued_by(ca)
    assert ca in response.certificates
    assert (ra in response.certificates) is not omit
    assert len(response.certificates) == (2 if omit else 3)
    assert load_pem(ra_path) == ra  # made once
    assert enroll_response(server, known_certs=[ra]).signer_cert == ra


def test_signer_cmc_ra_on_a_label_and_for_failures(server):
    server.set_config(fullcmc_signer="cmc_ra")
    label_ca = load_pem(server.label_ca_path("iot"))
    response = enroll_response(server, label="iot")
    assert response.signature_ok and extended_key_usages(response.signer_cert) == [CMC_RA]
    response.signer_cert.verify_directly_issued_by(label_ca)
    assert response.signer_cert == load_pem(server.state_dir / "labels" / "iot" / "cmc-ra.pem")
    key = new_key()
    request = Request([make_csr(key)], key, tamper="signature")
    http = send(server, request)
    failed = read_response(http)
    assert failed.status == "failed" and failed.fail_info == "badMessageCheck" and failed.signature_ok
    assert extended_key_usages(failed.signer_cert) == [CMC_RA]
    assert set(failed.certificates) == {failed.signer_cert, load_pem(server.ca_path)}  # a SET OF: no order


def test_signer_ee(server):
    server.set_config(fullcmc_signer="ee")
    ca = load_pem(server.ca_path)
    response = enroll_response(server)
    ee = response.signer_cert
    assert response.signature_ok and response.sid_kind == "issuerAndSerialNumber"
    assert ee != ca and ee == load_pem(server.state_dir / "cmc-ee.pem")
    ee.verify_directly_issued_by(ca)
    assert extended_key_usages(ee) == SERVER_AND_CLIENT_AUTH  # an ordinary end entity: no id-kp-cmcRA / id-kp-cmcCA
    assert ee.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ee in response.certificates and ca in response.certificates


@pytest.mark.parametrize("omit", [False, True])
def test_signer_none(server, omit):
    server.set_config(fullcmc_signer="none", fullcmc_omit_signer_cert=omit)
    ca = load_pem(server.ca_path)
    response = enroll_response(server, known_certs=[ca])
    assert response.signer_infos == [] and response.digest_algorithms == [] and response.sid_kind is None
    assert not response.signature_ok and response.signer_cert is None
    assert ca in response.certificates and len(response.certificates) == 2  # the issued certificate and the CA


def test_signer_modes_apply_to_pending_answers(server):
    server.set_config(fullcmc_signer="cmc_ra", pending={"after_polls": 1})
    key = new_key()
    request, first = start_pending(server, key)
    assert extended_key_usages(first.signer_cert) == [CMC_RA]
    server.set_config(fullcmc_signer="none")
    query = query_for(request, first, key)
    done = read_response(send(server, query))
    assert done.status == "success" and done.signer_infos == [] and done.echoes(query)


def test_signer_other_ca_fault_wins(server):
    server.set_config(fullcmc_signer="cmc_ra")
    server.set_fault("fullcmc", "other_ca", count=1)
    response = enroll_response(server)
    ca = load_pem(server.ca_path)
    assert response.signature_ok and response.signer_cert != ca and response.signer_cert.subject == ca.subject


def test_signer_config_is_checked(server):
    with pytest.raises(LabServerError):
        server.set_config(fullcmc_signer="ra")
    with pytest.raises(LabServerError):
        server.set_config(fullcmc_omit_signer_cert="yes")


def test_response_signers_persist(tmp_path):
    with lab_server(tmp_path, config={"users": {"alice": "secret"}, "fullcmc_signer": "ee", "labels": ["iot"]}) as server:
        ee_path = server.state_dir / "cmc-ee.pem"
        label_ee_path = server.state_dir / "labels" / "iot" / "cmc-ee.pem"
        ee, label_ee = load_pem(ee_path), load_pem(label_ee_path)
        assert (server.state_dir / "cmc-ee.key").stat().st_mode & 0o777 == 0o600
        assert not (server.state_dir / "cmc-ra.pem").exists()
        server.stop()
        server.start()
        assert load_pem(ee_path) == ee and load_pem(label_ee_path) == label_ee
        assert enroll_response(server).signer_cert == ee
        server.set_config(fullcmc_signer="cmc_ra")
        assert extended_key_usages(load_pem(server.state_dir / "cmc-ra.pem")) == [CMC_RA]


def test_certs_only_answers_ignore_the_signer(server):
    server.set_config(fullcmc_signer="none", fullcmc_response="certs-only")
    key = new_key()
    http = post(server, "fullcmc", Request([make_csr(key)], key).body, content_type="application/pkcs7-mime")
    assert http.status_code == 200 and "certs-only" in http.headers["Content-Type"]
