# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Software private keys: generate, load, serialize, describe."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from .errors import ESTError

KEY_TYPES = ('ec-p256', 'ec-p384', 'ec-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519')
DEFAULT_KEY_TYPE = 'ec-p256'


def generate_private_key(key_type=DEFAULT_KEY_TYPE):
    """A new private key of ``key_type`` (one of :data:`KEY_TYPES`)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    if key_type not in KEY_TYPES:
        raise ESTError('invalid_input', 'key_type must be one of %s, got %r' % (', '.join(KEY_TYPES), key_type))
    family, _sep, size = key_type.partition('-')
    if family == 'ec':
        curve = {'p256': ec.SECP256R1, 'p384': ec.SECP384R1, 'p521': ec.SECP521R1}[size]
        return ec.generate_private_key(curve())
    if family == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=int(size))
    return ed25519.Ed25519PrivateKey.generate()


def key_type_of(key):
    """The :data:`KEY_TYPES` name of a private or public key, or a descriptive string."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    public = key.public_key() if hasattr(key, 'public_key') else key
    if isinstance(public, rsa.RSAPublicKey):
        return 'rsa-%d' % public.key_size
    if isinstance(public, ec.EllipticCurvePublicKey):
        names = {'secp256r1': 'ec-p256', 'secp384r1': 'ec-p384', 'secp521r1': 'ec-p521'}
        return names.get(public.curve.name, 'ec-%s' % public.curve.name)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return 'ed25519'
    return type(public).__name__


def load_private_key(data, source='private key', passphrase=None):
    """A private key from PEM or DER bytes; raises ``ESTError('key_store')`` naming ``source``."""
    from cryptography.hazmat.primitives import serialization
    if passphrase is not None and not isinstance(passphrase, bytes):
        passphrase = passphrase.encode('utf-8')
    loaders = (serialization.load_pem_private_key, serialization.load_der_private_key)
    if b'-----BEGIN' not in data:
        loaders = loaders[::-1]
    last = None
    for loader in loaders:
        try:
            return loader(data, password=passphrase)
        except TypeError as exc:  # encrypted without a passphrase, or the other way round
            raise ESTError('key_store', 'cannot use %s: %s' % (source, exc))
        except (ValueError, Exception) as exc:  # pylint: disable=broad-except
            last = exc
    # Never include key material in the message: only the kind of problem.
    raise ESTError('key_store', 'cannot read %s: not an unencrypted PEM or DER private key (%s)' % (source, type(last).__name__))


def private_key_pem(key):
    """PKCS#8 PEM bytes, unencrypted (the file mode protects it)."""
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def signature_hash(key, preferred=None):
    """Hash algorithm to sign a CSR with this key (None for Ed25519, which hashes internally)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if preferred:
        return {'sha256': hashes.SHA256(), 'sha384': hashes.SHA384(), 'sha512': hashes.SHA512()}[preferred]
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384() if key.curve.key_size <= 384 else hashes.SHA512()
    return hashes.SHA256()


def keys_match(private_key, cert):
    """True when ``cert`` carries the public half of ``private_key``."""
    from .codecs import public_key_der
    return public_key_der(private_key.public_key()) == public_key_der(cert.public_key())
