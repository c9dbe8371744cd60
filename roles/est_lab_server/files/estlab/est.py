"""The EST operations /cacerts, /simpleenroll, /simplereenroll, /csrattrs, and
the helpers /serverkeygen and /fullcmc (modules ``serverkeygen``, ``fullcmc``)
share with them.

Each operation takes the shared LabState, the request context built by the
handler and the CA of the path label, and returns a Response or raises
HttpError.  Order of checks for enrollment: body length (411/413), content
type (415), authentication (401/403), CSR (400), linking to the TLS session
when require_tls_unique is on (400, module ``linking``), identity for reenroll
(400), faults, pending (202), issuance (200).
"""

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .auth import CHALLENGE, check_basic, check_client_cert
from .ca import new_private_key
from .csr import CsrError, parse_body
from .encoding import CSRATTRS_CONTENT_TYPE, PKCS7_CONTENT_TYPE, base64_text, certs_only_body
from .faults import SIGNING_FAULTS, apply_fault
from .linking import CHALLENGE_PASSWORD_ONLY_DER, check_linking, with_challenge_password
from .response import HttpError, Response, text

PKCS10 = "application/pkcs10"


def base64_response(body, content_type, status=200, headers=None):
    return Response(status, body, content_type, dict(headers or {}, **{"Content-Transfer-Encoding": "base64"}))


def der_response(state, der, content_type, status=200, headers=None):
    """A base64 body (wrapped and line-ended as configured) of der."""
    config = state.config
    return base64_response(base64_text(der, config.get("response_wrap"), config.get("response_eol")), content_type, status, headers)


def certs_response(state, certs):
    config = state.config
    body = certs_only_body(certs, config.get("response_wrap"), config.get("response_eol"))
    return base64_response(body, PKCS7_CONTENT_TYPE)


def cacerts(state, ctx, ca):
    ctx.auth = _auth_label(state, ctx)
    fault = ctx.fault = state.faults.take("cacerts")
    if fault == "wrong_key":
        return certs_response(state, [state.throwaway_ca_cert(ca)])
    if fault == "other_ca":
        return certs_response(state, [state.rogue_ca_cert(ca)])

    def build():
        certs = [ca.cert] + state.chain_certs(ca, state.issuer(ca))
        if state.config.get("rollover"):
            certs += ca.rollover_certs(state.key_type)
        return certs_response(state, certs)

    if fault:
        return apply_fault(fault, PKCS7_CONTENT_TYPE, build)
    return build()


def csrattrs(state, ctx, ca):
    del ca  # the same attributes for every label
    ctx.auth = _auth_label(state, ctx)
    fault = ctx.fault = state.faults.take("csrattrs")

    def build():
        config = state.config
        wanted = config.get("csrattrs")
        if wanted == "404":  # a server without /csrattrs, also when it requires linking
            return text(404, "no CSR attributes for this CA")
        if config.get("require_tls_unique"):  # RFC 7030 4.5.2: a server that requires linking MUST list challengePassword
            if wanted is None:
                return der_response(state, CHALLENGE_PASSWORD_ONLY_DER, CSRATTRS_CONTENT_TYPE)
            wanted = with_challenge_password(wanted)
        if wanted is None:
            return Response(204)
        from .csrattrs import encode_csrattrs  # pyasn1 is only needed when csrattrs are configured
        return der_response(state, encode_csrattrs(wanted), CSRATTRS_CONTENT_TYPE)

    if fault:
        return apply_fault(fault, CSRATTRS_CONTENT_TYPE, build)
    return build()


def simpleenroll(state, ctx, ca):
    return _enroll(state, ctx, ca, reenroll=False)


def simplereenroll(state, ctx, ca):
    return _enroll(state, ctx, ca, reenroll=True)


def _auth_label(state, ctx):
    """"cert", "basic" or "none" for the request log."""
    client = check_client_cert(ctx.peer_cert_der, state.cas.all())
    if client.valid:
        return "cert"
    if check_basic(ctx.headers.get("Authorization"), state.config.get("users")) == "ok":
        return "basic"
    return "none"


def check_content_type(ctx, expected=PKCS10):
    """415 unless the request's media type (parameters and case ignored) is expected."""
    value = ctx.headers.get("Content-Type")
    if value is None:
        raise HttpError(415, "Content-Type %s is required" % expected)
    media_type = value.split(";", 1)[0].strip().lower()
    if media_type != expected:
        raise HttpError(415, "Content-Type must be %s, not %s" % (expected, media_type[:64]))


def authenticate(state, ctx, reenroll, ca):
    """Check Basic and client certificate; return the ClientCert result."""
    basic = check_basic(ctx.headers.get("Authorization"), state.config.get("users"))
    client = check_client_cert(ctx.peer_cert_der, state.cas.all())
    ctx.auth = "cert" if client.valid else "basic" if basic == "ok" else "none"
    if basic == "invalid":
        raise HttpError(401, "HTTP Basic credentials rejected", {"WWW-Authenticate": CHALLENGE})
    if reenroll:
        if not client.present:
            raise HttpError(403, "simplereenroll requires a TLS client certificate")
        if not client.valid:
            raise HttpError(403, client.problem)
        if client.issuer_ca is not ca:
            raise HttpError(403, "client certificate was not issued by the CA of this label")
        return client
    if client.valid or basic == "ok" or not state.config.get("require_auth"):
        return client
    reason = "authentication required (HTTP Basic or a TLS client certificate)"
    if client.problem:
        reason += ": " + client.problem
    raise HttpError(401, reason, {"WWW-Authenticate": CHALLENGE})


def _check_same_identity(request, cert):
    """RFC 7030 4.2.2: subject and subjectAltName must match the certificate being renewed."""
    if request.subject != cert.subject:
        raise HttpError(400, "CSR subject %s differs from the client certificate subject %s"
                        % (request.subject.rfc4514_string()[:200], cert.subject.rfc4514_string()[:200]))
    try:
        cert_san = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        cert_san = set()
    if request.san_names() != cert_san:
        raise HttpError(400, "CSR subjectAltName differs from the client certificate subjectAltName")


def fresh_key_like(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return new_private_key("rsa").public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(public_key.curve).public_key()
    return new_private_key("ec").public_key()


def issue_certificate(state, ca, request, fault, public_key=None):
    """The certificate for request (for public_key when given, else the CSR's key), faults applied.

    ca is the issuing CA: the label's CA or its intermediate (``state.issuer``).
    Raises ValueError or TypeError when the CSR cannot be turned into a certificate.
    """
    public_key = public_key or request.public_key
    signer = None
    if fault == "wrong_key":
        public_key = fresh_key_like(public_key)
    elif fault == "other_ca":
        signer = state.rogue_signer(ca)
    san = request.san if state.config.get("copy_sans") else None
    cert = ca.issue(request.subject, public_key, state.config.lifetime_seconds(),
                    san=san, key_usage=request.key_usage, eku=request.eku, signer=signer,
                    extensions=state.revocation.extensions(ca))
    state.revocation.record(ca, cert)
    return cert


def _issue(state, ca, request, fault):
    issuer = state.issuer(ca)
    try:
        cert = issue_certificate(state, issuer, request, fault)
    except (ValueError, TypeError) as exc:
        raise HttpError(400, "cannot issue a certificate for this CSR: %s" % str(exc)[:200]) from exc
    return certs_response(state, [cert] + state.chain_certs(ca, issuer))


def pending_answer(state, key_id):
    """None when the request for key_id may be answered now, else the 202 Response (Retry-After)."""
    if state.pending.approved(key_id, state.config.get("pending")):
        return None
    retry_after = state.config.get("retry_after")
    return text(202, "request accepted, waiting for approval; retry after %d seconds" % retry_after,
                {"Retry-After": str(retry_after)})


def _enroll(state, ctx, ca, reenroll):
    op = "simplereenroll" if reenroll else "simpleenroll"
    body = ctx.read_body(state.config.get("max_body_bytes"))
    check_content_type(ctx)
    client = authenticate(state, ctx, reenroll, ca)
    try:
        request = parse_body(body)
    except CsrError as exc:
        raise HttpError(400, str(exc)) from exc
    check_linking(state, ctx, request)
    if reenroll:
        _check_same_identity(request, client.cert)
    fault = ctx.fault = state.faults.take(op)
    if fault and fault not in SIGNING_FAULTS:
        return apply_fault(fault, PKCS7_CONTENT_TYPE, lambda: _issue(state, ca, request, None))
    waiting = pending_answer(state, request.key_id)
    if waiting is not None:
        return waiting
    return _issue(state, ca, request, fault)
