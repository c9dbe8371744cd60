# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PKCS#10 requests at the ASN.1 level (RFC 2986, pyasn1-modules ``rfc2986``).

``cryptography`` builds most requests, but it cannot add attributes whose values are
structures (SMIMECapabilities, AsymmetricDecryptKeyIdentifier for server-side key
generation, RFC 7030 §4.4.1) and cannot sign with a key it does not hold (a PKCS#11
token). :func:`rebuild_csr` takes a request, adds attributes, optionally swaps the public
key, and signs the new CertificationRequestInfo with a private key or a signing callback.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from .errors import ESTError


def rebuild_csr(csr_der, signer, extra_attributes=(), public_key=None):
    """DER of a new CSR: ``csr_der``'s subject and attributes plus ``extra_attributes``.

    ``extra_attributes`` are DER-encoded ``Attribute`` values. ``signer`` is a ``cryptography``
    private key, or a callable ``sign(data) -> signature`` used with ``public_key`` (then the
    request carries ``public_key``). The signature algorithm follows the key (see
    :func:`.cmc.sign_raw`: SHA-256 with RSA PKCS#1 v1.5 or ECDSA, or Ed25519).
    """
    from pyasn1.codec.der import decoder, encoder
    from pyasn1.type import univ
    from pyasn1_modules import rfc2986, rfc5280
    from .cmc import sign_raw
    from .codecs import public_key_der
    try:
        request, _rest = decoder.decode(csr_der, asn1Spec=rfc2986.CertificationRequest())
        info = request['certificationRequestInfo']
        if public_key is not None:
            spki, _rest = decoder.decode(public_key_der(public_key), asn1Spec=rfc5280.SubjectPublicKeyInfo())
            info['subjectPKInfo']['algorithm'] = spki['algorithm']
            info['subjectPKInfo']['subjectPublicKey'] = spki['subjectPublicKey']
        attributes = info['attributes']
        for der in extra_attributes:
            attribute, _rest = decoder.decode(der, asn1Spec=rfc2986.Attribute())
            attributes.append(attribute)
        info_der = encoder.encode(info)
    except ESTError:
        raise
    except Exception as exc:  # pyasn1 raises many kinds of errors on bad input
        raise ESTError('invalid_input', 'cannot rebuild the certificate request: %s' % exc)
    algorithm_oid, signature = sign_raw(info_der, signer, public_key)
    out = rfc2986.CertificationRequest()
    decoded_info, _rest = decoder.decode(info_der, asn1Spec=rfc2986.CertificationRequestInfo())
    out['certificationRequestInfo'] = decoded_info
    out['signatureAlgorithm']['algorithm'] = univ.ObjectIdentifier(algorithm_oid)
    if algorithm_oid.startswith('1.2.840.113549.1.1.'):  # RSA signature algorithms carry NULL parameters
        out['signatureAlgorithm']['parameters'] = univ.Null('')
    out['signature'] = univ.BitString.fromOctetString(signature)
    return encoder.encode(out)
