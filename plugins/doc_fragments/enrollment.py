# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Files and renewal options shared by est_enroll, est_reenroll, est_serverkeygen and est_fullcmc.
    DOCUMENTATION = r'''
notes:
  - A missing directory of a file the module writes (O(path), O(private_key_path), O(chain_path), O(fullchain_path),
    O(pkcs12_path), and the C(<path>.pending.*) and bookkeeping files beside O(path)) is created, together with any
    missing parent directories, when the first file is written there - not before, not in check mode, and not by a
    run that writes nothing (such as one whose request fails before a verified answer). New directories get mode
    C(0755) and O(owner) and O(group). Existing directories are left exactly as they are (owner, group and mode are
    not changed).
  - A directory, once created, stays when the run fails afterwards (for example when the CA leaves out a requested
    subjectAltName and the refusal is recorded beside O(path)); that run then reports C(changed=true), as the host
    is no longer as it was.
options:
  path:
    description:
      - The certificate (PEM) on the managed host.
    type: path
  private_key_path:
    description:
      - The private key (PEM, PKCS#8, unencrypted) on the managed host. A new key is generated
        here when the file is missing (or when a new key is needed) and never leaves the host.
    type: path
  chain_path:
    description:
      - Where to write the CA chain of the issued certificate (PEM, nearest issuer first).
      - When set, an existing certificate must be issued by a certificate in this file to count as current.
    type: path
  fullchain_path:
    description:
      - Where to write the certificate followed by its chain (PEM).
    type: path
  intermediates_path:
    description:
      - PEM file of CA certificates that may complete the chain of the issued certificate, for
        servers whose C(/cacerts) answer lacks the issuing CA (RFC 7030 4.1.3 says it must hold it).
      - They are never trusted on their own; a certificate from this file is used only where it
        chains up to the trust anchors (the server's CA certificates or O(ca_path)), and then it
        lands in O(chain_path) and O(fullchain_path).
    type: path
  key_type:
    description:
      - Type of a newly generated key. An existing key of another type is replaced by a new one.
      - Defaults to C(ec-p256) for new keys; without it an existing key of any type is kept.
    type: str
    choices: [ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096, ed25519]
  renew_before:
    description:
      - When to renew, measured back from the certificate's notAfter.
      - Days (V(30) or V(30d)), hours (V(12h)), minutes (V(90m)), seconds (V(600s)), or a share of
        the certificate's lifetime (V(33%)).
    type: str
    default: '33%'
  force:
    description:
      - Renew even when the certificate is current.
    type: bool
    default: false
  backup:
    description:
      - Keep timestamped copies of the key, certificate and chain files before they are replaced.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds this run may wait for a server that asks to be asked again, one budget for all its waits.
      - HTTP 202 (request pending) - poll, honouring its C(Retry-After) (or every 5 s). With V(0) the module returns
        RV(pending=true) at once and the next run resubmits the same request.
      - HTTP 503 (busy) or 429 (too many requests) - the server took nothing, so any request (also C(/csrattrs) and
        C(/cacerts)) is sent again after its C(Retry-After) plus a random delay of up to half of it (at least 1 s, at
        most 30 s), so that hosts turned away together do not come back together; without a C(Retry-After) after 5 s,
        doubling up to 60 s. When the server asks for a longer wait than is left, or with V(0), the module fails at
        once with C(error_kind=busy) and RV(retry_after), and nothing on the host changes (no key is written).
      - RV(waited_seconds) and RV(retries) report what was waited.
    type: int
    default: 0
  san_policy:
    description:
      - What to do when the issued certificate lacks a requested subjectAltName.
      - V(fail) refuses to install it (the old key and certificate stay); V(warn) installs it with a warning.
      - A refusal is remembered beside O(path); until the request changes (subject, SANs, key usages, key type,
        server URL or CA label) or O(force) is set, later runs fail the same way without sending another
        request, so a CA that drops SANs does not issue one more certificate per run.
    type: str
    default: fail
    choices: [fail, warn]
  pkcs12_path:
    description:
      - Also write the key, certificate and chain as a PKCS#12 bundle here (mode O(private_key_mode)),
        whenever a new certificate is installed.
    type: path
  pkcs12_passphrase:
    description:
      - Passphrase that encrypts the PKCS#12 bundle. Without it the bundle is not encrypted. Never logged.
    type: str
  private_key_mode:
    description:
      - Mode of the private key file (and of the pending key). O(mode) applies to the certificate and chain files.
    type: raw
    default: '0600'
'''
