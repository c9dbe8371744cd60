"""Server-side key generation (RFC 7030 4.4): the new key, its encodings, and its encryption.

* ``new_key_like``: a fresh private key of the type and size/curve of the CSR's
  public key (RSA 2048-4096, EC P-256/P-384/P-521, Ed25519, Ed448);
* ``key_der``: the key as PKCS#8 PrivateKeyInfo, or PKCS#1 / SEC1 when asked;
* ``find_recipient``: the certificate named by the CSR's id-aa-asymmDecryptKeyID
  attribute (RFC 7030 4.4.1.2) -- here only the TLS client certificate of the
  connection can be named;
* ``encrypt_key``: CMS EnvelopedData (RSA key transport, AES-CBC) of the key,
  as DER ContentInfo.

Problems of the request raise ``KeygenError`` (the operation answers 400).
"""

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7

OID_ASYMM_DECRYPT_KEY_ID = x509.ObjectIdentifier("1.2.840.113549.1.9.16.2.54")
OID_DECRYPT_KEY_ID = x509.ObjectIdentifier("1.2.840.113549.1.9.16.2.37")  # RFC 4108 2.2.5 (symmetric)
OID_SMIME_CAPABILITIES = x509.ObjectIdentifier("1.2.840.113549.1.9.15")
OID_KEY_PACKAGE = "2.16.840.1.101.2.1.2.78.5"  # id-ct-KP-aKeyPackage (RFC 5958)
OID_AES128_CBC = "2.16.840.1.101.3.4.1.2"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"

RSA_SIZES = (2048, 4096)
CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
OCTET_STRING = 4
SEQUENCE = 0x30

KEY_FORMATS = ("pkcs8", "pkcs1", "sec1", "traditional")


class KeygenError(ValueError):
    """The serverkeygen request cannot be served; str() is the reason."""


def check_key_kind(public_key):
    """KeygenError unless a key like public_key can be generated here."""
    if isinstance(public_key, rsa.RSAPublicKey):
        size = public_key.key_size
        if not RSA_SIZES[0] <= size <= RSA_SIZES[1]:
            raise KeygenError("RSA keys of %d bits are not generated here (%d to %d)" % (size, RSA_SIZES[0], RSA_SIZES[1]))
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, CURVES):
            raise KeygenError("EC keys on %s are not generated here (P-256, P-384, P-521)" % public_key.curve.name)
    elif not isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        raise KeygenError("keys of type %s are not generated here" % type(public_key).__name__)


def new_key_like(public_key):
    """A new private key of the same kind and size as public_key; KeygenError for other kinds."""
    check_key_kind(public_key)
    if isinstance(public_key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=public_key.key_size)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(type(public_key.curve)())
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ed25519.Ed25519PrivateKey.generate()
    return ed448.Ed448PrivateKey.generate()


def pkcs8_der(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def key_der(key, key_format="pkcs8"):
    """The key's DER: PKCS#8, or PKCS#1 (RSA) / SEC1 (EC) when key_format asks for it and fits the key."""
    traditional = ((key_format in ("pkcs1", "traditional") and isinstance(key, rsa.RSAPrivateKey))
                   or (key_format in ("sec1", "traditional") and isinstance(key, ec.EllipticCurvePrivateKey)))
    if traditional:
        return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    return pkcs8_der(key)


def _attribute(csr, oid):
    """(value bytes, ASN.1 tag) of a single-valued CSR attribute, or None when absent."""
    try:
        attribute = csr.attributes.get_attribute_for_oid(oid)
    except x509.AttributeNotFound:
        return None
    except ValueError as exc:
        raise KeygenError("the CSR attribute %s cannot be read: %s" % (oid.dotted_string, str(exc)[:100])) from exc
    return attribute.value, attribute._type  # pylint: disable=protected-access  # the value's ASN.1 tag has no public accessor


def requested_key_id(csr):
    """The AsymmetricDecryptKeyIdentifier the CSR asks the key to be encrypted to, or None."""
    try:
        attributes = list(csr.attributes)
    except ValueError as exc:
        raise KeygenError("the CSR attributes cannot be read: %s" % str(exc)[:100]) from exc
    oids = [attribute.oid for attribute in attributes]
    if OID_DECRYPT_KEY_ID in oids:
        raise KeygenError("symmetric key encryption (DecryptKeyIdentifier, RFC 7030 4.4.1.1) is not supported: "
                          "no shared secret key is known")
    found = _attribute(csr, OID_ASYMM_DECRYPT_KEY_ID)
    if found is None:
        return None
    value, asn1_tag = found
    if asn1_tag != OCTET_STRING or not value:
        raise KeygenError("the id-aa-asymmDecryptKeyID attribute value must be a non-empty OCTET STRING")
    return value


def key_identifiers(cert):
    """The key identifiers a certificate answers to: its SubjectKeyIdentifier, else the SHA-1 of its key bits."""
    try:
        return [cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest]
    except x509.ExtensionNotFound:
        return [x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest]


def find_recipient(key_id, client_cert):
    """The certificate to encrypt to for key_id (client_cert: the valid TLS client certificate or None)."""
    if client_cert is None or key_id not in key_identifiers(client_cert):
        raise KeygenError("no certificate matches the id-aa-asymmDecryptKeyID %s (the key is only encrypted to the TLS "
                          "client certificate of the connection)" % key_id.hex()[:80])
    if not isinstance(client_cert.public_key(), rsa.RSAPublicKey):
        raise KeygenError("the certificate named by id-aa-asymmDecryptKeyID has a %s key; only RSA key transport is supported"
                          % type(client_cert.public_key()).__name__)
    try:
        usage = client_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_encipherment:
        raise KeygenError("the certificate named by id-aa-asymmDecryptKeyID does not allow keyEncipherment (RFC 7030 4.4.1.2)")
    return client_cert


def content_cipher(csr):
    """AES-256-CBC, or AES-128-CBC when the CSR's SMIMECapabilities lists that and not AES-256."""
    found = _attribute(csr, OID_SMIME_CAPABILITIES)
    if found is None:
        return algorithms.AES256
    from .cms import CmsError, decode_all, der_header  # pyasn1 is only needed when the client sends capabilities
    from pyasn1.type import univ
    from pyasn1_modules import rfc5280
    value, asn1_tag = found
    if asn1_tag != SEQUENCE:
        raise KeygenError("the SMIMECapabilities attribute value must be a SEQUENCE")
    try:
        # cryptography hands out the contents of a constructed value; put the SEQUENCE header back
        capabilities = decode_all(der_header(SEQUENCE, len(value)) + value, univ.SequenceOf(componentType=rfc5280.AlgorithmIdentifier()),
                                  "SMIMECapabilities")
    except CmsError as exc:
        raise KeygenError("the SMIMECapabilities attribute is malformed") from exc
    oids = [str(capability["algorithm"]) for capability in capabilities]
    if OID_AES256_CBC in oids or OID_AES128_CBC not in oids:
        return algorithms.AES256
    return algorithms.AES128


def key_package(key):
    """DER of an RFC 5958 AsymmetricKeyPackage holding key (a PKCS#8 PrivateKeyInfo is a OneAsymmetricKey v1)."""
    from .cms import der_header
    inner = pkcs8_der(key)
    return der_header(0x30, len(inner)) + inner


def encrypt_key(plaintext, recipient, cipher):
    """DER ContentInfo(EnvelopedData) of plaintext for the RSA recipient certificate."""
    builder = (pkcs7.PKCS7EnvelopeBuilder()
               .set_data(plaintext)
               .add_recipient(recipient)
               .set_content_encryption_algorithm(cipher))
    # Binary: the data is DER, not text to canonicalise into CRLF line ends.
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
