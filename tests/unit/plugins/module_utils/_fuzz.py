# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mutations of valid messages for the property-based parser tests."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from hypothesis import strategies as st

# Up to four edits: (position, byte, what to do there).
MUTATIONS = st.lists(st.tuples(st.integers(min_value=0, max_value=10 ** 6), st.integers(0, 255),
                               st.sampled_from(['flip', 'insert', 'delete', 'truncate'])),
                     min_size=1, max_size=4)


def mutate(valid, mutations):
    """``valid`` with the ``mutations`` applied in order (bytes)."""
    data = bytearray(valid)
    for position, byte, action in mutations:
        if not data:
            break
        index = position % len(data)
        if action == 'flip':
            data[index] ^= byte or 1
        elif action == 'insert':
            data.insert(index, byte)
        elif action == 'delete':
            del data[index]
        else:
            del data[index:]
    return bytes(data)
