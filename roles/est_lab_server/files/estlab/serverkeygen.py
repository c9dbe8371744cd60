"""POST /serverkeygen (RFC 7030 4.4): the server makes the key pair and returns key and certificate.

The request is checked like /simpleenroll (content type, authentication, a CSR
whose signature verifies); its public key only says which kind of key to make.
With require_tls_unique on, linking (RFC 7030 3.5) is not required here, but a
challengePassword the CSR carries must be the connection's tls-unique (``linking``).
A CSR with id-aa-asymmDecryptKeyID gets the key encrypted to the TLS client
certificate the identifier names (400 when it names none, or a non-RSA one).

The answer is multipart/mixed with a key part and a certificate part; the
configuration keys ``serverkeygen_order``, ``serverkeygen_eol``,
``serverkeygen_key_format``, ``serverkeygen_cte`` and
``serverkeygen_encrypted_content`` vary its form for client tolerance tests.
"""

import os

from .csr import CsrError, parse_body
from .encoding import EOLS, PKCS7_CONTENT_TYPE, base64_text, certs_only_der
from .est import authenticate, check_content_type, issue_certificate, pending_answer
from .faults import SIGNING_FAULTS, apply_fault
from .keygen import (OID_KEY_PACKAGE, KeygenError, check_key_kind, content_cipher, encrypt_key, find_recipient, key_der,
                     key_package, new_key_like, pkcs8_der, requested_key_id)
from .linking import check_linking
from .response import HttpError, Response

PKCS8_CONTENT_TYPE = "application/pkcs8"
ENCRYPTED_KEY_CONTENT_TYPE = "application/pkcs7-mime; smime-type=server-generated-key"


def new_boundary():
    return "estlab-" + os.urandom(12).hex()


def multipart_body(parts, boundary, eol="crlf", cte=True, wrap=64):
    """A multipart/mixed body (RFC 2046) of parts [(content type, DER)], each part base64."""
    newline = EOLS[eol]
    delimiter = b"--" + boundary.encode("ascii")
    out = []
    for content_type, der in parts:
        out += [delimiter, newline, b"Content-Type: ", content_type.encode("ascii"), newline]
        if cte:
            out += [b"Content-Transfer-Encoding: base64", newline]
        out += [newline, base64_text(der, wrap, eol)]  # the last line end belongs to the next delimiter
    out += [delimiter, b"--", newline]
    return b"".join(out)


def _encryption(request, client):
    """(recipient certificate, content cipher) when the key is to be encrypted, else None; KeygenError when it cannot be."""
    key_id = requested_key_id(request.csr)
    if key_id is None:
        return None
    recipient = find_recipient(key_id, client.cert if client.valid else None)
    return recipient, content_cipher(request.csr)


def _key_part(state, ca, key, encryption):
    config = state.config
    if encryption is None:
        return PKCS8_CONTENT_TYPE, key_der(key, config.get("serverkeygen_key_format"))
    form = config.get("serverkeygen_encrypted_content")
    if form == "key-package":
        plaintext = key_package(key)
    elif form == "signed-key-package":
        from .cms import sign_signed_data  # pyasn1 is only needed for this form
        plaintext = sign_signed_data(OID_KEY_PACKAGE, key_package(key), ca.cert, ca.key, [ca.cert])
    else:
        plaintext = pkcs8_der(key)
    return ENCRYPTED_KEY_CONTENT_TYPE, encrypt_key(plaintext, *encryption)


def _answer(state, ca, request, encryption, fault, boundary):
    key = new_key_like(request.public_key)
    issuer = state.issuer(ca)
    try:
        cert = issue_certificate(state, issuer, request, fault, public_key=key.public_key())
    except (ValueError, TypeError) as exc:
        raise HttpError(400, "cannot issue a certificate for this CSR: %s" % str(exc)[:200]) from exc
    chain = [cert] + state.chain_certs(ca, issuer)
    parts = [_key_part(state, ca, key, encryption), (PKCS7_CONTENT_TYPE, certs_only_der(chain))]
    config = state.config
    if config.get("serverkeygen_order") == "cert-first":
        parts.reverse()
    body = multipart_body(parts, boundary, config.get("serverkeygen_eol"), config.get("serverkeygen_cte"), config.get("response_wrap"))
    return Response(200, body, "multipart/mixed; boundary=%s" % boundary)


def serverkeygen(state, ctx, ca):
    body = ctx.read_body(state.config.get("max_body_bytes"))
    check_content_type(ctx)
    client = authenticate(state, ctx, False, ca)
    try:
        request = parse_body(body)
    except CsrError as exc:
        raise HttpError(400, str(exc)) from exc
    check_linking(state, ctx, request, required=False)
    try:
        encryption = _encryption(request, client)
        check_key_kind(request.public_key)  # before faults and pending: an unsupported key is a 400 at once
    except KeygenError as exc:
        raise HttpError(400, str(exc)) from exc
    boundary = new_boundary()
    fault = ctx.fault = state.faults.take("serverkeygen")
    if fault and fault not in SIGNING_FAULTS:
        return apply_fault(fault, "multipart/mixed; boundary=%s" % boundary, lambda: _answer(state, ca, request, encryption, None, boundary))
    waiting = pending_answer(state, request.key_id)
    if waiting is not None:
        return waiting
    return _answer(state, ca, request, encryption, fault, boundary)
