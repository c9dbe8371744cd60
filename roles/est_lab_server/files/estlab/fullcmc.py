"""POST /fullcmc (RFC 7030 4.3): a Full PKI Request in, a PKI Response out.

Checks in order: body length (411/413), content type application/pkcs7-mime
(415), authentication like /simpleenroll (401/403), base64 and "is it CMS at
all" (plain 400), then the CMC checks of ``cmc.parse_full_pki_request``, whose
failures are answered with a signed PKIResponse carrying CMCStatusInfoV2
failed + failInfo (HTTP status ``fullcmc_fail_status``, 200 by default).  A
good request then meets faults, pending (``fullcmc_pending``) and issuance.

Pending (the ``pending`` configuration): the answer carries pendInfo {pendToken
= the first 16 bytes of the pending key, pendTime = now + ``retry_after``}, and
the request is held in the pending table under that token.  A later PKIData
without requests and with a queryPending control (RFC 5272 6.13) naming the
token counts as a poll for the same key: while it waits it is answered pending
with the very pendInfo of that answer (6.13: "MUST be the same as the original
pendInfo value"), once approved with the certificates for the held request's
CSRs.  Either answer echoes the query's transactionId and senderNonce and its
bodyList names the held request's bodyPartIDs.  A token is known at the label
it was handed out at, until the key is issued, the table is cleared or the
server restarts; re-sending the full request instead still works and replaces
what is held.

Responses are SignedData signed as ``fullcmc_signer`` says: by the label's CA
("ca", issuerAndSerialNumber), by a certificate the CA issued with EKU
id-kp-cmcRA ("cmc_ra") or without any CMC EKU ("ee") -- both made once and kept
next to the CA's ``ca.pem`` as ``cmc-ra.pem``/``cmc-ee.pem`` -- or not at all
("none": no SignerInfo).  The certificates are the issued ones, the
intermediate that issued them (``issuing_ca: intermediate``, unless
``cacerts_omit_intermediate``), the signer's certificate (unless
``fullcmc_omit_signer_cert``) and the CA certificate (unless it is the omitted
signer's); ``fullcmc_response: certs-only`` answers a success with a certs-only
Simple PKI Response instead.
"""

import datetime
import hashlib

from .ca import utcnow
from .csr import CsrError, decode_base64_body
from .encoding import PKCS7_CONTENT_TYPE, certs_only_der
from .est import authenticate, check_content_type, der_response, issue_certificate
from .faults import CMC_FAULTS, SIGNING_FAULTS, apply_fault
from .response import HttpError

CMC_REQUEST_MEDIA_TYPE = "application/pkcs7-mime"
CMC_RESPONSE_CONTENT_TYPE = "application/pkcs7-mime; smime-type=CMC-response"


def _modules():
    try:
        from . import cmc, cms  # pyasn1 is only needed when /fullcmc is used
    except ImportError as exc:
        raise HttpError(501, "fullcmc needs the pyasn1 and pyasn1-modules packages on the server") from exc
    return cmc, cms


class HeldRequest:
    """A request answered pending, as the pending table holds it for a Query Pending."""

    def __init__(self, label, key_id, requests, transaction_id, pend, server_nonce):
        self.label = label
        self.key_id = key_id
        self.requests = requests  # [(bodyPartID, csr.CertificationRequest)]
        self.transaction_id = transaction_id
        self.pend = pend  # (pendToken, pendTime) of the answer that handed out the token
        self.server_nonce = server_nonce  # the senderNonce of the last answer for the token


def _find_held(state, ca):
    """find_original for cmc.parse_full_pki_request: the HeldRequest of a pendToken handed out at ca's label."""
    def find(token):
        found = state.pending.held(token)
        if found is None or found[1].label != ca.label:
            return None
        return found[1]
    return find


def _response_signer(state, ca, fault):
    """(certificate, key) that signs the PKIResponse, or None for an unsigned one (``fullcmc_signer``)."""
    if fault == "other_ca":  # a look-alike of the CA, whatever fullcmc_signer says
        return state.rogue_ca_cert(ca), state.rogue_signer(ca)[1]
    mode = state.config.get("fullcmc_signer")
    if mode == "none":
        return None
    if mode == "ca":
        return ca.cert, ca.key
    return ca.response_signer(mode)


def _signed_response(state, ca, pki_response_der, status=200, headers=None, certs=(), fault=None):
    """The base64 SignedData(PKIResponse) answer, signed as fullcmc_signer says (or by the rogue CA for the other_ca fault)."""
    cmc, cms = _modules()
    signer = _response_signer(state, ca, fault)
    certs = list(certs)
    if signer is not None and not state.config.get("fullcmc_omit_signer_cert"):
        certs.append(signer[0])
    if fault != "other_ca" and (signer is None or signer[0] != ca.cert):
        certs.append(ca.cert)
    signer_cert, signer_key = signer or (None, None)
    der = cms.sign_signed_data(cmc.OID_PKI_RESPONSE, pki_response_der, signer_cert, signer_key, certs,
                               corrupt=fault == "bad_signature")
    return der_response(state, der, CMC_RESPONSE_CONTENT_TYPE, status, headers)


def _failed(state, ca, failure):
    cmc = _modules()[0]
    der = cmc.pki_response("failed", failure.body_list, failure.transaction_id, failure.sender_nonce,
                           status_string=failure.reason, fail_info=failure.fail_info)
    return _signed_response(state, ca, der, state.config.get("fullcmc_fail_status"))


def _pending_key(request):
    ids = [csr_request.key_id for dummy, csr_request in request.requests]
    return ids[0] if len(ids) == 1 else hashlib.sha256("".join(ids).encode("ascii")).hexdigest()


def _pending(state, ca, request):
    """None when the request (or the request a query asks about) may be answered now, else the pending answer."""
    cmc = _modules()[0]
    held = request.original
    key_id = held.key_id if held is not None else _pending_key(request)
    if state.pending.approved(key_id, state.config.get("pending")):
        return None
    retry_after = state.config.get("retry_after")
    if held is None:
        pend = (bytes.fromhex(key_id)[:16], utcnow() + datetime.timedelta(seconds=retry_after))
    else:
        pend = held.pend  # RFC 5272 6.13: the same pendInfo as the original answer
    nonce = cmc.new_nonce()
    state.pending.hold(key_id, pend[0], HeldRequest(ca.label, key_id, request.requests,
                                                    held.transaction_id if held is not None else request.transaction_id,
                                                    pend, nonce))
    der = cmc.pki_response("pending", request.body_part_ids, request.transaction_id, request.sender_nonce,
                           status_string="waiting for approval", pend=pend, sender_nonce=nonce)
    if state.config.get("fullcmc_pending") == "cmc200":
        return _signed_response(state, ca, der)
    return _signed_response(state, ca, der, 202, {"Retry-After": str(retry_after)})


def _issue(state, ca, request, fault):
    cmc = _modules()[0]
    issuer = state.issuer(ca)
    certs = []
    for body_part_id, csr_request in request.requests:
        try:
            certs.append(issue_certificate(state, issuer, csr_request, fault))
        except (ValueError, TypeError) as exc:
            failure = cmc.CmcFailure("badRequest", "cannot issue a certificate for request %d: %s" % (body_part_id, str(exc)[:200]),
                                     [body_part_id])
            failure.transaction_id, failure.sender_nonce = request.transaction_id, request.sender_nonce
            return _failed(state, ca, failure)
    certs += state.chain_certs(ca, issuer)
    if state.config.get("fullcmc_response") == "certs-only":
        return der_response(state, certs_only_der(certs + [ca.cert]), PKCS7_CONTENT_TYPE)
    nonce = cmc.new_nonce() if fault == "wrong_nonce" else request.sender_nonce
    der = cmc.pki_response("success", request.body_part_ids, request.transaction_id, nonce, status_string="issued")
    return _signed_response(state, ca, der, certs=certs, fault=fault)


def fullcmc(state, ctx, ca):
    body = ctx.read_body(state.config.get("max_body_bytes"))
    check_content_type(ctx, CMC_REQUEST_MEDIA_TYPE)
    authenticate(state, ctx, False, ca)
    cmc, cms = _modules()
    try:
        der = decode_base64_body(body)
    except CsrError as exc:
        raise HttpError(400, str(exc)) from exc
    try:
        request = cmc.parse_full_pki_request(der, state.cas.all(), _find_held(state, ca))
    except cms.NotCms as exc:
        raise HttpError(400, str(exc)) from exc
    except cmc.CmcFailure as failure:
        return _failed(state, ca, failure)
    fault = ctx.fault = state.faults.take("fullcmc")
    if fault and fault not in SIGNING_FAULTS + CMC_FAULTS:
        return apply_fault(fault, CMC_RESPONSE_CONTENT_TYPE, lambda: _issue(state, ca, request, None))
    waiting = _pending(state, ca, request)
    if waiting is not None:
        return waiting
    return _issue(state, ca, request, fault)
