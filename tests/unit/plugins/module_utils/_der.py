# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helpers for the ASN.1 parser tests: recorded fixtures and a tiny independent DER writer."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures')


def read_fixture(kind, name):
    """The bytes of ``tests/unit/fixtures/<kind>/<name>``."""
    with open(os.path.join(FIXTURES, kind, name), 'rb') as handle:
        return handle.read()


def tlv(tag, content):
    """One DER tag-length-value, written by hand so tests do not reuse the module's ASN.1 classes."""
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, 'big')
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content
