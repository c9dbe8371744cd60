"""Certificate authorities: creation, persistence in the state directory, issuance.

Layout of the state directory::

    ca.pem, ca.key                    the default CA (key 0600)
    intermediate.pem, .key            its subordinate CA, made once when issuing_ca is "intermediate"
    server.pem, server.key            the TLS server certificate, issued by the default CA
    labels/<label>/ca.pem, ca.key     one CA per label
    labels/<label>/intermediate.*     the label CA's subordinate CA, as for the default CA
    [labels/<label>/]cmc-ra.pem, .key /fullcmc response signer with EKU id-kp-cmcRA (fullcmc_signer: cmc_ra), made once
    [labels/<label>/]cmc-ee.pem, .key /fullcmc response signer without a CMC EKU (fullcmc_signer: ee), made once
    [labels/<label>/]rollover/*.pem   RFC 7030 4.1.3 root key update certificates
"""

import datetime
import hashlib
import ipaddress
import os
import tempfile
import threading

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 397
SERVER_RENEW_BEFORE = datetime.timedelta(days=14)
BACKDATE = datetime.timedelta(minutes=5)
DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
INTERMEDIATE_STEM = "intermediate"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def new_private_key(key_type):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError("unsupported key type %r" % key_type)


def new_private_key_like(key):
    """A new private key of the same kind as key: RSA of the same size, EC on the same curve."""
    if isinstance(key, rsa.RSAPrivateKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=key.key_size)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ec.generate_private_key(type(key.curve)())
    raise ValueError("unsupported CA key %s" % type(key).__name__)


def fingerprint(cert):
    """SHA-256 of the certificate DER, lowercase hex without colons."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def write_file(path, data, mode):
    """Write bytes atomically with the given permissions."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def save_pair(directory, stem, cert, key):
    write_file(os.path.join(directory, stem + ".key"), key_pem(key), 0o600)
    write_file(os.path.join(directory, stem + ".pem"), cert_pem(cert), 0o644)


def load_pair(directory, stem):
    """Return (cert, key) from DIR/stem.pem and DIR/stem.key, or None when either is missing."""
    cert_path = os.path.join(directory, stem + ".pem")
    key_path = os.path.join(directory, stem + ".key")
    if not (os.path.exists(cert_path) and os.path.exists(key_path)):
        return None
    with open(cert_path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    with open(key_path, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    return cert, key


def load_cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def signing_hash(key):
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return hashes.SHA256()
    return None  # Ed25519 / Ed448 sign without a separate hash


def ca_name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pki.est lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _ca_extensions(builder, public_key, issuer_key, path_length=None, digital_signature=True):
    key_usage = x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False)
    return (builder
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(key_usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))


def make_ca_cert(subject, public_key, issuer_name, issuer_key, not_before, not_after, path_length=None, digital_signature=True):
    """A CA certificate for public_key signed by issuer_key (self-signed when they match).

    path_length and digital_signature go into basicConstraints and keyUsage
    (keyCertSign and cRLSign are always set).
    """
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_name)
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after))
    builder = _ca_extensions(builder, public_key, issuer_key, path_length, digital_signature)
    return builder.sign(issuer_key, signing_hash(issuer_key))


def self_signed_ca(name, key, days=CA_DAYS):
    """A self-signed CA certificate for key with subject (and issuer) name."""
    now = utcnow()
    return make_ca_cert(name, key.public_key(), name, key, now - BACKDATE, now + datetime.timedelta(days=days))


def create_self_signed_ca(common_name, key_type, days=CA_DAYS):
    key = new_private_key(key_type)
    return self_signed_ca(ca_name(common_name), key, days), key


def create_intermediate_ca(root_cert, root_key, days=CA_DAYS):
    """A subordinate CA under root: pathLen 0, keyUsage keyCertSign + cRLSign, a new key of the root key's kind.

    Its validity ends with the root's at the latest.
    """
    key = new_private_key_like(root_key)
    root_cn = root_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    now = utcnow()
    not_before = max(now - BACKDATE, root_cert.not_valid_before_utc)
    not_after = min(now + datetime.timedelta(days=days), root_cert.not_valid_after_utc)
    cert = make_ca_cert(ca_name("%s Intermediate" % root_cn), key.public_key(), root_cert.subject, root_key,
                        not_before, not_after, path_length=0, digital_signature=False)
    return cert, key


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _intermediate_usable(cert, key, root_cert):
    """True when cert (with key) is a subordinate CA of root_cert that is still valid."""
    try:
        cert.verify_directly_issued_by(root_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return _spki(cert.public_key()) == _spki(key.public_key()) and cert.not_valid_after_utc > utcnow()


def default_key_usage(public_key):
    encipher = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=encipher, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)


DEFAULT_EKU = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])

OID_KP_CMC_RA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28")  # RFC 6402 2.10
# fullcmc_signer mode -> (file stem, common name suffix, extended key usages) of the certificate that signs /fullcmc answers.
RESPONSE_SIGNERS = {
    "cmc_ra": ("cmc-ra", "CMC RA", [OID_KP_CMC_RA]),
    "ee": ("cmc-ee", "end entity", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
}


def _extended_key_usages(cert):
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def _response_signer_usable(cert, key, ca_cert, usages):
    """True when cert (with key) was issued by ca_cert with exactly these extended key usages and is still valid."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (_spki(cert.public_key()) == _spki(key.public_key()) and _extended_key_usages(cert) == usages
            and cert.not_valid_after_utc > utcnow())


class CertificateAuthority:
    """One CA: its certificate, private key and home directory.

    A label's CA (stem "ca") may have an intermediate: a CertificateAuthority
    with stem "intermediate" in the same directory and with the same label,
    which issues end-entity certificates when issuing_ca is "intermediate".
    """

    def __init__(self, label, directory, cert, key, stem="ca"):
        self.label = label
        self.directory = directory
        self.cert = cert
        self.key = key
        self.stem = stem
        self._lock = threading.Lock()
        self._rollover = None
        self._intermediate = None
        self._response_signers = {}

    @property
    def cert_path(self):
        return os.path.join(self.directory, self.stem + ".pem")

    @property
    def intermediate(self):
        """The subordinate CA under this one, or None while there is none."""
        return self._intermediate

    def load_intermediate(self):
        """Pick up DIR/intermediate.pem and .key when they are a valid subordinate CA of this CA."""
        pair = load_pair(self.directory, INTERMEDIATE_STEM)
        if pair is not None and _intermediate_usable(pair[0], pair[1], self.cert):
            with self._lock:
                self._intermediate = CertificateAuthority(self.label, self.directory, *pair, stem=INTERMEDIATE_STEM)

    def ensure_intermediate(self):
        """Create and persist the intermediate once (replacing files that do not fit); True when this call made it."""
        with self._lock:
            if self._intermediate is not None:
                return False
            cert, key = create_intermediate_ca(self.cert, self.key)
            save_pair(self.directory, INTERMEDIATE_STEM, cert, key)
            self._intermediate = CertificateAuthority(self.label, self.directory, cert, key, stem=INTERMEDIATE_STEM)
            return True

    def issuer_certs(self):
        """The certificates that may have signed this CA's end-entity certificates: its own and its intermediate's."""
        intermediate = self._intermediate
        return [self.cert] + ([intermediate.cert] if intermediate is not None else [])

    @property
    def fingerprint(self):
        return fingerprint(self.cert)

    def issue(self, subject, public_key, lifetime_seconds, san=None, key_usage=None, eku=None, signer=None, extensions=()):
        """Sign an end-entity certificate.

        san, key_usage and eku are x509.Extension objects (or None for the
        defaults).  signer, when given, is a (name, key) pair used instead of
        this CA -- the fault injector uses it to sign with a CA nobody trusts.
        extensions are more (value, critical) pairs (the revocation pointers).
        """
        issuer_name, issuer_key = signer or (self.cert.subject, self.key)
        now = utcnow()
        builder = (x509.CertificateBuilder()
                   .subject_name(subject)
                   .issuer_name(issuer_name)
                   .public_key(public_key)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(seconds=lifetime_seconds))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if key_usage is not None:
            builder = builder.add_extension(key_usage.value, critical=key_usage.critical)
        else:
            builder = builder.add_extension(default_key_usage(public_key), critical=True)
        if eku is not None:
            builder = builder.add_extension(eku.value, critical=eku.critical)
        else:
            builder = builder.add_extension(DEFAULT_EKU, critical=False)
        if san is not None:
            builder = builder.add_extension(san.value, critical=san.critical)
        for value, critical in extensions:
            builder = builder.add_extension(value, critical=critical)
        builder = (builder
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
        return builder.sign(issuer_key, signing_hash(issuer_key))

    def response_signer(self, mode):
        """(cert, key) of this CA's /fullcmc response signer for fullcmc_signer mode "cmc_ra" or "ee".

        An end-entity certificate this CA issued (keyUsage digitalSignature, the
        mode's EKU, a new key of the CA key's kind, valid as long as the CA),
        made once and persisted as DIR/<stem>.pem and .key; files that do not
        fit (other issuer, other EKU, expired) are replaced.
        """
        stem, suffix, usages = RESPONSE_SIGNERS[mode]
        with self._lock:
            if mode not in self._response_signers:
                pair = load_pair(self.directory, stem)
                if pair is None or not _response_signer_usable(pair[0], pair[1], self.cert, usages):
                    pair = self._new_response_signer(suffix, usages)
                    save_pair(self.directory, stem, *pair)
                self._response_signers[mode] = pair
            return self._response_signers[mode]

    def _new_response_signer(self, suffix, usages):
        key = new_private_key_like(self.key)
        common_name = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        key_usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
        lifetime = min(datetime.timedelta(days=CA_DAYS), self.cert.not_valid_after_utc - utcnow())
        cert = self.issue(ca_name("%s %s" % (common_name, suffix)), key.public_key(), int(lifetime.total_seconds()),
                          key_usage=x509.Extension(x509.KeyUsage.oid, True, key_usage),
                          eku=x509.Extension(x509.ExtendedKeyUsage.oid, False, x509.ExtendedKeyUsage(usages)))
        return cert, key

    def rollover_certs(self, key_type):
        """Return [NewWithNew, OldWithNew, NewWithOld], creating and persisting them once."""
        with self._lock:
            if self._rollover is None:
                self._rollover = self._load_or_create_rollover(key_type)
            return list(self._rollover)

    def _load_or_create_rollover(self, key_type):
        directory = os.path.join(self.directory, "rollover")
        names = ("new_with_new.pem", "old_with_new.pem", "new_with_old.pem")
        paths = [os.path.join(directory, name) for name in names]
        if all(os.path.exists(path) for path in paths):
            return [load_cert(path) for path in paths]
        old_cert, old_key = self.cert, self.key
        new_key = new_private_key(key_type)
        old_cn = old_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        new_name = ca_name("%s (new key)" % old_cn)
        now = utcnow()
        new_not_after = max(old_cert.not_valid_after_utc, now) + datetime.timedelta(days=CA_DAYS)
        cross_not_after = old_cert.not_valid_after_utc
        new_with_new = make_ca_cert(new_name, new_key.public_key(), new_name, new_key, now - BACKDATE, new_not_after)
        old_with_new = make_ca_cert(old_cert.subject, old_cert.public_key(), new_name, new_key, now - BACKDATE, cross_not_after)
        new_with_old = make_ca_cert(new_name, new_key.public_key(), old_cert.subject, old_key, now - BACKDATE, cross_not_after)
        write_file(os.path.join(directory, "new_with_new.key"), key_pem(new_key), 0o600)
        certs = [new_with_new, old_with_new, new_with_old]
        for path, cert in zip(paths, certs):
            write_file(path, cert_pem(cert), 0o644)
        return certs


def load_or_create_ca(label, directory, common_name, key_type):
    pair = load_pair(directory, "ca")
    if pair is None:
        pair = create_self_signed_ca(common_name, key_type)
        save_pair(directory, "ca", *pair)
    authority = CertificateAuthority(label, directory, *pair)
    authority.load_intermediate()
    return authority


def _general_name(name):
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _server_cert_usable(cert, ca, names):
    """True when cert is issued by ca, not close to expiry and covers all names."""
    try:
        cert.verify_directly_issued_by(ca.cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if cert.not_valid_after_utc - utcnow() < SERVER_RENEW_BEFORE:
        return False
    present = set(san)
    return all(_general_name(name) in present for name in names)


def ensure_server_cert(state_dir, ca, key_type, extra_names=()):
    """Reuse DIR/server.pem when still good for ca and the names; else issue a new one."""
    names = list(DEFAULT_SERVER_NAMES) + [n for n in extra_names if n not in DEFAULT_SERVER_NAMES]
    pair = load_pair(state_dir, "server")
    if pair is not None and _server_cert_usable(pair[0], ca, names):
        return
    key = pair[1] if pair is not None else new_private_key(key_type)
    san = x509.Extension(x509.SubjectAlternativeName.oid, False, x509.SubjectAlternativeName([_general_name(n) for n in names]))
    eku = x509.Extension(x509.ExtendedKeyUsage.oid, False, x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = ca.issue(subject, key.public_key(), SERVER_DAYS * 86400, san=san, eku=eku)
    save_pair(state_dir, "server", cert, key)


class CaStore:
    """The default CA and the labelled CAs of one state directory."""

    def __init__(self, state_dir, key_type):
        self.state_dir = state_dir
        self.key_type = key_type
        self._lock = threading.Lock()
        self.default = load_or_create_ca(None, state_dir, "estlab Lab CA", key_type)
        self._labels = {}

    def ensure_labels(self, labels):
        """Load or create the CA of every label; return the ones that are new."""
        added = []
        with self._lock:
            for label in labels:
                if label not in self._labels:
                    directory = os.path.join(self.state_dir, "labels", label)
                    self._labels[label] = load_or_create_ca(label, directory, "estlab Lab CA %s" % label, self.key_type)
                    added.append(self._labels[label])
        return added

    def get(self, label):
        """The CA for a path label (None means the default CA); None when unknown."""
        if label is None:
            return self.default
        with self._lock:
            return self._labels.get(label)

    def labels(self):
        with self._lock:
            return dict(self._labels)

    def all(self):
        return [self.default] + list(self.labels().values())
