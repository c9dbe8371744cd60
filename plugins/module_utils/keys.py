# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Software private keys: generate, load, serialize, describe."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from .errors import ESTError

KEY_TYPES = ('ec-p256', 'ec-p384', 'ec-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519')
DEFAULT_KEY_TYPE = 'ec-p256'


_NIST_CURVES = {'secp256r1': 'ec-p256', 'secp384r1': 'ec-p384', 'secp521r1': 'ec-p521'}
_RSA_SIZES = (2048, 8192)


def generate_private_key(key_type=DEFAULT_KEY_TYPE):
    """A new private key of ``key_type``: one of :data:`KEY_TYPES`, or what a CA may demand in
    /csrattrs (:func:`key_type_for_demand`): ``rsa-<bits>``, ``ec-<curve name>``, ``ed448``."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    family, _sep, size = str(key_type).partition('-')
    if family == 'ec' and size:
        names = {'p256': 'secp256r1', 'p384': 'secp384r1', 'p521': 'secp521r1'}
        curve = _curve(names.get(size, size))
        if curve is not None:
            return ec.generate_private_key(curve)
    elif family == 'rsa' and size.isdigit() and _RSA_SIZES[0] <= int(size) <= _RSA_SIZES[1]:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(size))
    elif key_type == 'ed25519':
        return ed25519.Ed25519PrivateKey.generate()
    elif key_type == 'ed448':
        return ed448.Ed448PrivateKey.generate()
    raise ESTError('invalid_input', 'key_type must be one of %s, got %r' % (', '.join(KEY_TYPES), key_type))


def _curve(name_or_oid):
    """A cryptography curve instance for a curve name (``secp384r1``, ``brainpoolP256r1``) or OID, or None."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    text = str(name_or_oid)
    if text and text[0].isdigit():
        try:
            return ec.get_curve_for_oid(x509.ObjectIdentifier(text))()
        except (LookupError, ValueError):
            return None
    for cls in vars(ec).values():
        if isinstance(cls, type) and issubclass(cls, ec.EllipticCurve) and getattr(cls, 'name', None) == text:
            return cls()
    return None


def key_type_for_demand(requirements):
    """``(key_type, problem)`` for the key a CA asks for in /csrattrs (RFC 7030 4.5.2).

    ``key_type`` is what :func:`generate_private_key` makes (None when nothing is asked); a
    bare rsaEncryption is met with RSA 2048 and a bare id-ecPublicKey with P-256.
    ``problem`` names a demand this client cannot meet (an unknown algorithm or curve).
    """
    kind = (requirements or {}).get('key_type')
    if not kind:
        return None, None
    if kind == 'rsa':
        size = requirements.get('key_size') or 2048
        if not _RSA_SIZES[0] <= int(size) <= _RSA_SIZES[1]:
            return None, 'an RSA key of %s bits (this client makes %d to %d)' % (size, _RSA_SIZES[0], _RSA_SIZES[1])
        return 'rsa-%d' % int(size), None
    if kind == 'ec':
        wanted = requirements.get('curve')
        if not wanted:
            return DEFAULT_KEY_TYPE, None
        curve = _curve(wanted)
        if curve is None:
            return None, 'an EC key on curve %s, which cryptography does not support here' % wanted
        return _NIST_CURVES.get(curve.name, 'ec-%s' % curve.name), None
    if kind in ('ed25519', 'ed448'):
        return kind, None
    return None, 'a %s key, which this client cannot make' % kind


def key_type_of(key):
    """The :data:`KEY_TYPES` name of a private or public key, or a descriptive string."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    public = key.public_key() if hasattr(key, 'public_key') else key
    if isinstance(public, rsa.RSAPublicKey):
        return 'rsa-%d' % public.key_size
    if isinstance(public, ec.EllipticCurvePublicKey):
        return _NIST_CURVES.get(public.curve.name, 'ec-%s' % public.curve.name)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return 'ed25519'
    from cryptography.hazmat.primitives.asymmetric import ed448
    if isinstance(public, ed448.Ed448PublicKey):
        return 'ed448'
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
    """Hash algorithm to sign a CSR with this key (None for Ed25519 and Ed448, which hash internally)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
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


class ExternalKey:
    """A private key this process cannot read: held in a PKCS#11 token or a TPM (see :mod:`.tokenkeys`).

    It offers what the engine needs of a key: :meth:`public_key` (a ``cryptography`` public key)
    and ``sign(data) -> signature`` (the token hashes or is handed the SHA-256 digest; ECDSA
    signatures come back as r||s and are DER-encoded where they are used, see ``cmc.sign_raw``).
    ``uri`` names the key (a ``pkcs11:`` URI) in messages. Nothing of the key is ever written.
    """

    def __init__(self, public_key, sign, uri):
        self._public_key = public_key
        self.sign = sign
        self.uri = uri

    def public_key(self):
        return self._public_key

    def __repr__(self):
        return 'ExternalKey(%s)' % self.uri
