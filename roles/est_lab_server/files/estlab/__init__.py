"""estlab: a small lab/test EST server (RFC 7030 as clarified by RFC 8951).

It is a test fixture for the pki.est collection, not a production CA: keys live
unencrypted in the state directory and every authenticated request is signed.

Modules, one concern each:

* ``config``     -- defaults, validation and runtime merging of the JSON config
* ``ca``         -- CA and server-certificate creation, persistence, issuance
* ``csr``        -- decoding and checking of PKCS#10 request bodies
* ``encoding``   -- base64 framing and certs-only PKCS#7 responses
* ``csrattrs``   -- the application/csrattrs (CsrAttrs) encoder
* ``auth``       -- HTTP Basic and TLS client-certificate checks
* ``pending``    -- the 202/Retry-After approval tracker
* ``faults``     -- fault injection for client tests
* ``requestlog`` -- the record of EST requests served
* ``state``      -- the shared state one running server works on
* ``est``        -- the EST operations
* ``lab``        -- the test-control endpoints (/healthz, /lab/...)
* ``router``     -- maps a path and method to an operation
* ``handlers``   -- the HTTP request handler (body limits, errors, output)
* ``server``     -- the TLS listener, ready file and main loop
* ``daemon``     -- detaching, pid files and stopping
* ``cli``        -- the command line
"""

__version__ = "1.0.0"
