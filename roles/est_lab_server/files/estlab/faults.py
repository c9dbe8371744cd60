"""Fault injection: make the next N answers of an operation (or all of them) wrong.

A fault fires on a request that would otherwise have been answered normally:
for simpleenroll/simplereenroll/serverkeygen that is after the method, content
type, auth and CSR checks passed (a 4xx is never replaced), for fullcmc after
the CMC checks passed (a CMC failure is never replaced), for cacerts/csrattrs on
every GET.

``wrong_key`` and ``other_ca`` change what is signed, and the fullcmc-only
``bad_signature`` (the PKIResponse signature does not verify) and ``wrong_nonce``
(recipientNonce is not the request's senderNonce) change the signed response,
so the operations handle them; every other fault rewrites the response here.
"""

import base64
import threading

from .response import Response, text

FAULT_OPS = ("simpleenroll", "simplereenroll", "cacerts", "csrattrs", "serverkeygen", "fullcmc")
FAULTS = ("http500", "garbage", "bad_pkcs7", "empty", "truncated", "wrong_content_type", "wrong_key", "other_ca", "close",
          "bad_signature", "wrong_nonce")
SIGNING_FAULTS = ("wrong_key", "other_ca")
CMC_FAULTS = ("bad_signature", "wrong_nonce")  # fullcmc only

# Well-formed DER (an OCTET STRING), but not a ContentInfo.
_NOTE = b"estlab bad_pkcs7 fault: valid DER, not PKCS#7"
NOT_PKCS7 = bytes([0x04, len(_NOTE)]) + _NOTE


class FaultError(ValueError):
    """A fault request is not valid."""


class FaultTable:

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = {}

    def set(self, op, fault, count=None):
        if op not in FAULT_OPS:
            raise FaultError("op must be one of %s" % ", ".join(FAULT_OPS))
        if fault not in FAULTS:
            raise FaultError("fault must be one of %s" % ", ".join(FAULTS))
        if op == "csrattrs" and fault in SIGNING_FAULTS:
            raise FaultError("fault %s does not apply to csrattrs" % fault)
        if op != "fullcmc" and fault in CMC_FAULTS:
            raise FaultError("fault %s only applies to fullcmc" % fault)
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise FaultError("count must be null (persistent) or an integer >= 1")
        with self._lock:
            self._faults[op] = {"fault": fault, "remaining": count}

    def take(self, op):
        """The fault to apply to this request of op (consuming one use), or None."""
        with self._lock:
            entry = self._faults.get(op)
            if entry is None:
                return None
            if entry["remaining"] is not None:
                entry["remaining"] -= 1
                if entry["remaining"] <= 0:
                    del self._faults[op]
            return entry["fault"]

    def clear(self):
        with self._lock:
            self._faults.clear()

    def snapshot(self):
        with self._lock:
            return {op: dict(entry) for op, entry in self._faults.items()}


def apply_fault(fault, content_type, build_good):
    """The response for one of the non-signing faults.

    content_type is the one of the correct answer (kept where the fault is
    about the body); build_good is a callable returning the correct Response,
    only called for ``truncated``.
    """
    def with_body(body, body_type=None):
        return Response(200, body, body_type or content_type)

    if fault == "http500":
        return text(500, "injected fault: internal server error")
    if fault == "garbage":
        return with_body(b"%%% this is not base64 %%%\r\n<>{}[]\x00\xff\r\n")
    if fault == "bad_pkcs7":
        return with_body(base64.encodebytes(NOT_PKCS7))
    if fault == "empty":
        return with_body(b"")
    if fault == "truncated":
        response = build_good()
        response.body = response.body[:len(response.body) // 2]
        return response
    if fault == "wrong_content_type":
        return with_body(b"<html><body><h1>Welcome</h1><p>This is not EST.</p></body></html>\n", "text/html; charset=utf-8")
    if fault == "close":
        return Response(0, drop=True)
    raise FaultError("fault %s cannot be applied here" % fault)
