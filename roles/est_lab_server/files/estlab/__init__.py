"""estlab: a small lab/test EST server (RFC 7030 as clarified by RFC 8951, with RFC 9908 csrattrs templates).

It is a test fixture for the pki.est collection, not a production CA: keys live
unencrypted in the state directory and every authenticated request is signed.

Modules, one concern each:

* ``config``     -- defaults, validation and runtime merging of the JSON config
* ``ca``         -- CA and server-certificate creation, persistence, issuance
* ``csr``        -- decoding and checking of PKCS#10 request bodies
* ``encoding``   -- base64 framing and certs-only PKCS#7 responses
* ``csrattrs``   -- the application/csrattrs (CsrAttrs) encoder
* ``csrtemplate`` -- the RFC 9908 CertificationRequestInfoTemplate encoder (csrattrs template form)
* ``cms``        -- CMS SignedData: reading and verifying a client's, signing the server's
* ``cmc``        -- CMC: reading a Full PKI Request, building a PKI Response
* ``keygen``     -- server-side key generation: the key, its encodings, its encryption
* ``auth``       -- HTTP Basic and TLS client-certificate checks
* ``linking``    -- linking identity and POP to the TLS session (RFC 7030 3.5, tls-unique)
* ``pending``    -- the 202/Retry-After approval tracker
* ``faults``     -- fault injection for client tests
* ``requestlog`` -- the record of EST requests served
* ``state``      -- the shared state one running server works on
* ``est``        -- the EST operations (and the helpers the next two share)
* ``serverkeygen`` -- the /serverkeygen operation (multipart/mixed answer)
* ``fullcmc``    -- the /fullcmc operation
* ``lab``        -- the test-control endpoints (/healthz, /lab/...)
* ``router``     -- maps a path and method to an operation
* ``handlers``   -- the HTTP request handler (body limits, errors, output)
* ``server``     -- the TLS listener, ready file and main loop
* ``daemon``     -- detaching, pid files and stopping
* ``cli``        -- the command line
"""

__version__ = "1.1.0"
