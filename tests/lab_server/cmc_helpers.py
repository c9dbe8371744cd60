"""Test-side CMS / CMC (RFC 5652, RFC 5272): build Full PKI Requests, read PKI Responses;
and CSRs with extra attributes (RFC 7030 4.4.1 asymmDecryptKeyID, SMIMECapabilities).

Written against pyasn1, pyasn1-modules and cryptography only -- independent of
the lab server's ``estlab.cms``/``estlab.cmc`` and of the collection's client --
with knobs to build broken requests for the failure tests.
"""

import base64
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import char, namedtype, univ
from pyasn1_modules import rfc2986, rfc5280, rfc5652, rfc6402

from lab_helpers import make_csr

CMC_REQUEST_TYPE = "application/pkcs7-mime; smime-type=CMC-request"
CMC_RESPONSE_TYPE = "application/pkcs7-mime; smime-type=CMC-response"

OID_PKI_DATA = "1.3.6.1.5.5.7.12.2"
OID_PKI_RESPONSE = "1.3.6.1.5.5.7.12.3"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_STATUS_INFO_V2 = "1.3.6.1.5.5.7.7.25"
OID_IDENTIFICATION = "1.3.6.1.5.5.7.7.2"
OID_TRANSACTION_ID = "1.3.6.1.5.5.7.7.5"
OID_SENDER_NONCE = "1.3.6.1.5.5.7.7.6"
OID_RECIPIENT_NONCE = "1.3.6.1.5.5.7.7.7"
OID_GET_CERT = "1.3.6.1.5.5.7.7.15"
OID_QUERY_PENDING = "1.3.6.1.5.5.7.7.21"
OID_KP_CMC_RA = "1.3.6.1.5.5.7.3.28"
OID_ASYMM_DECRYPT_KEY_ID = "1.2.840.113549.1.9.16.2.54"
OID_SMIME_CAPABILITIES = "1.2.840.113549.1.9.15"

DIGEST_OIDS = {"sha1": "1.3.14.3.2.26", "sha256": "2.16.840.1.101.3.4.2.1", "sha384": "2.16.840.1.101.3.4.2.2",
               "sha512": "2.16.840.1.101.3.4.2.3"}
HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
RSA_SIG = {"sha1": "1.2.840.113549.1.1.5", "sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12",
           "sha512": "1.2.840.113549.1.1.13"}
ECDSA_SIG = {"sha1": "1.2.840.10045.4.1", "sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3",
             "sha512": "1.2.840.10045.4.3.4"}
ED25519 = "1.3.101.112"

STATUS = {0: "success", 2: "failed", 3: "pending"}
FAIL_INFO = {0: "badAlg", 1: "badMessageCheck", 2: "badRequest", 3: "badTime", 4: "badCertId", 5: "unsupportedExt",
             6: "mustArchiveKeys", 7: "badIdentity", 8: "popRequired", 9: "popFailed", 10: "noKeyReuse",
             11: "internalCAError", 12: "tryLater", 13: "authDataFail"}


class StatusInfoV2(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("cMCStatus", univ.Integer()),
        namedtype.NamedType("bodyList", univ.SequenceOf(componentType=rfc6402.BodyPartReference())),
        namedtype.OptionalNamedType("statusString", char.UTF8String()),
        namedtype.OptionalNamedType("otherInfo", univ.Any()),
    )


def ski_of(public_key):
    """SHA-1 of the public key bits (RFC 5280 4.2.1.2 method 1)."""
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


def _algorithm(oid, null=False):
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(oid)
    if null:
        algorithm["parameters"] = encoder.encode(univ.Null(""))
    return algorithm


def _attribute(oid, value_der):
    attribute = rfc5652.Attribute()
    attribute["attrType"] = univ.ObjectIdentifier(oid)
    attribute["attrValues"].append(value_der)
    return attribute


def _sign(key, data, digest):
    """(signature algorithm, signature) with key over data."""
    if isinstance(key, rsa.RSAPrivateKey):
        return _algorithm(RSA_SIG[digest], null=True), key.sign(data, padding.PKCS1v15(), HASHES[digest]())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _algorithm(ECDSA_SIG[digest]), key.sign(data, ec.ECDSA(HASHES[digest]()))
    return _algorithm(ED25519), key.sign(data)


def signed_data(content_type, content, key, signer_cert=None, ski=None, digest=None, extra_certs=(),
                tamper=None, signers=1, digested=None, include_signer_cert=True):
    """DER ContentInfo(SignedData) over content.

    tamper: None, "signature" (flip a signature bit), "content_type" (a wrong
    contentType attribute), "no_attrs" (sign the content directly, without signed
    attributes).  digested: other bytes for the messageDigest attribute (a content
    swapped after signing).  signers: how many (identical) SignerInfos to
    include, 0 for none.
    """
    if digest is None:
        digest = "sha512" if isinstance(key, ed25519.Ed25519PrivateKey) else "sha256"
    digest_alg = _algorithm(DIGEST_OIDS[digest])
    info = rfc5652.SignerInfo()
    if signer_cert is not None:
        cert_asn, dummy = decoder.decode(signer_cert.public_bytes(serialization.Encoding.DER), asn1Spec=rfc5280.Certificate())
        info["version"] = 1
        info["sid"]["issuerAndSerialNumber"]["issuer"] = cert_asn["tbsCertificate"]["issuer"]
        info["sid"]["issuerAndSerialNumber"]["serialNumber"] = cert_asn["tbsCertificate"]["serialNumber"]
    else:
        info["version"] = 3
        info["sid"]["subjectKeyIdentifier"] = ski if ski is not None else ski_of(key.public_key())
    info["digestAlgorithm"] = digest_alg
    if tamper == "no_attrs":
        signature_alg, signature = _sign(key, content, digest)
    else:
        declared = "1.2.3.4" if tamper == "content_type" else content_type
        attrs = univ.SetOf(componentType=rfc5652.Attribute())
        attrs.append(_attribute(OID_CONTENT_TYPE, encoder.encode(univ.ObjectIdentifier(declared))))
        message_digest = hashlib.new(digest, content if digested is None else digested).digest()
        attrs.append(_attribute(OID_MESSAGE_DIGEST, encoder.encode(univ.OctetString(message_digest))))
        signed = encoder.encode(attrs)
        for attribute in decoder.decode(signed, asn1Spec=univ.SetOf(componentType=rfc5652.Attribute()))[0]:
            info["signedAttrs"].append(attribute)
        signature_alg, signature = _sign(key, signed, digest)
    if tamper == "signature":
        signature = signature[:-3] + bytes([signature[-3] ^ 0x10]) + signature[-2:]
    info["signatureAlgorithm"] = signature_alg
    info["signature"] = signature

    data = rfc5652.SignedData()
    data["version"] = 3
    data["digestAlgorithms"].append(digest_alg)
    data["encapContentInfo"]["eContentType"] = univ.ObjectIdentifier(content_type)
    data["encapContentInfo"]["eContent"] = content
    certs = ([signer_cert] if signer_cert is not None and include_signer_cert else []) + list(extra_certs)
    for index, cert in enumerate(certs):
        asn, dummy = decoder.decode(cert.public_bytes(serialization.Encoding.DER), asn1Spec=rfc5280.Certificate())
        data["certificates"].getComponentByPosition(index)["certificate"] = asn
    for dummy in range(signers):
        data["signerInfos"].append(info)
    if not signers:
        data["signerInfos"].clear()
    content_info = rfc5652.ContentInfo()
    content_info["contentType"] = rfc5652.id_signedData
    content_info["content"] = encoder.encode(data)
    return encoder.encode(content_info)


def pki_data(csrs_der, transaction_id=None, sender_nonce=None, extra_controls=(), first_id=1):
    """DER PKIData: one tcr per CSR (bodyPartIDs first_id..), then the controls."""
    data = rfc6402.PKIData()
    body_part_id = first_id
    for index, der in enumerate(csrs_der):
        request, dummy = decoder.decode(der, asn1Spec=rfc6402.CertificationRequest())
        tcr = data["reqSequence"].getComponentByPosition(index)["tcr"]
        tcr["bodyPartID"] = body_part_id
        tcr["certificationRequest"] = request
        body_part_id += 1
    controls = []
    if transaction_id is not None:
        controls.append((OID_TRANSACTION_ID, encoder.encode(univ.Integer(transaction_id))))
    if sender_nonce is not None:
        controls.append((OID_SENDER_NONCE, encoder.encode(univ.OctetString(sender_nonce))))
    controls += list(extra_controls)
    for oid, value in controls:
        control = rfc6402.TaggedAttribute()
        control["bodyPartID"] = body_part_id
        control["attrType"] = univ.ObjectIdentifier(oid)
        control["attrValues"].append(value)
        data["controlSequence"].append(control)
        body_part_id += 1
    data["cmsSequence"].clear()
    data["otherMsgSequence"].clear()
    return encoder.encode(data)


class Request:
    """A Full PKI Request and what the response must echo."""

    def __init__(self, csrs_der, key, signer_cert=None, ski=None, digest=None, tamper=None, signers=1,
                 extra_controls=(), extra_certs=(), transaction_id=None, sender_nonce=None, include_signer_cert=True):
        self.transaction_id = transaction_id if transaction_id is not None else int.from_bytes(os.urandom(7), "big")
        self.sender_nonce = sender_nonce if sender_nonce is not None else os.urandom(16)
        self.controls = [OID_TRANSACTION_ID, OID_SENDER_NONCE] + [oid for oid, dummy in extra_controls]
        self.requests = list(csrs_der)
        content = pki_data(csrs_der, self.transaction_id, self.sender_nonce, extra_controls)
        digested = None
        if tamper == "content":  # sign one PKIData, send another
            self.transaction_id += 1  # what is sent (and echoed)
            digested, content = content, pki_data(csrs_der, self.transaction_id, self.sender_nonce, extra_controls)
            tamper = None
        self.der = signed_data(OID_PKI_DATA, content, key, signer_cert, ski, digest, extra_certs, tamper, signers, digested,
                               include_signer_cert)

    @property
    def body(self):
        return base64.encodebytes(self.der)

    def control_id(self, oid):
        """The bodyPartID pki_data gave the control oid (after the requests' ones)."""
        return len(self.requests) + 1 + self.controls.index(oid)


def query_pending(token, key, transaction_id, recipient_nonce=None, extra_controls=(), csrs_der=(), **kw):
    """A Query Pending (RFC 5272 6.13): a PKIData without requests, with queryPending = token (and a recipientNonce)."""
    controls = []
    if recipient_nonce is not None:
        controls.append((OID_RECIPIENT_NONCE, encoder.encode(univ.OctetString(recipient_nonce))))
    controls.append((OID_QUERY_PENDING, encoder.encode(univ.OctetString(token))))
    return Request(list(csrs_der), key, transaction_id=transaction_id, extra_controls=controls + list(extra_controls), **kw)


class Response:
    """What a PKI Response (or a Simple PKI Response) says, with its signature checked.

    The signer's certificate is looked for in the SignedData and then in known_certs
    (certificates the client has already, such as the CA certificate).
    """

    def __init__(self, der, known_certs=()):
        info, rest = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
        assert not rest and str(info["contentType"]) == "1.2.840.113549.1.7.2"
        data, rest = decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.SignedData())
        assert not rest
        self.certificates = [x509.load_der_x509_certificate(encoder.encode(choice["certificate"]))
                             for choice in data["certificates"]] if data["certificates"].isValue else []
        self.digest_algorithms = [str(algorithm["algorithm"]) for algorithm in data["digestAlgorithms"]]
        encap = data["encapContentInfo"]
        self.content_type = str(encap["eContentType"])
        self.content = encap["eContent"].asOctets() if encap["eContent"].isValue else None
        self.signer_infos = list(data["signerInfos"])
        self.sid_kind = self.signer_infos[0]["sid"].getName() if len(self.signer_infos) == 1 else None
        self.known_certs = list(known_certs)
        self.signer_cert = None
        self.signature_ok = self._verify()
        self.status = self.fail_info = self.status_string = self.pend = None
        self.body_list = []
        self.transaction_id = self.recipient_nonce = self.sender_nonce = None
        if self.content_type == OID_PKI_RESPONSE:
            self._read(decoder.decode(self.content, asn1Spec=rfc6402.PKIResponse())[0])

    def _verify(self):
        if len(self.signer_infos) != 1:
            return False
        info = self.signer_infos[0]
        ias = info["sid"]["issuerAndSerialNumber"]
        for cert in reversed(self.certificates + self.known_certs):  # the SignedData's own ones win
            if cert.serial_number == int(ias["serialNumber"]) and cert.issuer.public_bytes() == encoder.encode(ias["issuer"]):
                self.signer_cert = cert
        if self.signer_cert is None:
            return False
        attrs = {str(a["attrType"]): bytes(a["attrValues"][0]) for a in info["signedAttrs"]}
        digest = hashlib.sha256(self.content).digest()
        if decoder.decode(attrs[OID_MESSAGE_DIGEST], asn1Spec=univ.OctetString())[0].asOctets() != digest:
            return False
        if str(decoder.decode(attrs[OID_CONTENT_TYPE], asn1Spec=univ.ObjectIdentifier())[0]) != self.content_type:
            return False
        signed = encoder.encode(info["signedAttrs"])
        signed = b"\x31" + signed[1:]
        public_key = self.signer_cert.public_key()
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(info["signature"].asOctets(), signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                public_key.verify(info["signature"].asOctets(), signed, ec.ECDSA(hashes.SHA256()))
        except Exception:  # pylint: disable=broad-exception-caught
            return False
        return True

    def _read(self, response):
        for control in response["controlSequence"]:
            oid, value = str(control["attrType"]), bytes(control["attrValues"][0])
            if oid == OID_STATUS_INFO_V2:
                status = decoder.decode(value, asn1Spec=StatusInfoV2())[0]
                self.status = STATUS.get(int(status["cMCStatus"]), int(status["cMCStatus"]))
                self.body_list = [int(ref["bodyPartID"]) for ref in status["bodyList"]]
                if status["statusString"].isValue:
                    self.status_string = str(status["statusString"])
                other = status["otherInfo"]
                if other.isValue and bytes(other)[:1] == b"\x02":
                    self.fail_info = FAIL_INFO[int(decoder.decode(bytes(other), asn1Spec=univ.Integer())[0])]
                elif other.isValue:
                    pend = decoder.decode(bytes(other), asn1Spec=rfc6402.PendInfo())[0]
                    self.pend = (pend["pendToken"].asOctets(), pend["pendTime"].asDateTime)
            elif oid == OID_TRANSACTION_ID:
                self.transaction_id = int(decoder.decode(value, asn1Spec=univ.Integer())[0])
            elif oid == OID_RECIPIENT_NONCE:
                self.recipient_nonce = decoder.decode(value, asn1Spec=univ.OctetString())[0].asOctets()
            elif oid == OID_SENDER_NONCE:
                self.sender_nonce = decoder.decode(value, asn1Spec=univ.OctetString())[0].asOctets()

    def echoes(self, request):
        return self.transaction_id == request.transaction_id and self.recipient_nonce == request.sender_nonce


def read_response(http_response, known_certs=()):
    """Response of a base64 application/pkcs7-mime answer (known_certs: see Response)."""
    return Response(base64.b64decode(b"".join(http_response.content.split()), validate=True), known_certs)


def extended_key_usages(cert):
    """The dotted EKU OIDs of cert, None without the extension."""
    try:
        return [oid.dotted_string for oid in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        return None


# -- CSR attributes ------------------------------------------------------------------------------------------


def csr_with_attributes(key, attributes, **csr_kw):
    """A CSR for key carrying extra attributes [(OID, value DER)], signed again with key."""
    request, dummy = decoder.decode(make_csr(key, **csr_kw), asn1Spec=rfc2986.CertificationRequest())
    info = request["certificationRequestInfo"]
    for oid, value in attributes:
        attribute = rfc2986.Attribute()
        attribute["type"] = univ.ObjectIdentifier(oid)
        attribute["values"].append(value)
        info["attributes"].append(attribute)
    tbs = encoder.encode(info)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    request["signature"] = univ.BitString.fromOctetString(signature)
    return encoder.encode(request)


def key_id_attribute(identifier):
    return OID_ASYMM_DECRYPT_KEY_ID, encoder.encode(univ.OctetString(identifier))


def capabilities_attribute(*oids):
    caps = univ.SequenceOf(componentType=rfc5280.AlgorithmIdentifier())
    for oid in oids:
        cap = rfc5280.AlgorithmIdentifier()
        cap["algorithm"] = univ.ObjectIdentifier(oid)
        caps.append(cap)
    return OID_SMIME_CAPABILITIES, encoder.encode(caps)
