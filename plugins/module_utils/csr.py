# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PKCS#10 requests (RFC 2986) for software keys, built with ``cryptography``.

Also the vocabulary modules use to describe what a certificate should hold: subject
attributes, subjectAltName entries as ``DNS:``/``IP:``/``email:``/``URI:`` strings, key
usage and extended key usage names. The same vocabulary compares an existing certificate
with what is wanted.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re

from .errors import ESTError

# Subject attribute names users may write, mapped to dotted OIDs.
_NAME_OIDS = {
    'cn': '2.5.4.3', 'commonname': '2.5.4.3',
    'c': '2.5.4.6', 'countryname': '2.5.4.6',
    'l': '2.5.4.7', 'localityname': '2.5.4.7',
    'st': '2.5.4.8', 'stateorprovincename': '2.5.4.8',
    'street': '2.5.4.9', 'streetaddress': '2.5.4.9',
    'o': '2.5.4.10', 'organizationname': '2.5.4.10',
    'ou': '2.5.4.11', 'organizationalunitname': '2.5.4.11',
    'title': '2.5.4.12',
    'serialnumber': '2.5.4.5',
    'postalcode': '2.5.4.17',
    'sn': '2.5.4.4', 'surname': '2.5.4.4',
    'givenname': '2.5.4.42', 'gn': '2.5.4.42',
    'pseudonym': '2.5.4.65',
    'dc': '0.9.2342.19200300.100.1.25', 'domaincomponent': '0.9.2342.19200300.100.1.25',
    'uid': '0.9.2342.19200300.100.1.1', 'userid': '0.9.2342.19200300.100.1.1',
    'emailaddress': '1.2.840.113549.1.9.1', 'email': '1.2.840.113549.1.9.1',
}

KEY_USAGES = {
    'digitalsignature': 'digital_signature',
    'nonrepudiation': 'content_commitment', 'contentcommitment': 'content_commitment',
    'keyencipherment': 'key_encipherment',
    'dataencipherment': 'data_encipherment',
    'keyagreement': 'key_agreement',
    'keycertsign': 'key_cert_sign',
    'crlsign': 'crl_sign',
    'encipheronly': 'encipher_only',
    'decipheronly': 'decipher_only',
}

EXTENDED_KEY_USAGES = {
    'serverauth': '1.3.6.1.5.5.7.3.1',
    'clientauth': '1.3.6.1.5.5.7.3.2',
    'codesigning': '1.3.6.1.5.5.7.3.3',
    'emailprotection': '1.3.6.1.5.5.7.3.4',
    'timestamping': '1.3.6.1.5.5.7.3.8',
    'ocspsigning': '1.3.6.1.5.5.7.3.9',
    'anyextendedkeyusage': '2.5.29.37.0',
}

_DOTTED = re.compile(r'^[0-2](\.[0-9]+)+$')


def _norm(name):
    return re.sub(r'[\s_\-]', '', str(name)).lower()


# Control characters have no place in a name: C0 (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F).
_CONTROL = re.compile(r'[\x00-\x1f\x7f-\x9f]')

# RFC 5280 upper bounds that ``cryptography`` enforces (in UTF-8 bytes) when the name is built.
_UPPER_BOUNDS = {'2.5.4.3': ('ub-common-name', 64)}


def _check_subject_value(what, oid, value):
    """Refuse a subject value with control characters or over its RFC 5280 upper bound."""
    if _CONTROL.search(value):
        raise ESTError('invalid_input', '%s contains a control character: %r' % (what, value))
    bound = _UPPER_BOUNDS.get(oid)
    if bound and len(value.encode('utf-8')) > bound[1]:
        raise ESTError('invalid_input', '%s is too long (%d characters, %d bytes as UTF-8); at most %d bytes (RFC 5280 %s): %r'
                       % (what, len(value), len(value.encode('utf-8')), bound[1], bound[0], value))


def subject_pairs(common_name=None, subject=None):
    """``[(oid, value), ...]`` from ``subject`` (a dict, values str or list) and ``common_name``.

    Values must not be empty nor hold control characters (C0, DEL, C1); a common name holds at
    most 64 bytes as UTF-8 (RFC 5280 ub-common-name); a country is two ASCII letters.
    """
    pairs = []
    for name, values in (subject or {}).items():
        oid = name if _DOTTED.match(str(name)) else _NAME_OIDS.get(_norm(name))
        if oid is None:
            raise ESTError('invalid_input', 'unknown subject attribute %r (use e.g. CN, O, OU, C, ST, L, serialNumber, '
                           'emailAddress, DC, or a dotted OID)' % (name,))
        for value in values if isinstance(values, (list, tuple)) else [values]:
            value = '' if value is None else str(value)  # a YAML key without a value is empty, not 'None'
            if not value:
                raise ESTError('invalid_input', 'subject attribute %r is empty' % (name,))
            if oid == '2.5.4.6' and not re.match(r'[A-Za-z]{2}\Z', value):
                raise ESTError('invalid_input', 'subject C (country) must be two letters, got %r' % value)
            _check_subject_value('subject attribute %r' % (name,), oid, value)
            pairs.append((oid, value))
    if common_name:
        _check_subject_value('common_name', '2.5.4.3', str(common_name))
    if common_name and ('2.5.4.3', str(common_name)) not in pairs:
        if any(oid == '2.5.4.3' for oid, _v in pairs):
            raise ESTError('invalid_input', 'common_name and subject.CN disagree')
        pairs.append(('2.5.4.3', str(common_name)))
    return pairs


def x509_name(pairs):
    from cryptography import x509
    return x509.Name([x509.NameAttribute(x509.ObjectIdentifier(oid), value) for oid, value in pairs])


def name_pairs(name):
    """``[(oid, value), ...]`` of an ``x509.Name``, for comparing with :func:`subject_pairs`."""
    return [(attr.oid.dotted_string, attr.value if isinstance(attr.value, str) else attr.value.hex()) for attr in name]


_DNS_LABEL = re.compile(r'[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\Z')
_DNS_LABEL_CHAR = re.compile(r'[^a-z0-9_-]')
_URI_SCHEME = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*:')
_SPACE_OR_CONTROL = re.compile(r'[\s\x00-\x1f\x7f-\x9f]')


def _is_ascii(text):
    return all(ord(char) < 128 for char in text)


def _dns_problem(name, wildcard=True):
    """Why ``name`` (lower case, no trailing dot) is not a DNS name, or None when it is one."""
    if not _is_ascii(name) and not _CONTROL.search(name):  # a control character is shown below
        return 'it is not ASCII: give an internationalized name in its A-label (xn--) form'
    if len(name) > 253:
        return 'it is longer than 253 characters'
    labels = name.split('.')
    if wildcard and len(labels) > 1 and labels[0] == '*':
        labels = labels[1:]
    for label in labels:
        if not label:
            return 'it has an empty label'
        if len(label) > 63:
            return 'label %r is longer than 63 characters' % label
        if not _DNS_LABEL.match(label):
            bad = _DNS_LABEL_CHAR.search(label)
            if bad is None:
                return 'label %r starts or ends with a hyphen' % label
            hint = ' (a wildcard is a whole first label: *.example.com)' if bad.group() == '*' and wildcard else ''
            return '%r in label %r; labels hold letters, digits, hyphens and underscores%s' % (bad.group(), label, hint)
    return None


def _email_problem(value):
    """Why ``value`` is not an rfc822Name mailbox (local-part@domain), or None when it is one."""
    if not _is_ascii(value) and not _CONTROL.search(value):
        return 'it is not ASCII: an rfc822Name is ASCII, give the domain in its A-label (xn--) form'
    local, _at, domain = value.rpartition('@')
    if not local or not domain:
        return 'it must look like local-part@domain'
    bad = _SPACE_OR_CONTROL.search(local) or re.search('@', local)
    if bad:
        return '%r in the local part %r' % (bad.group(), local)
    problem = _dns_problem(domain.lower(), wildcard=False)
    if problem:
        return 'domain %r: %s' % (domain, problem)
    return None


def _uri_problem(value):
    """Why ``value`` is not a URI (RFC 3986: a scheme, no spaces or control characters), or None when it is one."""
    bad = _SPACE_OR_CONTROL.search(value)
    if bad:
        return 'it contains %r; percent-encode it' % bad.group()
    if not _is_ascii(value):
        return 'it is not ASCII: give the host in its A-label (xn--) form and percent-encode other characters'
    if not _URI_SCHEME.match(value):
        return 'it has no scheme (such as https: or urn:)'
    return None


def normalize_san(entry):
    """One subjectAltName entry in canonical string form (``DNS:`` lower case, ``IP:`` compressed).

    Values are checked, and an ``invalid_input`` error names the bad entry:

    - ``DNS:`` a host name: labels of 1-63 letters, digits, hyphens (not first or last in a label)
      and underscores, at most 253 characters; underscores are allowed because real names such as
      ``_sip._tcp.example.com`` appear in certificates. A wildcard is only a whole first label
      (``*.example.com``); one trailing dot is dropped. Internationalized names go in their A-label
      (``xn--``) form.
    - ``email:`` local-part@domain: an ASCII local part without spaces, control characters or ``@``,
      and a domain that is a DNS name as above (no wildcard, no trailing dot).
    - ``URI:`` ASCII with a scheme (RFC 3986: a letter, then letters, digits, ``+``, ``-`` or ``.``,
      then ``:``) and no spaces or control characters.
    - ``IP:`` an IPv4 or IPv6 address.
    """
    text = str(entry).strip()
    kind, sep, value = text.partition(':')
    if not sep or not value:
        raise ESTError('invalid_input', 'subject_alt_name entry %r must look like DNS:name, IP:address, email:addr or URI:uri' % text)
    kind = kind.strip().lower()
    value = value.strip()
    if kind == 'dns':
        name = value.lower()
        name = name[:-1] if name.endswith('.') else name
        problem = _dns_problem(name)
        if problem:
            raise ESTError('invalid_input', 'subject_alt_name entry %r is not a valid DNS name: %s' % (text, problem))
        return 'DNS:' + name
    if kind in ('ip', 'ip address'):
        try:
            return 'IP:' + str(ipaddress.ip_address(value))
        except ValueError:
            raise ESTError('invalid_input', 'subject_alt_name %r is not an IP address' % text)
    if kind in ('email', 'rfc822', 'rfc822name'):
        problem = _email_problem(value)
        if problem:
            raise ESTError('invalid_input', 'subject_alt_name entry %r is not a valid email address: %s' % (text, problem))
        return 'email:' + value
    if kind == 'uri':
        problem = _uri_problem(value)
        if problem:
            raise ESTError('invalid_input', 'subject_alt_name entry %r is not a valid URI: %s' % (text, problem))
        return 'URI:' + value
    raise ESTError('invalid_input', 'subject_alt_name type %r is not supported (DNS, IP, email, URI)' % kind)


def general_names(sans):
    """``x509.GeneralName`` objects from SAN strings; GeneralName objects pass through unchecked.

    Names copied from an existing certificate (re-enrollment repeats them, RFC 7030 4.2.2) are
    handed over as objects, so a renewal never fails on a name the CA once accepted.
    """
    from cryptography import x509
    result = []
    for entry in sans:
        if isinstance(entry, x509.GeneralName):
            result.append(entry)
            continue
        kind, _sep, value = normalize_san(entry).partition(':')
        if kind == 'DNS':
            result.append(x509.DNSName(value))
        elif kind == 'IP':
            result.append(x509.IPAddress(ipaddress.ip_address(value)))
        elif kind == 'email':
            result.append(x509.RFC822Name(value))
        else:
            result.append(x509.UniformResourceIdentifier(value))
    return result


def san_strings(names):
    """Canonical strings for the GeneralNames of a subjectAltName extension."""
    from cryptography import x509
    result = []
    for name in names:
        if isinstance(name, x509.DNSName):
            result.append('DNS:' + name.value.lower().rstrip('.'))
        elif isinstance(name, x509.IPAddress):
            result.append('IP:' + str(name.value))
        elif isinstance(name, x509.RFC822Name):
            result.append('email:' + name.value)
        elif isinstance(name, x509.UniformResourceIdentifier):
            result.append('URI:' + name.value)
        else:
            result.append('%s:%r' % (type(name).__name__, name.value))
    return result


def key_usage_names(names):
    """Canonical attribute names of ``cryptography``'s KeyUsage for user-written names."""
    result = []
    for name in names or []:
        attr = KEY_USAGES.get(_norm(name))
        if attr is None:
            raise ESTError('invalid_input', 'unknown key usage %r (use e.g. digitalSignature, keyEncipherment, keyAgreement)' % name)
        result.append(attr)
    return sorted(set(result))


def eku_oids(names):
    result = []
    for name in names or []:
        oid = name if _DOTTED.match(str(name)) else EXTENDED_KEY_USAGES.get(_norm(name))
        if oid is None:
            raise ESTError('invalid_input', 'unknown extended key usage %r (use serverAuth, clientAuth, ... or a dotted OID)' % name)
        result.append(oid)
    return sorted(set(result))


def extension_values(ext_holder):
    """``{'sans': [...], 'key_usage': [...], 'eku': [...]}`` of a certificate or CSR."""
    from cryptography import x509
    result = {'sans': [], 'key_usage': [], 'eku': []}
    extensions = ext_holder.extensions
    try:
        result['sans'] = san_strings(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
        names = []
        for attr in sorted(set(KEY_USAGES.values())):
            try:
                if getattr(usage, attr):
                    names.append(attr)
            except ValueError:  # encipher_only/decipher_only without key_agreement
                pass
        result['key_usage'] = names
    except x509.ExtensionNotFound:
        pass
    try:
        result['eku'] = sorted(oid.dotted_string for oid in extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        pass
    return result


def build_csr(private_key, pairs, sans=None, key_usage=None, eku=None, challenge_password=None, hash_name=None,
              extra_extensions=()):
    """A signed ``x509.CertificateSigningRequest`` for ``private_key``.

    ``extra_extensions``: further ``(x509.ExtensionType, critical)`` pairs, e.g. values a CA asked for.
    """
    from cryptography import x509
    from cryptography.x509.oid import AttributeOID
    from .keys import signature_hash
    if not pairs and not sans:
        raise ESTError('invalid_input', 'the request needs a subject (common_name or subject) or subject_alt_name')
    try:
        builder = x509.CertificateSigningRequestBuilder().subject_name(x509_name(pairs))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(general_names(sans)), critical=not pairs)
    except ValueError as exc:  # e.g. a CN over 64 characters, a name with non-ASCII (not IDNA-encoded) characters
        raise ESTError('invalid_input', 'cannot build the certificate request: %s' % exc)
    usages = key_usage_names(key_usage)
    if usages:
        flags = dict((attr, attr in usages) for attr in set(KEY_USAGES.values()))
        try:
            usage = x509.KeyUsage(**flags)
        except ValueError as exc:  # encipherOnly/decipherOnly without keyAgreement
            raise ESTError('invalid_input', 'key_usage %s is not possible: %s' % (', '.join(usages), exc))
        builder = builder.add_extension(usage, critical=True)
    ekus = eku_oids(eku)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in ekus]), critical=False)
    for extension, critical in extra_extensions:
        try:
            builder = builder.add_extension(extension, critical=critical)
        except ValueError as exc:  # the same extension twice
            raise ESTError('invalid_input', 'cannot add extension %s to the request: %s' % (extension.oid.dotted_string, exc))
    if challenge_password:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge_password.encode('utf-8'))
    try:
        return builder.sign(private_key, signature_hash(private_key, hash_name))
    except (ValueError, TypeError) as exc:
        raise ESTError('invalid_input', 'cannot build the certificate request: %s' % exc)


def load_csr(data, source='CSR'):
    """A CSR from PEM or DER bytes; its signature must verify."""
    from cryptography import x509
    if isinstance(data, str):
        data = data.encode('utf-8')
    try:
        if b'-----BEGIN' in data:
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise ESTError('invalid_input', 'cannot read the %s: %s' % (source, exc))
    if not csr.is_signature_valid:
        raise ESTError('invalid_input', 'the %s signature does not verify' % source)
    return csr


def csr_der(csr):
    from cryptography.hazmat.primitives.serialization import Encoding
    return csr.public_bytes(Encoding.DER)


def csr_pem(csr):
    from cryptography.hazmat.primitives.serialization import Encoding
    return csr.public_bytes(Encoding.PEM)
