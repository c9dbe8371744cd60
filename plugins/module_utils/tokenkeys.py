# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private keys that live in a PKCS#11 token (SoftHSM2, a TPM 2.0 through tpm2-pkcs11, an HSM).

The engine side of the ``tpm_key`` module and of enrollment with token keys; no Ansible import.
``python-pkcs11`` is imported inside the functions that talk to a token, so this file imports
(and :func:`parse_uri` / :class:`TokenRef` work) on a host without it.

- :func:`parse_uri` reads an RFC 7512 ``pkcs11:`` URI; :class:`TokenRef` is what a module's
  options (and/or a URI, a PIN file, ``PKI_EST_PKCS11_PIN``) name: library, token, PIN, key.
- :func:`session` opens a logged-in session on that token (errors ``token_library``,
  ``token_not_found``, ``token_login``; never the PIN in a message).
- :func:`find_key`, :func:`generate_key`, :func:`destroy_key`, :func:`relabel_key` manage a key
  pair; :class:`TokenKey` carries its public key as a ``cryptography`` object.
- :func:`signer` turns a token key into the ``sign(data) -> signature`` callable that
  :func:`.cmc.sign_raw` and :func:`.csr_asn1.rebuild_csr` take (SHA-256; EC signatures are the
  raw ``r||s`` PKCS#11 gives, which ``sign_raw`` converts to DER). The callable is usable while
  the session it came from is open.

Key ids: :func:`generate_key` without a ``key_id`` uses 16 random bytes (``os.urandom``) chosen
before generation, so both objects are created with their CKA_ID in one call (some tokens,
tpm2-pkcs11 among them, do not let CKA_ID be changed afterwards).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import hashlib
import os
import re

from .errors import ESTError

ALGORITHMS = ('ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096')
PIN_ENV = 'PKI_EST_PKCS11_PIN'

# RFC 7512 section 2.3: attributes this code knows; anything else is ignored, as the RFC asks.
_PATH_ATTRIBUTES = ('token', 'manufacturer', 'serial', 'model', 'library-manufacturer', 'library-description',
                    'library-version', 'slot-manufacturer', 'slot-description', 'slot-id', 'object', 'id', 'type')
_QUERY_ATTRIBUTES = ('module-path', 'module-name', 'pin-value', 'pin-source')
_OBJECT_TYPES = ('public', 'private', 'cert', 'secret-key', 'data')
_UNRESERVED = frozenset(b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~')

# DER of the named-curve OIDs (CKA_EC_PARAMS) and the algorithm names they stand for.
_CURVES = {
    'ec-p256': (bytes.fromhex('06082a8648ce3d030107'), 'SECP256R1', 32),
    'ec-p384': (bytes.fromhex('06052b81040022'), 'SECP384R1', 48),
    'ec-p521': (bytes.fromhex('06052b81040023'), 'SECP521R1', 66),
}
# DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex('3031300d060960864801650304020105000420')

_LIBRARIES = {}     # path -> pkcs11.lib: python-pkcs11 loads a library once per process
_OPEN_SESSIONS = {}  # path -> number of sessions open through session()


# ---------------------------------------------------------------------------------------------
# pkcs11: URIs (RFC 7512)

def _unquote(text, what):
    """Bytes of a percent-encoded URI component; ``invalid_input`` for a broken escape."""
    out = bytearray()
    raw = text.encode('utf-8')
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == 0x25:  # '%'
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or not re.match(br'^[0-9A-Fa-f]{2}$', pair):
                raise ESTError('invalid_input', 'pkcs11 URI: broken percent-encoding in %s' % what)
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(char)
            i += 1
    return bytes(out)


def _quote(value):
    """Percent-encode text or bytes for a ``pkcs11:`` URI (everything outside RFC 3986 unreserved)."""
    data = value.encode('utf-8') if isinstance(value, str) else bytes(value)
    return ''.join(chr(b) if b in _UNRESERVED else '%%%02X' % b for b in data)


def parse_uri(uri):
    """The attributes of an RFC 7512 ``pkcs11:`` URI as a dict.

    Text attributes are percent-decoded UTF-8 strings; ``id`` is bytes; ``slot-id`` an int.
    Path attributes: token, manufacturer, serial, model, slot-id, object, id, type (and the
    library-/slot- descriptions); query attributes: module-path, module-name, pin-value,
    pin-source. Unknown attributes are ignored (RFC 7512 section 2.3); a repeated known one,
    a missing ``=``, a broken escape or another scheme is ``invalid_input``.
    """
    if not isinstance(uri, str):
        raise ESTError('invalid_input', 'a pkcs11 URI must be text')
    text = uri.strip()
    scheme, sep, rest = text.partition(':')
    if not sep or scheme.lower() != 'pkcs11':
        raise ESTError('invalid_input', 'not a pkcs11: URI (RFC 7512): it must start with "pkcs11:"')
    if '#' in rest:
        raise ESTError('invalid_input', 'pkcs11 URI: a fragment ("#") is not allowed')
    path, _q, query = rest.partition('?')
    result = {}
    for part, separator, known in ((path, ';', _PATH_ATTRIBUTES), (query, '&', _QUERY_ATTRIBUTES)):
        if not part:
            continue
        for item in part.split(separator):
            if not item:
                continue
            name, eq, value = item.partition('=')
            name = name.strip().lower()
            if not eq or not name:
                raise ESTError('invalid_input', 'pkcs11 URI: attribute %r has no "name=value" form'
                               % (name or item)[:40])
            if name not in known:
                _unquote(value, name)  # still well-formed, but otherwise ignored
                continue
            if name in result:
                raise ESTError('invalid_input', 'pkcs11 URI: attribute %s appears more than once' % name)
            raw = _unquote(value, name)
            if name == 'id':
                result[name] = raw
                continue
            try:
                decoded = raw.decode('utf-8')
            except UnicodeDecodeError:
                raise ESTError('invalid_input', 'pkcs11 URI: %s is not UTF-8 text' % name)
            if name == 'slot-id':
                if not decoded.isdigit():
                    raise ESTError('invalid_input', 'pkcs11 URI: slot-id must be a decimal number')
                result[name] = int(decoded)
            elif name == 'type' and decoded not in _OBJECT_TYPES:
                raise ESTError('invalid_input', 'pkcs11 URI: type must be one of %s' % ', '.join(_OBJECT_TYPES))
            else:
                result[name] = decoded
    return result


def _key_id_bytes(value, what='key_id'):
    if value is None or isinstance(value, (bytes, bytearray)):
        return bytes(value) if value is not None else None
    text = str(value).strip().replace(':', '').replace(' ', '')
    if text.lower().startswith('0x'):
        text = text[2:]
    if not text:
        return None
    if len(text) % 2 or not re.match(r'^[0-9A-Fa-f]+$', text):
        raise ESTError('invalid_input', '%s must be hex (colons allowed), got %r' % (what, str(value)[:80]))
    return bytes.fromhex(text)


def _read_pin_source(source):
    path = source
    if source.startswith('file://'):
        path = source[len('file://'):]
    elif source.startswith('file:'):
        path = source[len('file:'):]
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise ESTError('invalid_input', 'pin-source: cannot read %s (%s)' % (path, exc.strerror or type(exc).__name__))
    return data.decode('utf-8', 'replace').rstrip('\r\n')


class TokenRef:
    """Where a token key is: library, token (label and/or slot), PIN, key label and/or id."""

    def __init__(self, module_path=None, token_label=None, slot=None, pin=None, label=None, key_id=None,
                 token_filters=None):
        self.module_path = module_path
        self.token_label = token_label
        self.slot = slot
        self.pin = pin
        self.label = label
        self.key_id = key_id
        # serial / manufacturer / model from a URI: further filters when choosing the token
        self.token_filters = dict(token_filters or {})

    @classmethod
    def from_params(cls, uri=None, pkcs11_module=None, token_label=None, slot=None, pin=None, label=None, key_id=None):
        """A TokenRef from module options and/or a ``pkcs11:`` URI.

        Explicit values fill what the URI lacks; the same thing given differently in both is
        ``invalid_input``. The PIN comes from ``pin`` / ``pin-value``, else ``pin-source`` (a file:
        path or plain path, trailing newline stripped), else the environment variable
        ``PKI_EST_PKCS11_PIN``. An explicit ``pin`` wins over a ``pin-source`` (the file is not read).
        """
        attrs = parse_uri(uri) if uri else {}
        if attrs.get('type') not in (None, 'private', 'public'):
            raise ESTError('invalid_input', 'pkcs11 URI: type=%s does not name a key' % attrs['type'])
        if slot is not None:
            try:
                slot = int(slot)
            except (TypeError, ValueError):
                raise ESTError('invalid_input', 'slot must be a number, got %r' % (slot,))
        key_id = _key_id_bytes(key_id)

        def merged(name, uri_name, explicit, secret=False):
            from_uri = attrs.get(uri_name)
            if from_uri is not None and explicit is not None and from_uri != explicit:
                if secret:
                    raise ESTError('invalid_input', '%s differs from %s in the pkcs11 URI' % (name, uri_name))
                raise ESTError('invalid_input', '%s %r differs from %s=%r in the pkcs11 URI'
                               % (name, _show(explicit), uri_name, _show(from_uri)))
            return explicit if explicit is not None else from_uri

        ref = cls(
            module_path=merged('pkcs11_module', 'module-path', pkcs11_module),
            token_label=merged('token_label', 'token', token_label),
            slot=merged('slot', 'slot-id', slot),
            pin=merged('pin', 'pin-value', pin, secret=True),
            label=merged('label', 'object', label),
            key_id=merged('key_id', 'id', key_id),
            token_filters=dict((k, attrs[k]) for k in ('serial', 'manufacturer', 'model') if k in attrs),
        )
        if ref.pin is None and attrs.get('pin-source'):
            ref.pin = _read_pin_source(attrs['pin-source'])
        if ref.pin is None and os.environ.get(PIN_ENV):
            ref.pin = os.environ[PIN_ENV]
        return ref

    def __repr__(self):
        return 'TokenRef(module_path=%r, token_label=%r, slot=%r, label=%r, key_id=%r, pin=%s)' % (
            self.module_path, self.token_label, self.slot, self.label,
            self.key_id.hex() if self.key_id is not None else None, 'set' if self.pin is not None else 'unset')

    __str__ = __repr__


def _show(value):
    return value.hex() if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------------
# Libraries, tokens, sessions

def _pkcs11():
    try:
        import pkcs11
    except ImportError:
        raise ESTError('token_library', 'the Python library python-pkcs11 is not installed on this host')
    return pkcs11


def _error_name(exc):
    text = str(exc).strip()
    name = type(exc).__name__
    return '%s: %s' % (name, text[:200]) if text and text != name else name


def _library(path):
    """The loaded ``pkcs11.lib`` for ``path`` (cached: a library is loaded once per process)."""
    pkcs11 = _pkcs11()
    if path is None or path == '':
        raise ESTError('invalid_input', 'no PKCS#11 library named: give pkcs11_module or module-path in the pkcs11 URI')
    cached = _LIBRARIES.get(path)
    if cached is not None:
        if not cached.initialized:
            cached.initialize()
        return cached
    if not os.path.isfile(path):
        raise ESTError('token_library', 'the PKCS#11 library %s does not exist' % path)
    try:
        lib = pkcs11.lib(path)
    except Exception as exc:  # pylint: disable=broad-except
        raise ESTError('token_library', '%s is not a usable PKCS#11 library (%s)' % (path, _error_name(exc)))
    _LIBRARIES[path] = lib
    return lib


def _tokens(lib):
    """``[(slot id, token object)]`` for every slot holding a token."""
    pkcs11 = _pkcs11()
    found = []
    for slot in lib.get_slots(token_present=True):
        try:
            found.append((slot.slot_id, slot.get_token()))
        except (pkcs11.TokenNotPresent, pkcs11.TokenNotRecognised):
            continue
    return found


def list_tokens(module_path):
    """``[{'slot': int, 'label': str, 'serial': str, 'manufacturer': str, 'model': str, 'initialized': bool}]``."""
    pkcs11 = _pkcs11()
    lib = _library(module_path)
    _rescan(lib, module_path)
    result = []
    for slot_id, token in _tokens(lib):
        result.append({'slot': slot_id, 'label': token.label, 'serial': _text(token.serial),
                       'manufacturer': token.manufacturer_id, 'model': token.model,
                       'initialized': bool(token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED)})
    return result


def _text(value):
    return value.decode('ascii', 'replace').strip() if isinstance(value, bytes) else value


def _rescan(lib, path):
    """Let the library see tokens created since it was loaded (only while no session is open)."""
    if not _OPEN_SESSIONS.get(path):
        try:
            lib.reinitialize()
        except Exception:  # pylint: disable=broad-except
            pass


def _choose_token(lib, ref):
    if ref.token_label is None and ref.slot is None and not ref.token_filters:
        raise ESTError('invalid_input', 'name the token: token_label or slot (or token=/slot-id= in a pkcs11 URI)')

    def matches(slot_id, token):
        if ref.token_label is not None and token.label != ref.token_label:
            return False
        if ref.slot is not None and slot_id != ref.slot:
            return False
        wanted = ref.token_filters
        return (wanted.get('serial') in (None, _text(token.serial)) and wanted.get('manufacturer') in (None, token.manufacturer_id)
                and wanted.get('model') in (None, token.model))

    tokens = _tokens(lib)
    chosen = [(slot_id, token) for slot_id, token in tokens if matches(slot_id, token)]
    if not chosen:
        _rescan(lib, ref.module_path)
        tokens = _tokens(lib)
        chosen = [(slot_id, token) for slot_id, token in tokens if matches(slot_id, token)]
    wanted = ', '.join(filter(None, ['label %r' % ref.token_label if ref.token_label is not None else None,
                                     'slot %s' % ref.slot if ref.slot is not None else None]
                              + ['%s %r' % item for item in sorted(ref.token_filters.items())]))
    if not chosen:
        there = ', '.join('%r (slot %s)' % (token.label, slot_id) if token.label else 'an empty one (slot %s)' % slot_id
                          for slot_id, token in tokens) or 'none'
        raise ESTError('token_not_found', 'no token with %s in %s; tokens there: %s' % (wanted, ref.module_path, there))
    if len(chosen) > 1:
        raise ESTError('token_not_found', 'more than one token with %s in %s (slots %s): name the slot'
                       % (wanted, ref.module_path, ', '.join(str(slot_id) for slot_id, _t in chosen)))
    return chosen[0][1]


@contextlib.contextmanager
def session(ref, rw=False):
    """An open python-pkcs11 ``Session`` on ``ref``'s token, logged in as the user; closed afterwards."""
    pkcs11 = _pkcs11()
    lib = _library(ref.module_path)
    try:
        token = _choose_token(lib, ref)
    except ESTError:
        raise
    except pkcs11.PKCS11Error as exc:
        raise ESTError('token_library', 'listing the tokens of %s failed (%s)' % (ref.module_path, _error_name(exc)))
    name = 'token %r' % token.label
    if ref.pin is None:
        raise ESTError('token_login', 'no PIN for %s: give pin, pin-value or pin-source in the pkcs11 URI, or set %s'
                       % (name, PIN_ENV))
    try:
        opened = token.open(rw=rw, user_pin=ref.pin)
    except pkcs11.UserAlreadyLoggedIn:
        # Login state is per process: another session of ours is logged in already.
        opened = token.open(rw=rw)
    except pkcs11.PinIncorrect:
        raise ESTError('token_login', 'wrong PIN for %s' % name)
    except pkcs11.PinLocked:
        raise ESTError('token_login', 'the user PIN of %s is locked' % name)
    except (pkcs11.PinInvalid, pkcs11.PinLenRange):
        raise ESTError('token_login', '%s rejects the PIN as malformed (length or characters)' % name)
    except pkcs11.PinExpired:
        raise ESTError('token_login', 'the user PIN of %s has expired' % name)
    except pkcs11.UserPinNotInitialized:
        raise ESTError('token_login', '%s has no user PIN set' % name)
    except pkcs11.PKCS11Error as exc:
        raise ESTError('token_login', 'opening a session on %s failed (%s)' % (name, type(exc).__name__))
    _OPEN_SESSIONS[ref.module_path] = _OPEN_SESSIONS.get(ref.module_path, 0) + 1
    try:
        yield opened
    finally:
        _OPEN_SESSIONS[ref.module_path] -= 1
        try:
            opened.close()
        except Exception:  # pylint: disable=broad-except
            pass


# ---------------------------------------------------------------------------------------------
# Keys

class TokenKey:
    """A key pair in a token: label, id, algorithm, public key (``cryptography``), the PKCS#11 objects."""

    def __init__(self, label, key_id, algorithm, public_key, private, public=None):
        self.label = label
        self.key_id = key_id
        self.algorithm = algorithm
        self.public_key = public_key
        self.private = private
        self.public = public

    def public_pem(self):
        from cryptography.hazmat.primitives import serialization
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode('ascii')

    def uri(self, token_label):
        """``pkcs11:token=..;object=..;id=%xx..;type=private`` (RFC 7512, percent-encoded)."""
        parts = []
        if token_label is not None:
            parts.append('token=' + _quote(token_label))
        if self.label is not None:
            parts.append('object=' + _quote(self.label))
        if self.key_id:
            parts.append('id=' + ''.join('%%%02X' % b for b in self.key_id))
        parts.append('type=private')
        return 'pkcs11:' + ';'.join(parts)

    def facts(self):
        """What the tpm_key module shows in its diff and returns (no secret in it)."""
        return {'label': self.label, 'key_id': (self.key_id or b'').hex(), 'algorithm': self.algorithm,
                'public_key': self.public_pem()}

    def __repr__(self):
        return 'TokenKey(label=%r, key_id=%r, algorithm=%r)' % (self.label, (self.key_id or b'').hex(), self.algorithm)


def _attr(obj, attribute, default=None):
    try:
        return obj[attribute]
    except Exception:  # pylint: disable=broad-except
        return default


def _ec_point(raw, size):
    """The uncompressed point from CKA_EC_POINT: DER OCTET STRING (the standard) or raw (some tokens)."""
    raw = bytes(raw)
    if len(raw) == 1 + 2 * size and raw[0] == 4:
        return raw
    if raw[:1] == b'\x04' and len(raw) > 2:
        length = raw[1]
        offset = 2
        if length & 0x80:
            count = length & 0x7f
            length = int.from_bytes(raw[2:2 + count], 'big')
            offset = 2 + count
        if len(raw) == offset + length:
            return raw[offset:]
    raise ESTError('key_store', 'the token returned an EC point that cannot be decoded')


def _public_from_object(pkcs11, public, key_type):
    """``(algorithm, cryptography public key)`` from a PKCS#11 public key object."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    Attribute = pkcs11.Attribute
    if key_type == pkcs11.KeyType.EC:
        params = bytes(public[Attribute.EC_PARAMS])
        for algorithm, (der, curve_name, size) in _CURVES.items():
            if params == der:
                point = _ec_point(public[Attribute.EC_POINT], size)
                try:
                    return algorithm, ec.EllipticCurvePublicKey.from_encoded_point(getattr(ec, curve_name)(), point)
                except ValueError:
                    raise ESTError('key_store', 'the token returned an EC point that is not on %s' % curve_name)
        raise ESTError('key_store', 'the token key is on a curve this client does not support (parameters %s)' % params.hex())
    if key_type == pkcs11.KeyType.RSA:
        modulus = int.from_bytes(bytes(public[Attribute.MODULUS]), 'big')
        exponent = int.from_bytes(bytes(public[Attribute.PUBLIC_EXPONENT]), 'big')
        return 'rsa-%d' % modulus.bit_length(), rsa.RSAPublicNumbers(exponent, modulus).public_key()
    raise ESTError('key_store', 'the token key is of a type this client does not support (%s)' % key_type)


def _make_token_key(pkcs11, private, public):
    Attribute = pkcs11.Attribute
    try:
        algorithm, public_key = _public_from_object(pkcs11, public, private.key_type)
        label = _attr(private, Attribute.LABEL)
        key_id = bytes(_attr(private, Attribute.ID, b'') or b'')
    except ESTError:
        raise
    except pkcs11.PKCS11Error as exc:
        raise ESTError('key_store', 'reading the token key failed (%s)' % _error_name(exc))
    return TokenKey(label, key_id, algorithm, public_key, private, public)


def _objects(session, attrs):
    return list(session.get_objects(attrs))


def find_key(session, label=None, key_id=None):
    """The key pair with that label and/or id, or None. ``key_conflict`` when several private keys match;
    ``key_store`` when the private key has no public key object beside it."""
    pkcs11 = _pkcs11()
    Attribute, ObjectClass = pkcs11.Attribute, pkcs11.ObjectClass
    key_id = _key_id_bytes(key_id)
    if label is None and key_id is None:
        raise ESTError('invalid_input', 'name the token key: label and/or key_id (object=/id= in a pkcs11 URI)')
    query = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if label is not None:
        query[Attribute.LABEL] = label
    if key_id is not None:
        query[Attribute.ID] = key_id
    try:
        privates = _objects(session, query)
        if not privates:
            return None
        if len(privates) > 1:
            raise ESTError('key_conflict', 'the token holds %d private keys with %s: name the key by label and key_id'
                           % (len(privates), _describe(label, key_id)))
        private = privates[0]
        found_id = bytes(_attr(private, Attribute.ID, b'') or b'')
        found_label = _attr(private, Attribute.LABEL)
        public = None
        for candidate in ({Attribute.ID: found_id, Attribute.LABEL: found_label}, {Attribute.ID: found_id},
                          {Attribute.LABEL: found_label}):
            candidate = dict((k, v) for k, v in candidate.items() if v not in (None, b'', ''))
            if not candidate:
                continue
            candidate[Attribute.CLASS] = ObjectClass.PUBLIC_KEY
            publics = _objects(session, candidate)
            if len(publics) == 1:
                public = publics[0]
                break
    except ESTError:
        raise
    except pkcs11.PKCS11Error as exc:
        raise ESTError('key_store', 'searching the token for the key with %s failed (%s)' % (_describe(label, key_id), _error_name(exc)))
    if public is None:
        raise ESTError('key_store', 'the private key with %s has no public key object in the token' % _describe(label, key_id))
    return _make_token_key(pkcs11, private, public)


def _describe(label, key_id):
    return ' and '.join(filter(None, ['label %r' % label if label is not None else None,
                                      'id %s' % key_id.hex() if key_id is not None else None]))


def generate_key(session, label, key_id, algorithm):
    """A new key pair in the token (needs a read-write session).

    Private key: token, private, sensitive, not extractable, sign; public key: verify. Encrypt,
    decrypt, wrap, unwrap and derive are left at the library's defaults (tpm2-pkcs11 refuses
    templates that set them). ``key_id`` None -> 16 random bytes. A private key that already has
    this label or id is ``key_conflict``.
    """
    pkcs11 = _pkcs11()
    Attribute = pkcs11.Attribute
    if algorithm not in ALGORITHMS:
        raise ESTError('invalid_input', 'algorithm must be one of %s, got %r' % (', '.join(ALGORITHMS), algorithm))
    if not label:
        raise ESTError('invalid_input', 'a token key needs a label')
    key_id = _key_id_bytes(key_id)
    if key_id is None:
        key_id = os.urandom(16)
    for query, what in (({Attribute.LABEL: label}, 'label %r' % label), ({Attribute.ID: key_id}, 'id %s' % key_id.hex())):
        query[Attribute.CLASS] = pkcs11.ObjectClass.PRIVATE_KEY
        try:
            taken = _objects(session, query)
        except pkcs11.PKCS11Error as exc:
            raise ESTError('key_store', 'searching the token failed (%s)' % _error_name(exc))
        if taken:
            raise ESTError('key_conflict', 'the token already holds a private key with %s' % what)
    default = pkcs11.DEFAULT
    public_template = {Attribute.TOKEN: True, Attribute.VERIFY: True, Attribute.ENCRYPT: default, Attribute.WRAP: default}
    private_template = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: default,
                        Attribute.UNWRAP: default, Attribute.DERIVE: default}
    family, _sep, size = algorithm.partition('-')
    try:
        if family == 'ec':
            public_template[Attribute.EC_PARAMS] = _CURVES[algorithm][0]
            public, private = session.generate_keypair(pkcs11.KeyType.EC, id=key_id, label=label, store=True,
                                                       public_template=public_template, private_template=private_template)
        else:
            public, private = session.generate_keypair(pkcs11.KeyType.RSA, int(size), id=key_id, label=label, store=True,
                                                       public_template=public_template, private_template=private_template)
    except pkcs11.SessionReadOnly:
        raise ESTError('key_store', 'generating a key needs a read-write session')
    except pkcs11.PKCS11Error as exc:
        raise ESTError('key_store', 'the token could not generate an %s key (%s)' % (algorithm, _error_name(exc)))
    return _make_token_key(pkcs11, private, public)


def destroy_key(session, key):
    """Remove both objects of ``key`` from the token."""
    pkcs11 = _pkcs11()
    for obj in (key.private, key.public):
        if obj is None:
            continue
        try:
            obj.destroy()
        except pkcs11.PKCS11Error as exc:
            raise ESTError('key_store', 'removing the token key %r failed (%s)' % (key.label, _error_name(exc)))


def relabel_key(session, key, new_label):
    """Set CKA_LABEL of both objects to ``new_label``; ``key_conflict`` if another key has that label."""
    pkcs11 = _pkcs11()
    Attribute = pkcs11.Attribute
    if not new_label:
        raise ESTError('invalid_input', 'a token key needs a label')
    try:
        for other in _objects(session, {Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY, Attribute.LABEL: new_label}):
            if bytes(_attr(other, Attribute.ID, b'') or b'') != key.key_id:
                raise ESTError('key_conflict', 'another private key in the token is labelled %r' % new_label)
        for obj in (key.private, key.public):
            if obj is not None:
                obj[Attribute.LABEL] = new_label
    except ESTError:
        raise
    except pkcs11.PKCS11Error as exc:
        raise ESTError('key_store', 'relabelling the token key %r failed (%s)' % (key.label, _error_name(exc)))
    key.label = new_label
    return key


def signer(key):
    """``sign(data) -> bytes`` with SHA-256 inside the token (RSA PKCS#1 v1.5 or raw ECDSA ``r||s``)."""
    pkcs11 = _pkcs11()
    Mechanism = pkcs11.Mechanism
    is_rsa = key.algorithm.startswith('rsa')
    state = {'combined': True}

    def sign(data):
        data = bytes(data)
        try:
            if not is_rsa:
                return key.private.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
            if state['combined']:
                try:
                    return key.private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
                except (pkcs11.MechanismInvalid, pkcs11.FunctionNotSupported):
                    state['combined'] = False
            return key.private.sign(_SHA256_DIGEST_INFO + hashlib.sha256(data).digest(), mechanism=Mechanism.RSA_PKCS)
        except pkcs11.PKCS11Error as exc:
            raise ESTError('key_store', 'signing with the token key %r failed (%s)' % (key.label, _error_name(exc)))
    return sign


def check_not_extractable(session, key):
    """True when the token refuses to reveal the private value (CKA_VALUE for EC, the private exponent for
    RSA) and the key is not marked extractable (so it cannot be wrapped out either)."""
    pkcs11 = _pkcs11()
    Attribute = pkcs11.Attribute
    secret = Attribute.PRIVATE_EXPONENT if key.algorithm.startswith('rsa') else Attribute.VALUE
    try:
        value = key.private[secret]
    except pkcs11.PKCS11Error:
        value = None
    if value:
        return False
    try:
        return not key.private[Attribute.EXTRACTABLE]
    except pkcs11.PKCS11Error:
        return True


__all__ = ['ALGORITHMS', 'PIN_ENV', 'TokenKey', 'TokenRef', 'check_not_extractable', 'destroy_key', 'find_key',
           'generate_key', 'list_tokens', 'parse_uri', 'relabel_key', 'session', 'signer']


PENDING_SUFFIX = '.pending'


class TokenKeyStore:
    """The key of one certificate in a token, for the enrollment engine (:class:`.keys.ExternalKey` objects).

    ``current`` is the key labelled ``ref.label`` (found by label; by id only when the URI names no
    label); ``pending`` a new key the engine made under ``<label>.pending`` for a rekey or a first
    enrollment, which :meth:`promote` turns into the current key once its certificate verified:
    the old key is destroyed and the new one relabelled, so the old pair keeps working until then.
    Each token step is a fault point of the crash tests (``fileio``), like a file step.
    """

    def __init__(self, session, ref):
        if not ref.label and ref.key_id is None:
            raise ESTError('invalid_input', 'private_key_uri must name the key (object=<label>, or id=)')
        self.session = session
        self.ref = ref
        self.label = ref.label
        # The current key as a TLS client key (:class:`.tpmtls.TPMClientKey`) when this host can present it.
        self.tls_key = None
        found = find_key(session, label=ref.label, key_id=None if ref.label else ref.key_id)
        self._current = found
        self._pending = find_key(session, label=ref.label + PENDING_SUFFIX) if ref.label else None

    def _external(self, key):
        if key is None:
            return None
        from .keys import ExternalKey
        return ExternalKey(key.public_key, signer(key), key.uri(self.ref.token_label))

    @property
    def current(self):
        return self._external(self._current)

    @property
    def pending(self):
        return self._external(self._pending)

    def _need_label(self, what):
        if not self.label:
            raise ESTError('invalid_input', '%s needs a key named by label (object= in private_key_uri), not only by id' % what)

    def create_pending(self, key_type):
        """A new key of ``key_type`` under the pending label (one a killed run left is replaced)."""
        from .fileio import crash_point
        self._need_label('a new key in the token')
        if self._pending is not None:
            self.discard_pending()
        crash_point('token', 'generate %s%s' % (self.label, PENDING_SUFFIX))
        self._pending = generate_key(self.session, self.label + PENDING_SUFFIX, None, key_type)
        return self.pending

    def promote(self):
        """The pending key becomes the key: the old one is destroyed, then the new one relabelled."""
        from .fileio import crash_point
        if self._pending is None:
            raise ESTError('host_state', 'there is no pending key %s%s in the token to put in place' % (self.label, PENDING_SUFFIX))
        if self._current is not None:
            crash_point('token', 'destroy %s' % self.label)
            destroy_key(self.session, self._current)
            self._current = None
        crash_point('token', 'relabel %s%s' % (self.label, PENDING_SUFFIX))
        self._current = relabel_key(self.session, self._pending, self.label)
        self._pending = None

    def discard_pending(self):
        from .fileio import crash_point
        if self._pending is not None:
            crash_point('token', 'destroy %s%s' % (self.label, PENDING_SUFFIX))
            destroy_key(self.session, self._pending)
            self._pending = None
