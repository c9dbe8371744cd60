"""CMC (RFC 5272 / 6402) for /fullcmc: reading a Full PKI Request, building a PKI Response.

``parse_full_pki_request`` takes the DER of a ContentInfo(SignedData(PKIData))
and either returns a ``FullPkiRequest`` (signature, signer and every proof of
possession checked) or raises:

* ``cms.NotCms`` when the bytes are not CMS at all (the operation answers 400);
* ``CmcFailure`` with an RFC 5272 6.1.4 CMCFailInfo for everything else (the
  operation answers with a failed PKIResponse).

Checks, in order (the first problem wins): SignedData shape and content type
(badRequest), PKIData (badRequest), the controls transactionId / senderNonce /
recipientNonce / queryPending (badRequest; once read transactionId and
senderNonce are echoed even in a failure), the requests -- each a PKCS#10
``tcr`` that parses, unique bodyPartIDs (badRequest), exactly one SignerInfo
(none: badMessageCheck, more: badRequest), its algorithms (badAlg), its signer
(badIdentity): issuerAndSerialNumber naming a certificate in the SignedData
issued by one of the server's CAs ("ra"), or subjectKeyIdentifier naming the key
of one of the requests ("pop"; the CSR's SubjectKeyIdentifier extension or the
SHA-1 of its public key bits), the signed attributes and the signature
(badMessageCheck), each CSR's own signature (popFailed), and last controls the
server does not know (badRequest, RFC 5272 3.2.1.1).

A Query Pending (RFC 5272 6.13) is a PKIData without requests and with one
queryPending control whose value, an OCTET STRING, is the pendToken of an
earlier pending answer.  ``find_original(token)`` (given by the caller, who
keeps the pending requests) returns what that answer was about -- an object
with ``requests``, ``transaction_id`` and ``server_nonce`` -- or None.  In
place of the request checks come: the token is known (badRequest "unknown
pendToken"), the transactionId equals the original request's when that had one
(RFC 5272 6.6), a recipientNonce, when sent, equals the senderNonce of the
server's last answer for the token (badRequest); a "pop" signer must then name
the key of one of the original requests, and the CSRs are not checked again.

``pki_response`` encodes a PKIResponse with the controls statusInfoV2,
transactionId, recipientNonce and senderNonce.  CMCStatusInfoV2 is written with
``otherInfo`` as ANY (pyasn1-modules' CHOICE of two untagged SEQUENCEs cannot
be told apart), holding the DER of a CMCFailInfo or a PendInfo.
"""

import os

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from pyasn1.codec.der import encoder
from pyasn1.type import char, namedtype, tag, univ, useful
from pyasn1_modules import rfc6402

from . import cms
from .ca import utcnow
from .csr import CertificationRequest

OID_PKI_DATA = "1.3.6.1.5.5.7.12.2"
OID_PKI_RESPONSE = "1.3.6.1.5.5.7.12.3"
OID_STATUS_INFO_V2 = "1.3.6.1.5.5.7.7.25"
OID_IDENTIFICATION = "1.3.6.1.5.5.7.7.2"
OID_TRANSACTION_ID = "1.3.6.1.5.5.7.7.5"
OID_SENDER_NONCE = "1.3.6.1.5.5.7.7.6"
OID_RECIPIENT_NONCE = "1.3.6.1.5.5.7.7.7"
OID_REG_INFO = "1.3.6.1.5.5.7.7.18"
OID_QUERY_PENDING = "1.3.6.1.5.5.7.7.21"
# Controls processed (or harmlessly ignored) here; any other one fails the request.
KNOWN_CONTROLS = (OID_IDENTIFICATION, OID_TRANSACTION_ID, OID_SENDER_NONCE, OID_RECIPIENT_NONCE, OID_REG_INFO,
                  OID_QUERY_PENDING)

STATUS = {"success": 0, "failed": 2, "pending": 3}
FAIL_INFO = {
    "badAlg": 0, "badMessageCheck": 1, "badRequest": 2, "badTime": 3, "badCertId": 4, "unsupportedExt": 5,
    "mustArchiveKeys": 6, "badIdentity": 7, "popRequired": 8, "popFailed": 9, "noKeyReuse": 10,
    "internalCAError": 11, "tryLater": 12, "authDataFail": 13,
}
CMS_FAIL_INFO = {"malformed": "badRequest", "algorithm": "badAlg", "signature": "badMessageCheck"}

WHOLE_MESSAGE = (0,)  # bodyPartID 0 refers to the PKIData itself (RFC 5272 3.2.2)


class CmcFailure(Exception):
    """The request is refused with a CMC failure; fail_info is a FAIL_INFO name."""

    def __init__(self, fail_info, reason, body_list=WHOLE_MESSAGE):
        super().__init__(reason)
        self.fail_info = fail_info
        self.reason = reason
        self.body_list = list(body_list)
        self.transaction_id = None
        self.sender_nonce = None


class FullPkiRequest:
    """A checked Full PKI Request."""

    def __init__(self):
        self.transaction_id = None
        self.sender_nonce = None
        self.recipient_nonce = None
        self.requests = []  # [(bodyPartID, csr.CertificationRequest)]; for a query those of the original request
        self.signer = None  # "ra" or "pop"
        self.signer_cert = None
        self.pend_token = None  # a Query Pending: the pendToken asked about
        self.query_body_part_id = None
        self.original = None  # a Query Pending: what find_original returned for the token

    @property
    def body_part_ids(self):
        return [body_part_id for body_part_id, dummy in self.requests]


def _context(number):
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


class _TaggedCertificationRequest(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("bodyPartID", univ.Integer()),
        namedtype.NamedType("certificationRequest", univ.Any()),  # kept as sent: its signature is checked
    )


_TCR = _TaggedCertificationRequest().subtype(implicitTag=_context(0))


class _PKIData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("controlSequence", univ.SequenceOf(componentType=rfc6402.TaggedAttribute())),
        namedtype.NamedType("reqSequence", univ.SequenceOf(componentType=univ.Any())),  # tcr [0], crm [1], orm [2]
        namedtype.NamedType("cmsSequence", univ.SequenceOf(componentType=univ.Any())),
        namedtype.NamedType("otherMsgSequence", univ.SequenceOf(componentType=univ.Any())),
    )


class _StatusInfoV2(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("cMCStatus", univ.Integer()),
        namedtype.NamedType("bodyList", univ.SequenceOf(componentType=rfc6402.BodyPartReference())),
        namedtype.OptionalNamedType("statusString", char.UTF8String()),
        namedtype.OptionalNamedType("otherInfo", univ.Any()),
    )


class _PendInfo(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pendToken", univ.OctetString()),
        namedtype.NamedType("pendTime", useful.GeneralizedTime()),
    )


def _fail(fail_info, reason, body_list=WHOLE_MESSAGE):
    return CmcFailure(fail_info, reason, body_list)


def _decode(data, spec, what):
    try:
        return cms.decode_all(data, spec, what)
    except cms.CmsError as exc:
        raise _fail("badRequest", exc.reason) from exc


# -- request ----------------------------------------------------------------------


_OCTET_CONTROLS = {OID_SENDER_NONCE: ("sender_nonce", "senderNonce"), OID_RECIPIENT_NONCE: ("recipient_nonce", "recipientNonce"),
                   OID_QUERY_PENDING: ("pend_token", "queryPending")}


def _read_controls(pki_data, request):
    """Read transactionId, the nonces and queryPending into request; return [(bodyPartID, OID)] of every control."""
    controls = []
    for control in pki_data["controlSequence"]:
        body_part_id = int(control["bodyPartID"])
        oid = str(control["attrType"])
        values = [bytes(value) for value in control["attrValues"]]
        controls.append((body_part_id, oid))
        if oid != OID_TRANSACTION_ID and oid not in _OCTET_CONTROLS:
            continue
        if len(values) != 1:
            raise _fail("badRequest", "control %s must have exactly one value" % oid, [body_part_id])
        if oid == OID_TRANSACTION_ID:
            request.transaction_id = int(_decode(values[0], univ.Integer(), "the transactionId control"))
            continue
        attribute, what = _OCTET_CONTROLS[oid]
        if oid == OID_QUERY_PENDING:
            if request.query_body_part_id is not None:
                raise _fail("badRequest", "more than one queryPending control", [body_part_id])
            request.query_body_part_id = body_part_id
        setattr(request, attribute, _decode(values[0], univ.OctetString(), "the %s control" % what).asOctets())
    return controls


def _load_csr(body_part_id, der):
    try:
        csr = x509.load_der_x509_csr(der)
        return CertificationRequest(csr)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _fail("badRequest", "request %d is not a usable PKCS#10 certification request" % body_part_id, [body_part_id]) from exc


def _read_requests(pki_data, query):
    """[(bodyPartID, CertificationRequest)] of the tcr requests; CmcFailure for anything else.

    query: the bodyPartID of a queryPending control, whose PKIData must carry no request, or None.
    """
    requests = []
    for raw in pki_data["reqSequence"]:
        raw = bytes(raw)
        if raw[:1] != b"\xa0":
            kind = {b"\xa1": "CRMF (crm)", b"\xa2": "other (orm)"}.get(raw[:1], "unknown")
            raise _fail("badRequest", "only PKCS#10 (tcr) requests are supported, not %s" % kind)
        tcr = _decode(raw, _TCR, "a TaggedCertificationRequest")
        body_part_id = int(tcr["bodyPartID"])
        requests.append((body_part_id, _load_csr(body_part_id, bytes(tcr["certificationRequest"]))))
    if query is not None and requests:
        raise _fail("badRequest", "a queryPending control cannot come with certification requests", [query])
    if query is None and not requests:
        raise _fail("badRequest", "the PKIData carries no certification request")
    return requests


def _find_original(pki_request, find_original):
    """What the queryPending of pki_request asks about (see the module documentation); CmcFailure when it cannot be answered."""
    query = [pki_request.query_body_part_id]
    original = find_original(pki_request.pend_token) if find_original is not None else None
    if original is None:
        raise _fail("badRequest", "unknown pendToken", query)
    if original.transaction_id is not None and pki_request.transaction_id != original.transaction_id:
        raise _fail("badRequest", "the transactionId is not the one of the pending request (RFC 5272 6.6)", query)
    if pki_request.recipient_nonce is not None and pki_request.recipient_nonce != original.server_nonce:
        raise _fail("badRequest", "the recipientNonce is not the senderNonce of the last answer for this pendToken", query)
    return original


def _check_unique(controls, requests):
    seen = set()
    for body_part_id in [b for b, dummy in controls] + [b for b, dummy in requests]:
        if body_part_id in seen or body_part_id == 0:
            raise _fail("badRequest", "bodyPartID %d is used twice (or is the reserved 0)" % body_part_id, [body_part_id])
        seen.add(body_part_id)


def _valid_now(cert):
    now = utcnow()
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _issued_by_server(cert, cas):
    for ca in cas:
        for issuer in ca.issuer_certs():
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
    return False


def _find_ra_signer(message, issuer_der, serial, cas):
    try:
        certs = message.certificates()
    except cms.CmsError as exc:
        raise _fail("badRequest", exc.reason) from exc
    for cert in certs:
        if cms.cert_matches_issuer_serial(cert, issuer_der, serial):
            if not _issued_by_server(cert, cas):
                raise _fail("badIdentity", "the signer certificate was not issued by a CA of this server")
            if not _valid_now(cert):
                raise _fail("badIdentity", "the signer certificate is expired or not yet valid")
            return cert
    raise _fail("badIdentity", "the certificate named by the SignerInfo (issuerAndSerialNumber) is not in the SignedData")


def request_key_identifiers(request):
    """The identifiers a SignerInfo may use for the key of a request (RFC 5272 3.2 a-c)."""
    identifiers = [x509.SubjectKeyIdentifier.from_public_key(request.public_key).digest]
    try:
        identifiers.append(request.csr.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    except (x509.ExtensionNotFound, ValueError):
        pass
    return identifiers


def _find_pop_signer(ski, requests):
    for dummy, request in requests:
        if ski in request_key_identifiers(request):
            return request
    raise _fail("badIdentity", "the SignerInfo subjectKeyIdentifier names the key of none of the requests")


def _check_signature(message, pki_request, requests, cas):
    if not message.signer_infos:
        raise _fail("badMessageCheck", "the SignedData is not signed (no SignerInfo)")
    if len(message.signer_infos) > 1:
        raise _fail("badRequest", "the SignedData must have exactly one SignerInfo, it has %d" % len(message.signer_infos))
    signer_info = message.signer_infos[0]
    try:
        kind, identifier = cms.signer_identifier(signer_info)
    except cms.CmsError as exc:
        raise _fail("badRequest", exc.reason) from exc
    if kind == "issuer_serial":
        pki_request.signer = "ra"
        pki_request.signer_cert = _find_ra_signer(message, identifier[0], identifier[1], cas)
        public_key = pki_request.signer_cert.public_key()
    else:
        pki_request.signer = "pop"
        public_key = _find_pop_signer(identifier, requests).public_key
    try:
        cms.verify_signer_info(signer_info, public_key, OID_PKI_DATA, message.content)
    except cms.CmsError as exc:
        raise _fail(CMS_FAIL_INFO[exc.kind], exc.reason) from exc


def _check_proofs(requests):
    for body_part_id, request in requests:
        try:
            valid = request.csr.is_signature_valid
        except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
            raise _fail("badAlg", "the signature of request %d cannot be checked" % body_part_id, [body_part_id]) from exc
        if not valid:
            raise _fail("popFailed", "the signature of request %d does not verify (no proof of possession)" % body_part_id,
                        [body_part_id])


def _parse(der, cas, pki_request, find_original):
    try:
        message = cms.parse_signed_data(der)
    except cms.CmsError as exc:
        raise _fail("badRequest", exc.reason) from exc
    if message.content_type != OID_PKI_DATA:
        raise _fail("badRequest", "the SignedData content is %s, not id-cct-PKIData" % message.content_type[:64])
    if message.content is None:
        raise _fail("badRequest", "the SignedData carries no PKIData")
    pki_data = _decode(message.content, _PKIData(), "the PKIData")
    controls = _read_controls(pki_data, pki_request)
    requests = _read_requests(pki_data, pki_request.query_body_part_id)
    _check_unique(controls, requests)
    if pki_request.pend_token is not None:
        pki_request.original = _find_original(pki_request, find_original)
        requests = list(pki_request.original.requests)
    _check_signature(message, pki_request, requests, cas)
    if pki_request.original is None:
        _check_proofs(requests)  # those of a query's original request were checked when it came
    unknown = [body_part_id for body_part_id, oid in controls if oid not in KNOWN_CONTROLS]
    if unknown:
        raise _fail("badRequest", "unsupported control(s)", unknown)
    pki_request.requests = requests


def parse_full_pki_request(der, cas, find_original=None):
    """A checked FullPkiRequest for der; cms.NotCms or CmcFailure (see the module documentation).

    find_original(pendToken) looks up the request a Query Pending asks about (None: unknown token).
    """
    pki_request = FullPkiRequest()
    try:
        _parse(der, cas, pki_request, find_original)
    except CmcFailure as failure:
        failure.transaction_id = pki_request.transaction_id
        failure.sender_nonce = pki_request.sender_nonce
        raise
    return pki_request


# -- response ---------------------------------------------------------------------


def _tagged_attribute(body_part_id, oid, value):
    attribute = rfc6402.TaggedAttribute()
    attribute["bodyPartID"] = body_part_id
    attribute["attrType"] = univ.ObjectIdentifier(oid)
    attribute["attrValues"].append(encoder.encode(value))
    return attribute


def _status_info(status, body_list, status_string=None, fail_info=None, pend=None):
    info = _StatusInfoV2()
    info["cMCStatus"] = STATUS[status]
    for index, body_part_id in enumerate(body_list):
        info["bodyList"].getComponentByPosition(index)["bodyPartID"] = body_part_id
    if status_string:
        info["statusString"] = status_string[:300]
    if fail_info is not None:
        info["otherInfo"] = encoder.encode(univ.Integer(FAIL_INFO[fail_info]))
    elif pend is not None:
        token, when = pend
        pend_info = _PendInfo()
        pend_info["pendToken"] = token
        pend_info["pendTime"] = useful.GeneralizedTime(when.strftime("%Y%m%d%H%M%SZ"))
        info["otherInfo"] = encoder.encode(pend_info)
    return info


def new_nonce():
    return os.urandom(16)


def pki_response(status, body_list, transaction_id=None, recipient_nonce=None, status_string=None, fail_info=None, pend=None,
                 sender_nonce=None):
    """DER of a PKIResponse (RFC 5272 3.2.3).

    status is "success", "failed" or "pending"; body_list the bodyPartIDs the
    status is about (at least one: 0 means the whole PKIData); fail_info a
    FAIL_INFO name for "failed"; pend (token bytes, datetime) for "pending";
    sender_nonce the server's own nonce (fresh random bytes when None).
    """
    controls = [(OID_STATUS_INFO_V2, _status_info(status, list(body_list) or list(WHOLE_MESSAGE), status_string, fail_info, pend))]
    if transaction_id is not None:
        controls.append((OID_TRANSACTION_ID, univ.Integer(transaction_id)))
    if recipient_nonce is not None:
        controls.append((OID_RECIPIENT_NONCE, univ.OctetString(recipient_nonce)))
    controls.append((OID_SENDER_NONCE, univ.OctetString(sender_nonce or new_nonce())))
    response = rfc6402.PKIResponse()
    for index, (oid, value) in enumerate(controls):
        response["controlSequence"].append(_tagged_attribute(index + 1, oid, value))
    response["cmsSequence"].clear()  # empty, but present
    response["otherMsgSequence"].clear()
    return encoder.encode(response)
