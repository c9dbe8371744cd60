# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options shared by every EST module. Set them once per play with
    # module_defaults: {group/pki.est.est: {...}}.
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the EST server, for example C(https://est.example.com:8443).
      - The path C(/.well-known/est) is added unless the URL already ends with it; another path is kept as a prefix.
      - Only C(https) is accepted.
    type: str
    required: true
  ca_label:
    description:
      - Optional CA label (RFC 7030 section 3.2.2) for servers that host several CAs, giving
        C(https://host/.well-known/est/<ca_label>/<operation>).
    type: str
  ca_path:
    description:
      - PEM file with the trust anchors that verify the EST server's TLS certificate (the explicit trust anchor database).
      - When omitted the host's default trust store is used, except where a module documents a bootstrap mode.
      - This file always wins over C(REQUESTS_CA_BUNDLE) or C(CURL_CA_BUNDLE) in the environment.
    type: path
  username:
    description:
      - User name for HTTP Basic authentication. Requires O(password).
      - Credentials are never sent to a server whose TLS certificate has not been verified.
    type: str
  password:
    description:
      - Password for HTTP Basic authentication. Never logged.
    type: str
  client_cert_path:
    description:
      - PEM certificate presented for TLS client authentication (a bootstrap, device or current EST certificate).
      - The file may also hold the private key; otherwise set O(client_key_path).
    type: path
  client_key_path:
    description:
      - PEM private key for O(client_cert_path), unencrypted.
    type: path
  timeout:
    description:
      - Seconds to wait for the server to connect and for each read.
    type: int
    default: 30
requirements:
  - cryptography >= 45.0 on the managed host (RFC 5280 path validation uses its x509.verification)
  - requests >= 2.28 on the managed host
'''

    # For modules that do not take the common file arguments but write files anyway.
    FILES = r'''
options:
  backup:
    description:
      - Keep a timestamped copy of a file before it is replaced.
    type: bool
    default: false
'''
