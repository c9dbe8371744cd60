"""CMS (RFC 5652) SignedData: reading and verifying a client's, signing the server's.

Used by /fullcmc (the Full PKI Request and Response) and by /serverkeygen (the
signed key package).  Needs pyasn1 and pyasn1-modules, so the operations import
it only when they run.

The reading side keeps the bytes the signer produced where they matter: the
signed attributes, the certificates and (in ``cmc``) the embedded CSRs are
decoded as ANY, so a signature is checked over what was signed rather than
over a re-encoding.

Problems are raised as ``CmsError`` with a ``kind``:

* ``"malformed"``  -- not a well-formed SignedData (or a missing part);
* ``"algorithm"``  -- a digest or signature algorithm this server does not do;
* ``"signature"``  -- the signed attributes or the signature do not verify.
"""

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder
from pyasn1.type import namedtype, tag, univ
from pyasn1_modules import rfc5280, rfc5652

OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"

OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_ED25519 = "1.3.101.112"

# Digest algorithms accepted in a SignerInfo: OID -> (name, hash class).
DIGESTS = {
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
}
DIGEST_OIDS = {name: oid for oid, (name, dummy) in DIGESTS.items()}

# Signature algorithms: OID -> (key kind, digest name or None for "the SignerInfo's digest").
SIGNATURES = {
    OID_RSA_ENCRYPTION: ("rsa", None),
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    OID_EC_PUBLIC_KEY: ("ec", None),
    "1.2.840.10045.4.3.2": ("ec", "sha256"),
    "1.2.840.10045.4.3.3": ("ec", "sha384"),
    "1.2.840.10045.4.3.4": ("ec", "sha512"),
    OID_ED25519: ("ed25519", "sha512"),
}
SIGNATURE_OIDS = {("rsa", "sha256"): "1.2.840.113549.1.1.11", ("ec", "sha256"): "1.2.840.10045.4.3.2",
                  ("ed25519", "sha512"): OID_ED25519}

HASH_CLASSES = dict(DIGESTS.values())


class NotCms(ValueError):
    """The bytes are not a CMS ContentInfo at all."""


class CmsError(ValueError):
    """A SignedData problem; kind is "malformed", "algorithm" or "signature"."""

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _context(number):
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


class RawSignerInfo(univ.Sequence):
    """SignerInfo with the signed attributes kept as their encoded bytes (without the [0] header)."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("sid", rfc5652.SignerIdentifier()),
        namedtype.NamedType("digestAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.OptionalNamedType("signedAttrs", univ.Any().subtype(implicitTag=_context(0))),
        namedtype.NamedType("signatureAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("signature", univ.OctetString()),
        namedtype.OptionalNamedType("unsignedAttrs", univ.Any().subtype(implicitTag=_context(1))),
    )


class RawSignedData(univ.Sequence):
    """SignedData with each CertificateChoices kept as its encoded bytes."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("digestAlgorithms", univ.SetOf(componentType=rfc5280.AlgorithmIdentifier())),
        namedtype.NamedType("encapContentInfo", rfc5652.EncapsulatedContentInfo()),
        namedtype.OptionalNamedType("certificates", univ.SetOf(componentType=univ.Any()).subtype(implicitTag=_context(0))),
        namedtype.OptionalNamedType("crls", univ.Any().subtype(implicitTag=_context(1))),
        namedtype.NamedType("signerInfos", univ.SetOf(componentType=RawSignerInfo())),
    )


def short_error(exc):
    """The first line of an exception message, at most 120 characters (or the exception class name)."""
    lines = str(exc).strip().splitlines()
    return lines[0][:120] if lines else type(exc).__name__


def decode_all(data, spec, what, der=False):
    """Decode all of data against spec; CmsError("malformed") on any problem or trailing bytes."""
    try:
        value, rest = (der_decoder if der else ber_decoder).decode(bytes(data), asn1Spec=spec)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # pyasn1 raises many kinds on hostile input
        raise CmsError("malformed", "%s is not valid ASN.1 (%s)" % (what, short_error(exc))) from exc
    if rest:
        raise CmsError("malformed", "%s has %d bytes of trailing data" % (what, len(rest)))
    return value


def der_header(tag_byte, length):
    """The DER identifier and length octets of a TLV."""
    if length < 0x80:
        return bytes([tag_byte, length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag_byte, 0x80 | len(size)]) + size


class SignedMessage:
    """The parts of a SignedData the server looks at."""

    def __init__(self, signed_data):
        encap = signed_data["encapContentInfo"]
        self.content_type = str(encap["eContentType"])
        self.content = encap["eContent"].asOctets() if encap["eContent"].isValue else None
        certs = signed_data["certificates"]
        # Only the plain "certificate" choice (a SEQUENCE); attribute certificates and others are skipped.
        self.certificates_der = [bytes(c) for c in certs if bytes(c)[:1] == b"\x30"] if certs.isValue else []
        self.signer_infos = list(signed_data["signerInfos"])

    def certificates(self):
        """The certificates as cryptography objects; CmsError("malformed") for one that does not load."""
        result = []
        for der in self.certificates_der:
            try:
                result.append(x509.load_der_x509_certificate(der))
            except ValueError as exc:
                raise CmsError("malformed", "a certificate in the SignedData cannot be parsed") from exc
        return result


def parse_content_info(der):
    """(contentType OID, content bytes) of a ContentInfo; NotCms when der is not one."""
    try:
        info, rest = ber_decoder.decode(bytes(der), asn1Spec=rfc5652.ContentInfo())
    except Exception as exc:  # pylint: disable=broad-exception-caught  # pyasn1 raises many kinds on hostile input
        raise NotCms("the body is not a CMS ContentInfo") from exc
    if rest:
        raise NotCms("the CMS ContentInfo has %d bytes of trailing data" % len(rest))
    return str(info["contentType"]), bytes(info["content"])


def parse_signed_data(der):
    """A SignedMessage for a ContentInfo(SignedData); NotCms or CmsError("malformed")."""
    content_type, content = parse_content_info(der)
    if content_type != OID_SIGNED_DATA:
        raise CmsError("malformed", "the CMS content is %s, not SignedData" % content_type[:64])
    return SignedMessage(decode_all(content, RawSignedData(), "the SignedData"))


def signer_identifier(signer_info):
    """("issuer_serial", (issuer Name DER, serial)) or ("ski", bytes)."""
    sid = signer_info["sid"]
    try:
        if sid.getName() == "issuerAndSerialNumber":
            ias = sid["issuerAndSerialNumber"]
            return "issuer_serial", (encoder.encode(ias["issuer"]), int(ias["serialNumber"]))
        return "ski", sid["subjectKeyIdentifier"].asOctets()
    except Exception as exc:  # pylint: disable=broad-exception-caught  # pyasn1 raises many kinds on hostile input
        raise CmsError("malformed", "the SignerInfo signer identifier is malformed (%s)" % short_error(exc)) from exc


def cert_matches_issuer_serial(cert, issuer_der, serial):
    return cert.serial_number == serial and cert.issuer.public_bytes() == issuer_der


def key_kind(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return None


def _attribute_values(attrs):
    """{type OID: [value DER, ...]} of a decoded SET OF Attribute; CmsError on a repeated type."""
    result = {}
    for attr in attrs:
        oid = str(attr["attrType"])
        if oid in result:
            raise CmsError("signature", "signed attribute %s appears twice" % oid)
        result[oid] = [bytes(value) for value in attr["attrValues"]]
    return result


def _single(values, spec, name):
    if values is None:
        raise CmsError("signature", "the signed attributes lack %s" % name)
    if len(values) != 1:
        raise CmsError("signature", "the %s attribute must have exactly one value" % name)
    return decode_all(values[0], spec, "the %s attribute" % name)


def _verify_raw(public_key, kind, hash_name, signature, data):
    try:
        if kind == "rsa":
            public_key.verify(signature, data, padding.PKCS1v15(), HASH_CLASSES[hash_name]())
        elif kind == "ec":
            public_key.verify(signature, data, ec.ECDSA(HASH_CLASSES[hash_name]()))
        else:
            public_key.verify(signature, data)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise CmsError("signature", "the SignerInfo signature does not verify") from exc


def verify_signer_info(signer_info, public_key, content_type, content):
    """Check a SignerInfo (RFC 5652 5.4, 5.6) against public_key; raise CmsError when it does not hold."""
    digest_oid = str(signer_info["digestAlgorithm"]["algorithm"])
    if digest_oid not in DIGESTS:
        raise CmsError("algorithm", "digest algorithm %s is not supported (SHA-256, SHA-384, SHA-512)" % digest_oid[:64])
    digest_name = DIGESTS[digest_oid][0]
    sig_oid = str(signer_info["signatureAlgorithm"]["algorithm"])
    if sig_oid not in SIGNATURES:
        raise CmsError("algorithm", "signature algorithm %s is not supported" % sig_oid[:64])
    kind, sig_hash = SIGNATURES[sig_oid]
    if key_kind(public_key) != kind:
        raise CmsError("algorithm", "signature algorithm %s does not fit the signer's %s key" % (sig_oid, key_kind(public_key) or "unknown"))
    if kind == "ed25519" and digest_name != "sha512":
        raise CmsError("algorithm", "Ed25519 SignerInfos use SHA-512 as the digest algorithm (RFC 8419)")
    if content is None:
        raise CmsError("malformed", "the SignedData has no encapsulated content")
    if not signer_info["signedAttrs"].isValue:
        raise CmsError("signature", "the SignerInfo has no signed attributes")
    raw = bytes(signer_info["signedAttrs"])
    signed = der_header(0x31, len(raw)) + raw  # signed as a SET OF, not with the [0] tag (RFC 5652 5.4)
    attrs = _attribute_values(decode_all(signed, univ.SetOf(componentType=rfc5652.Attribute()), "the signed attributes"))
    if str(_single(attrs.get(OID_CONTENT_TYPE), univ.ObjectIdentifier(), "contentType")) != content_type:
        raise CmsError("signature", "the contentType attribute does not name the content type %s" % content_type)
    digest = hashlib.new(digest_name, content).digest()
    if _single(attrs.get(OID_MESSAGE_DIGEST), univ.OctetString(), "messageDigest").asOctets() != digest:
        raise CmsError("signature", "the messageDigest attribute does not match the content")
    _verify_raw(public_key, kind, sig_hash or digest_name, signer_info["signature"].asOctets(), signed)


# -- signing ----------------------------------------------------------------------


def _algorithm(oid, null_parameters=False):
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(oid)
    if null_parameters:
        algorithm["parameters"] = encoder.encode(univ.Null(""))
    return algorithm


def _attribute(oid, value):
    attribute = rfc5652.Attribute()
    attribute["attrType"] = univ.ObjectIdentifier(oid)
    attribute["attrValues"].append(encoder.encode(value))
    return attribute


def _sign_raw(key, data):
    """(signature algorithm OID, NULL parameters?, digest name, signature) for the signer key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return SIGNATURE_OIDS[("rsa", "sha256")], True, "sha256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return SIGNATURE_OIDS[("ec", "sha256")], False, "sha256", key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return OID_ED25519, False, "sha512", key.sign(data)
    raise TypeError("cannot sign CMS with a %s" % type(key).__name__)


def _digest_name(key):
    return "sha512" if isinstance(key, ed25519.Ed25519PrivateKey) else "sha256"


def _signer_info(content_type, content, signer_cert, signer_key, corrupt):
    """(digest AlgorithmIdentifier, SignerInfo) over content for signer_key as signer_cert (see sign_signed_data)."""
    digest_name = _digest_name(signer_key)
    digest_alg = _algorithm(DIGEST_OIDS[digest_name])
    attrs = univ.SetOf(componentType=rfc5652.Attribute())
    attrs.append(_attribute(OID_CONTENT_TYPE, univ.ObjectIdentifier(content_type)))
    attrs.append(_attribute(OID_MESSAGE_DIGEST, univ.OctetString(hashlib.new(digest_name, content).digest())))
    signed = encoder.encode(attrs)  # DER: the SET OF is sorted
    sig_oid, null_parameters, dummy, signature = _sign_raw(signer_key, signed)
    if corrupt:
        signature = signature[:-1] + bytes([signature[-1] ^ 0x01])

    signer_asn = decode_all(signer_cert.public_bytes(serialization.Encoding.DER), rfc5280.Certificate(), "the signer certificate", der=True)
    signer_info = rfc5652.SignerInfo()
    signer_info["version"] = 1
    signer_info["sid"]["issuerAndSerialNumber"]["issuer"] = signer_asn["tbsCertificate"]["issuer"]
    signer_info["sid"]["issuerAndSerialNumber"]["serialNumber"] = signer_asn["tbsCertificate"]["serialNumber"]
    signer_info["digestAlgorithm"] = digest_alg
    for attribute in decode_all(signed, univ.SetOf(componentType=rfc5652.Attribute()), "the signed attributes", der=True):
        signer_info["signedAttrs"].append(attribute)
    signer_info["signatureAlgorithm"] = _algorithm(sig_oid, null_parameters)
    signer_info["signature"] = signature
    return digest_alg, signer_info


def sign_signed_data(content_type, content, signer_cert, signer_key, certs, corrupt=False):
    """DER of ContentInfo(SignedData) over content, signed by signer_key as signer_cert.

    One SignerInfo (version 1, issuerAndSerialNumber) with the signed attributes
    contentType and messageDigest; certs (cryptography certificates) go into
    SignedData.certificates.  corrupt=True flips a bit of the signature (fault
    injection).  signer_cert and signer_key None: no SignerInfo (and no
    digestAlgorithms) at all, an unsigned SignedData.
    """
    signed_data = rfc5652.SignedData()
    signed_data["version"] = 1 if content_type == OID_DATA else 3  # RFC 5652 5.1
    signed_data["digestAlgorithms"].clear()
    signed_data["encapContentInfo"]["eContentType"] = univ.ObjectIdentifier(content_type)
    signed_data["encapContentInfo"]["eContent"] = content
    for index, cert in enumerate(certs):
        asn = decode_all(cert.public_bytes(serialization.Encoding.DER), rfc5280.Certificate(), "a certificate", der=True)
        signed_data["certificates"].getComponentByPosition(index)["certificate"] = asn
    signed_data["signerInfos"].clear()
    if signer_key is not None:
        digest_alg, signer_info = _signer_info(content_type, content, signer_cert, signer_key, corrupt)
        signed_data["digestAlgorithms"].append(digest_alg)
        signed_data["signerInfos"].append(signer_info)

    info = rfc5652.ContentInfo()
    info["contentType"] = rfc5652.id_signedData
    info["content"] = encoder.encode(signed_data)
    return encoder.encode(info)
