"""The server's JSON configuration: defaults, validation and runtime merging.

Every key is optional.  ``POST /lab/config`` merges a JSON object into the
running configuration key by key (a key's new value replaces the old one).
"""

import copy
import json
import re
import threading

from .throttle import check_throttle

# Operation path segments; a CA label must not collide with them (RFC 7030 3.2.2).
OPERATIONS = ("cacerts", "simpleenroll", "simplereenroll", "csrattrs", "fullcmc", "serverkeygen")

# Values of tls_min_version; the server never goes below TLS 1.2.
TLS_VERSIONS = ("1.2", "1.3")

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

DEFAULTS = {
    "users": {},
    "require_auth": True,
    "labels": [],
    "cert_lifetime_days": 30,
    "cert_lifetime_seconds": None,
    "pending": None,
    "retry_after": 1,
    "csrattrs": None,
    "max_body_bytes": 65536,
    "rollover": False,
    "issuing_ca": "root",  # "intermediate": end-entity certificates come from a subordinate CA of the label's CA
    "cacerts_omit_intermediate": False,  # true: that intermediate is in neither /cacerts nor the enrollment answers
    "copy_sans": True,  # false: issue without the requested subjectAltName, as several example CAs do
    "socket_timeout": 15,
    "tls_min_version": "1.2",  # "1.3": TLS 1.3 only (no tls-unique); applies to connections made after a change
    "require_tls_unique": False,  # true: /simpleenroll, /simplereenroll need the CSR linked to the TLS session (RFC 7030 3.5)
    "response_wrap": 64,
    "response_eol": "lf",  # base64 as OpenSSL writes it, the form libest reads; "crlf" is the variant
    "serverkeygen_order": "key-first",
    "serverkeygen_eol": "crlf",
    "serverkeygen_key_format": "pkcs8",
    "serverkeygen_cte": True,
    "serverkeygen_encrypted_content": "pkcs8",
    "fullcmc_response": "signed",
    "fullcmc_pending": "http202",
    "fullcmc_fail_status": 200,
    "fullcmc_signer": "ca",  # who signs PKIResponses: "ca", "cmc_ra", "ee" (no CMC EKU) or "none" (no SignerInfo)
    "fullcmc_omit_signer_cert": False,  # true: the signer's certificate is not in SignedData.certificates
    "throttle": None,  # {"max_in_flight", "per_second", "burst", "retry_after", "status"}: beyond it 503/429 (throttle.py)
}


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_users(value):
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError("users must be an object mapping user names to password strings")


def _check_labels(value):
    if not isinstance(value, list):
        raise ConfigError("labels must be a list of strings")
    for label in value:
        if not isinstance(label, str) or not LABEL_RE.match(label):
            raise ConfigError("invalid CA label %r (letters, digits, '.', '_', '-'; at most 64)" % (label,))
        if label in OPERATIONS:
            raise ConfigError("CA label %r collides with an EST operation name" % label)


def _check_pending(value):
    if value is None:
        return
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError('pending must be null, {"after_seconds": N} or {"after_polls": N}')
    key, number = next(iter(value.items()))
    if key == "after_seconds" and _is_number(number) and number >= 0:
        return
    if key == "after_polls" and _is_int(number) and number >= 0:
        return
    raise ConfigError('pending must be null, {"after_seconds": N} or {"after_polls": N} with N >= 0')


def _check_csrattrs(value):
    if value is None or value == "404":
        return
    try:  # imported here: the server runs without pyasn1 as long as no csrattrs list or template is configured
        from .csrattrs import CsrAttrsError, encode_csrattrs
    except ImportError as exc:
        raise ConfigError("csrattrs lists and templates need the pyasn1 and pyasn1-modules packages (%s)" % exc) from exc
    try:
        encode_csrattrs(value)
    except CsrAttrsError as exc:
        raise ConfigError("csrattrs: %s" % exc) from exc


def _positive_number(name):
    def check(value):
        if not _is_number(value) or value <= 0:
            raise ConfigError("%s must be a number > 0" % name)
    return check


def _optional_positive_number(name):
    def check(value):
        if value is not None and (not _is_number(value) or value <= 0):
            raise ConfigError("%s must be null or a number > 0" % name)
    return check


def _int_at_least(name, minimum):
    def check(value):
        if not _is_int(value) or value < minimum:
            raise ConfigError("%s must be an integer >= %d" % (name, minimum))
    return check


def _boolean(name):
    def check(value):
        if not isinstance(value, bool):
            raise ConfigError("%s must be true or false" % name)
    return check


def _fail_status(value):
    if not _is_int(value) or not (value == 200 or 400 <= value <= 599):
        raise ConfigError("fullcmc_fail_status must be 200 or an HTTP error status 400-599")


def _choice(name, choices):
    def check(value):
        if value not in choices:
            raise ConfigError("%s must be one of %s" % (name, ", ".join(choices)))
    return check


CHECKS = {
    "users": _check_users,
    "require_auth": _boolean("require_auth"),
    "labels": _check_labels,
    "cert_lifetime_days": _positive_number("cert_lifetime_days"),
    "cert_lifetime_seconds": _optional_positive_number("cert_lifetime_seconds"),
    "pending": _check_pending,
    "retry_after": _int_at_least("retry_after", 0),
    "csrattrs": _check_csrattrs,
    "max_body_bytes": _int_at_least("max_body_bytes", 1),
    "rollover": _boolean("rollover"),
    "issuing_ca": _choice("issuing_ca", ("root", "intermediate")),
    "cacerts_omit_intermediate": _boolean("cacerts_omit_intermediate"),
    "copy_sans": _boolean("copy_sans"),
    "socket_timeout": _positive_number("socket_timeout"),
    "tls_min_version": _choice("tls_min_version", TLS_VERSIONS),
    "require_tls_unique": _boolean("require_tls_unique"),
    "response_wrap": _int_at_least("response_wrap", 0),
    "response_eol": _choice("response_eol", ("crlf", "lf")),
    "serverkeygen_order": _choice("serverkeygen_order", ("key-first", "cert-first")),
    "serverkeygen_eol": _choice("serverkeygen_eol", ("crlf", "lf")),
    "serverkeygen_key_format": _choice("serverkeygen_key_format", ("pkcs8", "pkcs1", "sec1", "traditional")),
    "serverkeygen_cte": _boolean("serverkeygen_cte"),
    "serverkeygen_encrypted_content": _choice("serverkeygen_encrypted_content", ("pkcs8", "key-package", "signed-key-package")),
    "fullcmc_response": _choice("fullcmc_response", ("signed", "certs-only")),
    "fullcmc_pending": _choice("fullcmc_pending", ("http202", "cmc200")),
    "fullcmc_fail_status": _fail_status,
    "fullcmc_signer": _choice("fullcmc_signer", ("ca", "cmc_ra", "ee", "none")),
    "fullcmc_omit_signer_cert": _boolean("fullcmc_omit_signer_cert"),
    "throttle": lambda value: check_throttle(value, ConfigError),
}


def validate_changes(changes):
    """Check a partial configuration; raise ConfigError on the first problem."""
    if not isinstance(changes, dict):
        raise ConfigError("configuration must be a JSON object")
    for key, value in changes.items():
        if key not in CHECKS:
            raise ConfigError("unknown configuration key %r" % key)
        CHECKS[key](value)


def load_config_file(path):
    """Read a JSON config file and return the full validated configuration."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError("cannot read config file %s: %s" % (path, exc)) from exc
    validate_changes(data)
    merged = copy.deepcopy(DEFAULTS)
    merged.update(data)
    return merged


class Config:
    """The running configuration, safe to read and change from worker threads."""

    def __init__(self, values=None):
        self._lock = threading.Lock()
        self._values = copy.deepcopy(DEFAULTS)
        if values:
            validate_changes(values)
            self._values.update(copy.deepcopy(values))

    def get(self, key):
        with self._lock:
            return copy.deepcopy(self._values[key])

    def snapshot(self):
        with self._lock:
            return copy.deepcopy(self._values)

    def merge(self, changes):
        """Validate and apply a partial configuration; return the new snapshot."""
        validate_changes(changes)
        with self._lock:
            self._values.update(copy.deepcopy(changes))
            return copy.deepcopy(self._values)

    def lifetime_seconds(self):
        with self._lock:
            seconds = self._values["cert_lifetime_seconds"]
            if seconds is None:
                seconds = self._values["cert_lifetime_days"] * 86400
            return seconds
