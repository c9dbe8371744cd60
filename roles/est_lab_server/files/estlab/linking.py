"""Linking identity and proof-of-possession (RFC 7030 3.5) with tls-unique (RFC 5929).

With ``require_tls_unique`` on, a CSR POSTed to /simpleenroll or /simplereenroll
must carry a challengePassword attribute (1.2.840.113549.1.9.7) whose value is the
base64 (RFC 4648 4) of the tls-unique channel binding of the TLS connection the
request arrived on: the CSR was then signed after that handshake, by the client
that authenticated on it.  The value is compared as text, exactly; it may be a
UTF8String (what cryptography writes by default) or a PrintableString.

/serverkeygen does not require the link: the server ignores the CSR's public key
and signature there (RFC 7030 4.4.1), so there is no proof of possession to link.
A challengePassword that a /serverkeygen CSR does carry is verified all the same
(RFC 7030 3.5: "If tls-unique information is included by the client, the server
MUST verify it").  /fullcmc has its own linking (RFC 5272 6) and is not checked.

tls-unique exists only up to TLS 1.2 (RFC 9266; OpenSSL does hand out a value on
TLS 1.3, which is not one), so a linked request over TLS 1.3 is refused with a
reason that says so.

With the option on, /csrattrs lists challengePassword (RFC 7030 4.5.2: a server
that requires linking MUST) when the configured ``csrattrs`` does not already.
"""

import base64
import hmac

from cryptography.x509.oid import AttributeOID

from .response import HttpError

OID_CHALLENGE_PASSWORD = AttributeOID.CHALLENGE_PASSWORD.dotted_string  # 1.2.840.113549.1.9.7

# DirectoryString choices accepted for the value: ASN.1 tag -> codec.
STRING_TYPES = {12: "utf-8", 19: "ascii"}  # UTF8String, PrintableString
TAG_NAMES = {12: "UTF8String", 19: "PrintableString", 20: "TeletexString", 22: "IA5String", 28: "UniversalString",
             30: "BMPString"}

# DER of the CsrAttrs SEQUENCE { challengePassword OID }: what /csrattrs answers when
# linking is required and nothing else is configured (no pyasn1 needed for it).
CHALLENGE_PASSWORD_ONLY_DER = bytes.fromhex("300b06092a864886f70d010907")

TLS13_REASON = ("linking identity and POP (RFC 7030 3.5) needs TLS 1.2: this %s connection has no tls-unique "
                "(RFC 9266); send the request over a TLS 1.2 connection, with challengePassword = base64 of its tls-unique")
MISSING_REASON = ("challengePassword (the base64 tls-unique of this TLS session) is missing: this server requires "
                  "linking of identity and POP information (RFC 7030 3.5)")
MISMATCH_REASON = ("challengePassword does not match the tls-unique of this TLS session (RFC 7030 3.5): the CSR must be "
                   "signed for the TLS connection it is sent over")


def _challenge_password(csr):
    """The challengePassword text of csr, None when there is none; HttpError(400) when it cannot be one."""
    try:
        found = [attribute for attribute in csr.attributes if attribute.oid == AttributeOID.CHALLENGE_PASSWORD]
    except ValueError as exc:  # e.g. an attribute with no or several values
        raise HttpError(400, "the CSR's attributes cannot be read: %s" % str(exc)[:200]) from exc
    if not found:
        return None
    if len(found) > 1:
        raise HttpError(400, "the CSR carries challengePassword %d times (a single-valued attribute, RFC 2985 5.4.1)" % len(found))
    attribute = found[0]
    tag = getattr(attribute, "_type", 12)  # cryptography keeps the DirectoryString choice in _type
    if tag not in STRING_TYPES:
        raise HttpError(400, "challengePassword must be a UTF8String or PrintableString, not %s"
                        % TAG_NAMES.get(tag, "an ASN.1 value of tag %d" % tag))
    try:
        return attribute.value.decode(STRING_TYPES[tag])
    except UnicodeDecodeError as exc:
        raise HttpError(400, "challengePassword is not a valid %s" % TAG_NAMES[tag]) from exc


def check_linking(state, ctx, request, required=True):
    """Raise HttpError(400) unless request is linked to ctx's TLS session, when require_tls_unique is on.

    required=False (/serverkeygen) only checks a challengePassword that is present.
    """
    if not state.config.get("require_tls_unique"):
        return
    given = _challenge_password(request.csr)
    if given is None and not required:
        return
    binding = ctx.tls_unique()
    if binding is None:
        raise HttpError(400, TLS13_REASON % (ctx.tls_version() or "non-TLS"))
    if given is None:
        raise HttpError(400, MISSING_REASON)
    expected = base64.b64encode(binding).decode("ascii")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("ascii")):
        raise HttpError(400, MISMATCH_REASON)


def lists_challenge_password(items):
    """Whether a csrattrs item list names challengePassword (as an OID or as an attribute)."""
    for item in items:
        oid = item if isinstance(item, str) else item.get("oid") if isinstance(item, dict) else None
        if oid == OID_CHALLENGE_PASSWORD:
            return True
    return False


def with_challenge_password(wanted):
    """The csrattrs description wanted with challengePassword appended when it lacks it.

    None (no attributes) becomes ["1.2.840.113549.1.9.7"]; a list gets the OID at
    its end; the template form gets it at the end of its "attributes".  "404" is
    not a description and is left to the caller.
    """
    if wanted is None:
        return [OID_CHALLENGE_PASSWORD]
    if isinstance(wanted, list):
        return wanted if lists_challenge_password(wanted) else wanted + [OID_CHALLENGE_PASSWORD]
    if isinstance(wanted, dict):
        items = wanted.get("attributes", [])
        if isinstance(items, list) and not lists_challenge_password(items):
            return dict(wanted, attributes=items + [OID_CHALLENGE_PASSWORD])
    return wanted
