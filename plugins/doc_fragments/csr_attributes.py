# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # What to do with /csrattrs demands a request cannot meet (est_enroll, est_serverkeygen).
    DOCUMENTATION = r'''
options:
  csr_attributes_unmet:
    description:
      - With O(csr_attributes=apply), what to do when the server asks for something this request cannot meet - a key
        algorithm or curve this host cannot make, a key type other than O(key_type), an extension or attribute
        named without a value the client could fill in (such as macAddress).
      - V(fail) stops before any key is generated or anything is sent, naming the demand (RFC 7030 section 4.5.2
        says a CA that needs a key type must say so, so a request without it would be refused). V(warn) sends the
        request anyway, with a warning.
    type: str
    default: fail
    choices: [fail, warn]
'''
