# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small helpers shared by the pyasn1-based parsers (csrattrs, serverkeygen, cmc)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from .errors import ESTError


def short_reason(exc):
    """The first line of an exception's text, at most 160 characters (pyasn1 messages run long)."""
    text = str(exc).strip()
    text = text.splitlines()[0] if text else exc.__class__.__name__
    return text if len(text) <= 160 else text[:160] + '...'


def require_pyasn1(available, import_error, purpose):
    """``ESTError('invalid_input')`` naming ``purpose`` when pyasn1 could not be imported."""
    if not available:
        raise ESTError('invalid_input', '%s needs the Python libraries pyasn1 and pyasn1-modules: %s' % (purpose, import_error))


def decode_all(data, spec=None, what='value', der=False):
    """Decode all of ``data`` (BER, or DER with ``der``); anything odd is ``ESTError('bad_response')``."""
    from pyasn1.codec.ber import decoder as ber_decoder
    from pyasn1.codec.der import decoder as der_decoder
    decoder = der_decoder if der else ber_decoder
    try:
        if spec is None:
            value, rest = decoder.decode(bytes(data))
        else:
            value, rest = decoder.decode(bytes(data), asn1Spec=spec)
    except Exception as exc:  # pyasn1 raises PyAsn1Error and, on hostile input, a few others
        raise ESTError('bad_response', 'the %s is not valid ASN.1: %s' % (what, short_reason(exc)))
    if rest:
        raise ESTError('bad_response', 'the %s has %d bytes of trailing data' % (what, len(rest)))
    return value
