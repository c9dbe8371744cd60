# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test PKI built with ``cryptography``: CA certificates, RFC 7030 §4.1.3 rollover sets, leaves, CSRs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import NameOID

UTC = datetime.timezone.utc
BASE_TIME = datetime.datetime(2025, 1, 1, tzinfo=UTC)


def new_key():
    """An EC P-256 private key: quick to make, accepted everywhere."""
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name, org='pki.est tests'):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def make_cert(subject, public_key, issuer, signing_key, ca=True, not_before=BASE_TIME, days=36500, serial=None,
              basic_constraints=True):
    """One certificate; ``ca`` adds CA basic constraints and key usage, a leaf gets ca=False."""
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer)
               .public_key(public_key)
               .serial_number(serial if serial is not None else x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_before + datetime.timedelta(days=days)))
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def self_signed(common_name, key=None, not_before=BASE_TIME, days=36500):
    """``(certificate, key)`` of a self-signed CA."""
    key = key or new_key()
    subject = name(common_name)
    return make_cert(subject, key.public_key(), subject, key, not_before=not_before, days=days), key


def issued(common_name, issuer_cert, issuer_key, ca=True, key=None, not_before=BASE_TIME, days=3650, basic_constraints=True):
    """``(certificate, key)`` signed by ``issuer_cert``/``issuer_key``."""
    key = key or new_key()
    cert = make_cert(name(common_name), key.public_key(), issuer_cert.subject, issuer_key, ca=ca,
                     not_before=not_before, days=days, basic_constraints=basic_constraints)
    return cert, key


class Rollover:
    """The four certificates of RFC 7030 §4.1.3: one CA name, an old and a new key."""

    def __init__(self, common_name='Rollover Root CA'):
        self.name = name(common_name)
        self.old_key = new_key()
        self.new_key = new_key()
        old_pub, new_pub = self.old_key.public_key(), self.new_key.public_key()
        later = BASE_TIME + datetime.timedelta(days=365)
        self.old_with_old = make_cert(self.name, old_pub, self.name, self.old_key, not_before=BASE_TIME)
        self.new_with_new = make_cert(self.name, new_pub, self.name, self.new_key, not_before=later)
        # OldWithNew: the old public key, signed with the new private key.
        self.old_with_new = make_cert(self.name, old_pub, self.name, self.new_key, not_before=later)
        # NewWithOld: the new public key, signed with the old private key.
        self.new_with_old = make_cert(self.name, new_pub, self.name, self.old_key, not_before=later)

    @property
    def certs(self):
        return [self.old_with_old, self.new_with_new, self.old_with_new, self.new_with_old]

    @property
    def roles(self):
        return {
            fingerprint(self.old_with_old): 'root',
            fingerprint(self.new_with_new): 'rollover_new_with_new',
            fingerprint(self.old_with_new): 'rollover_old_with_new',
            fingerprint(self.new_with_old): 'rollover_new_with_old',
        }


def make_csr(key, common_name='device.example.com'):
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(name(common_name))
            .sign(key, hashes.SHA256()))


def der(obj):
    return obj.public_bytes(Encoding.DER)


def fingerprint(cert):
    return hashlib.sha256(der(cert)).hexdigest()


def pkcs7_der(certs):
    """A DER PKCS#7 certs-only message from ``cryptography`` (which sorts the certificates)."""
    return pkcs7.serialize_certificates(list(certs), Encoding.DER)


def _tlv(tag, content):
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, 'big')
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


_OID_SIGNED_DATA = _tlv(0x06, bytes.fromhex('2a864886f70d010702'))
_OID_DATA = _tlv(0x06, bytes.fromhex('2a864886f70d010701'))


def pkcs7_in_order(certs):
    """A PKCS#7 certs-only message with ``certs`` in exactly the given order.

    Servers send their certificates in whatever order they like; DER would sort the SET OF,
    so this is hand-built (BER ordering, DER lengths), the way many servers encode it.
    """
    signed_data = _tlv(0x30, _tlv(0x02, b'\x01')
                       + _tlv(0x31, b'')
                       + _tlv(0x30, _OID_DATA)
                       + _tlv(0xA0, b''.join(der(c) for c in certs))
                       + _tlv(0x31, b''))
    return _tlv(0x30, _OID_SIGNED_DATA + _tlv(0xA0, signed_data))


def pkcs7_pem(certs):
    return pkcs7.serialize_certificates(list(certs), Encoding.PEM)


def leaf_for(subject, public_key, issuer_cert, issuer_key, extensions=(), not_before=BASE_TIME, not_after=None, serial=None):
    """An end-entity certificate with exactly ``extensions`` (``[(ExtensionType, critical)]``)."""
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject)
               .public_key(public_key)
               .serial_number(serial if serial is not None else x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after or not_before + datetime.timedelta(days=365)))
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def cert_from_csr(csr, issuer_cert, issuer_key, not_before=BASE_TIME, not_after=None, serial=None):
    """What a CA that grants everything asked issues for ``csr``: its subject, key and extensions."""
    return leaf_for(csr.subject, csr.public_key(), issuer_cert, issuer_key,
                    [(ext.value, ext.critical) for ext in csr.extensions], not_before, not_after, serial)
