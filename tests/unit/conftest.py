# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.pki.est`` importable when pytest runs straight from the work tree.

Under ``ansible-test units`` the collection already sits at ``.../ansible_collections/pki/est``
and nothing is changed. Run from a plain checkout, the collection root gets a symlink
``<root>/.build/collections/ansible_collections/pki/est -> <root>`` (the Makefile's
``collection`` target makes the same one; ``.build/`` is git-ignored), and
``<root>/.build/collections`` goes to the front of ``sys.path``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _inside_collection_tree(root):
    parts = os.path.normpath(root).split(os.sep)
    return parts[-3:] == ['ansible_collections', 'pki', 'est']


def _ensure_symlink(root):
    collections = os.path.join(root, '.build', 'collections')
    namespace = os.path.join(collections, 'ansible_collections', 'pki')
    link = os.path.join(namespace, 'est')
    try:
        os.makedirs(namespace)
    except OSError:
        if not os.path.isdir(namespace):
            raise
    if not (os.path.isdir(link) and os.path.samefile(link, root)):
        if os.path.islink(link):
            os.unlink(link)
        try:
            os.symlink(root, link)
        except OSError:  # another pytest process made it at the same moment
            if not (os.path.isdir(link) and os.path.samefile(link, root)):
                raise
    return collections


if _inside_collection_tree(COLLECTION_ROOT):
    _PATH_ENTRY = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
else:
    _PATH_ENTRY = _ensure_symlink(COLLECTION_ROOT)
if _PATH_ENTRY in sys.path:
    sys.path.remove(_PATH_ENTRY)
sys.path.insert(0, _PATH_ENTRY)
