"""POST /fullcmc (RFC 7030 4.3): a Full PKI Request in, a PKI Response out.

Checks in order: body length (411/413), content type application/pkcs7-mime
(415), authentication like /simpleenroll (401/403), base64 and "is it CMS at
all" (plain 400), then the CMC checks of ``cmc.parse_full_pki_request``, whose
failures are answered with a signed PKIResponse carrying CMCStatusInfoV2
failed + failInfo (HTTP status ``fullcmc_fail_status``, 200 by default).  A
good request then meets faults, pending (``fullcmc_pending``) and issuance.

Responses are SignedData signed by the label's CA (issuerAndSerialNumber), with
the issued certificates, the intermediate that issued them (``issuing_ca:
intermediate``, unless ``cacerts_omit_intermediate``) and the CA certificate;
``fullcmc_response: certs-only`` answers a success with a certs-only Simple PKI
Response instead.
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


def _signed_response(state, ca, pki_response_der, status=200, headers=None, certs=(), fault=None):
    """The base64 SignedData(PKIResponse) answer, signed by ca (or by the rogue CA for the other_ca fault)."""
    cmc, cms = _modules()
    if fault == "other_ca":
        signer_cert = state.rogue_ca_cert(ca)
        signer_key = state.rogue_signer(ca)[1]
    else:
        signer_cert, signer_key = ca.cert, ca.key
    der = cms.sign_signed_data(cmc.OID_PKI_RESPONSE, pki_response_der, signer_cert, signer_key, list(certs) + [signer_cert],
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
    """None when the request may be answered now, else the pending answer."""
    cmc = _modules()[0]
    key_id = _pending_key(request)
    if state.pending.approved(key_id, state.config.get("pending")):
        return None
    retry_after = state.config.get("retry_after")
    pend = (bytes.fromhex(key_id)[:16], utcnow() + datetime.timedelta(seconds=retry_after))
    der = cmc.pki_response("pending", request.body_part_ids, request.transaction_id, request.sender_nonce,
                           status_string="waiting for approval", pend=pend)
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
        request = cmc.parse_full_pki_request(der, state.cas.all())
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
