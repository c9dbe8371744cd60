"""Issuing from an intermediate CA (issuing_ca) and a /cacerts without it (cacerts_omit_intermediate)."""

import base64
import email.parser
import email.policy
import os
import stat

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from cmc_helpers import Request, read_response
from lab_helpers import b64, certs_from_body, get, load_pem, make_csr, new_key, post, write_identity
from support.labserver import LabServer, LabServerError, lab_server

USERS = {"alice": "secret"}
CONFIG = {"users": USERS, "labels": ["iot"], "issuing_ca": "intermediate"}
CERTS_TYPE = "application/pkcs7-mime; smime-type=certs-only"


@pytest.fixture(scope="module")
def sub_module_server(tmp_path_factory):
    """A server started with issuing_ca=intermediate (its own state directory)."""
    server = LabServer(tmp_path_factory.mktemp("intermediate") / "state", config=CONFIG)
    server.start()
    server.baseline = server.get_config()
    yield server
    server.stop()


@pytest.fixture
def sub_server(sub_module_server):
    sub_module_server.set_config(**sub_module_server.baseline)
    sub_module_server.clear_faults()
    yield sub_module_server
    sub_module_server.set_config(**sub_module_server.baseline)
    sub_module_server.clear_faults()


def root_and_intermediate(server, label=None):
    if label is None:
        return load_pem(server.ca_path), load_pem(server.intermediate_path)
    return load_pem(server.label_ca_path(label)), load_pem(server.label_intermediate_path(label))


def ders(certs):
    """certs as a sorted list of DER: certs-only PKCS#7 holds a SET OF, whose DER order says nothing."""
    return sorted(cert.public_bytes(serialization.Encoding.DER) for cert in certs)


def cacerts(server, label=None):
    response = get(server, "cacerts", label)
    assert response.status_code == 200, response.text
    return certs_from_body(response.content)


def enroll_answer(server, label=None, key=None, op="simpleenroll", common_name="dev.example.test", **kw):
    """(leaf, all certificates of the answer, key) of a successful enrollment."""
    key = key or new_key()
    csr = make_csr(key, common_name=common_name, dns=(common_name,))
    response = post(server, op, b64(csr), label=label, **kw)
    assert response.status_code == 200, response.text
    certs = certs_from_body(response.content)
    (leaf,) = [cert for cert in certs if cert.public_key() == key.public_key()]
    return leaf, certs, key


def verify_path(leaf, root, intermediates, name="dev.example.test"):
    """Path validation root -> intermediates -> leaf as a TLS client would do it (cryptography's verifier)."""
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(name))
    return verifier.verify(leaf, intermediates)


def serverkeygen_certs(server):
    """The certificates of the certs-only part of a /serverkeygen answer."""
    response = post(server, "serverkeygen", b64(make_csr(new_key(), common_name="kg.example.test")))
    assert response.status_code == 200, response.text
    raw = b"Content-Type: " + response.headers["Content-Type"].encode() + b"\r\n\r\n" + response.content
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    (part,) = [p for p in message.iter_parts() if p.get_param("smime-type") == "certs-only"]
    return pkcs7.load_der_pkcs7_certificates(base64.b64decode("".join(part.get_payload(decode=False).split())))


def fullcmc_certs(server, key):
    """(signer certificate, certificates) of a successful signed /fullcmc answer for a PoP request by key."""
    request = Request([make_csr(key, common_name="cmc.example.test")], key)
    response = post(server, "fullcmc", request.body, content_type="application/pkcs7-mime; smime-type=CMC-request")
    assert response.status_code == 200, response.text
    answer = read_response(response)
    assert answer.signature_ok and answer.status == "success"
    return answer.signer_cert, answer.certificates


# -- default: the root issues -------------------------------------------------------------------------------


def test_default_config_issues_from_root(server):
    config = server.get_config()
    assert config["issuing_ca"] == "root" and config["cacerts_omit_intermediate"] is False
    root = load_pem(server.ca_path)
    assert ders(cacerts(server)) == ders([root])
    leaf, certs, dummy = enroll_answer(server)
    assert certs == [leaf]
    leaf.verify_directly_issued_by(root)
    assert not os.path.exists(server.intermediate_path)


def test_omit_without_an_intermediate_changes_nothing(server):
    server.set_config(cacerts_omit_intermediate=True)
    root = load_pem(server.ca_path)
    assert ders(cacerts(server)) == ders([root])
    leaf, certs, dummy = enroll_answer(server)
    assert certs == [leaf]
    leaf.verify_directly_issued_by(root)


# -- issuing_ca: intermediate -------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [None, "iot"])
def test_intermediate_has_ca_extensions(sub_server, label):
    root, intermediate = root_and_intermediate(sub_server, label)
    intermediate.verify_directly_issued_by(root)
    assert intermediate.issuer == root.subject and intermediate.subject != root.subject
    constraints = intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = intermediate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not (usage.value.key_encipherment or usage.value.content_commitment or usage.value.key_agreement)
    ski = intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(intermediate.public_key())
    aki = intermediate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert isinstance(intermediate.public_key(), ec.EllipticCurvePublicKey)
    assert intermediate.public_key().curve.name == root.public_key().curve.name
    assert root.not_valid_before_utc <= intermediate.not_valid_before_utc
    assert intermediate.not_valid_after_utc <= root.not_valid_after_utc


def test_intermediate_files_and_ready_file(sub_server):
    state = sub_server.state_dir
    assert sub_server.intermediate_path == str(state / "intermediate.pem")
    assert sub_server.ready["intermediate_path"] == str(state / "intermediate.pem")
    assert sub_server.label_intermediate_path("iot") == str(state / "labels" / "iot" / "intermediate.pem")
    assert sub_server.ready["labels"]["iot"]["intermediate_path"] == sub_server.label_intermediate_path("iot")
    for rel in ("intermediate.key", "labels/iot/intermediate.key"):
        assert stat.S_IMODE(os.stat(state / rel).st_mode) == 0o600, rel
    assert load_pem(sub_server.intermediate_path) != load_pem(sub_server.label_intermediate_path("iot"))
    # The TLS server certificate stays issued by the root.
    load_pem(state / "server.pem").verify_directly_issued_by(load_pem(sub_server.ca_path))


@pytest.mark.parametrize("label", [None, "iot"])
def test_cacerts_holds_root_then_intermediate(sub_server, label):
    root, intermediate = root_and_intermediate(sub_server, label)
    assert ders(cacerts(sub_server, label)) == ders([root, intermediate])


@pytest.mark.parametrize("label", [None, "iot"])
def test_enrolled_certificate_chains_root_intermediate_leaf(sub_server, label):
    root, intermediate = root_and_intermediate(sub_server, label)
    leaf, certs, dummy = enroll_answer(sub_server, label)
    assert ders(certs) == ders([leaf, intermediate])
    assert leaf.issuer == intermediate.subject
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    with pytest.raises(ValueError):  # issuer name differs: not signed by the root
        leaf.verify_directly_issued_by(root)
    assert verify_path(leaf, root, [intermediate]) == [leaf, intermediate, root]
    with pytest.raises(VerificationError):
        verify_path(leaf, root, [])


def test_reenroll_with_a_certificate_from_the_intermediate(sub_server, tmp_path):
    root, intermediate = root_and_intermediate(sub_server)
    leaf, dummy, key = enroll_answer(sub_server)
    identity = write_identity(tmp_path, leaf, key)  # the leaf alone: the TLS client sends no chain
    renewed, certs, dummy = enroll_answer(sub_server, key=key, op="simplereenroll", auth=None, cert=identity)
    assert ders(certs) == ders([renewed, intermediate])
    renewed.verify_directly_issued_by(intermediate)
    assert verify_path(renewed, root, [intermediate])[-1] == root
    # A certificate from the intermediate of another label's CA is not good for this label.
    iot_leaf, dummy, iot_key = enroll_answer(sub_server, label="iot")
    iot_identity = write_identity(tmp_path, iot_leaf, iot_key, stem="iot")
    response = post(sub_server, "simplereenroll", b64(make_csr(iot_key, common_name="dev.example.test", dns=("dev.example.test",))),
                    auth=None, cert=iot_identity)
    assert response.status_code == 403 and "not issued by the CA of this label" in response.text


def test_serverkeygen_and_fullcmc_answers_carry_the_intermediate(sub_server):
    root, intermediate = root_and_intermediate(sub_server)
    certs = serverkeygen_certs(sub_server)
    (leaf,) = [cert for cert in certs if cert != intermediate]
    assert ders(certs) == ders([leaf, intermediate])
    leaf.verify_directly_issued_by(intermediate)
    key = new_key()
    signer, certs = fullcmc_certs(sub_server, key)
    assert signer == root  # the PKIResponse is signed by the label's CA, as without an intermediate
    (leaf,) = [cert for cert in certs if cert.public_key() == key.public_key()]
    assert ders(certs) == ders([leaf, intermediate, root])
    leaf.verify_directly_issued_by(intermediate)
    sub_server.set_config(fullcmc_response="certs-only")
    request = Request([make_csr(key, common_name="cmc.example.test")], key)
    response = post(sub_server, "fullcmc", request.body, content_type="application/pkcs7-mime")
    assert response.status_code == 200, response.text
    certs = certs_from_body(response.content)
    (leaf,) = [cert for cert in certs if cert.public_key() == key.public_key()]
    assert ders(certs) == ders([leaf, intermediate, root])


def test_other_ca_fault_imitates_the_intermediate(sub_server):
    dummy, intermediate = root_and_intermediate(sub_server)
    sub_server.set_fault("simpleenroll", "other_ca", 1)
    leaf, dummy, dummy_key = enroll_answer(sub_server)
    assert leaf.issuer == intermediate.subject
    with pytest.raises(InvalidSignature):
        leaf.verify_directly_issued_by(intermediate)


# -- cacerts_omit_intermediate ------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [None, "iot"])
def test_omit_intermediate_from_cacerts_and_enrollment(sub_server, label):
    root, intermediate = root_and_intermediate(sub_server, label)
    sub_server.set_config(cacerts_omit_intermediate=True)
    assert ders(cacerts(sub_server, label)) == ders([root])
    leaf, certs, dummy = enroll_answer(sub_server, label)
    assert certs == [leaf]
    leaf.verify_directly_issued_by(intermediate)
    with pytest.raises(VerificationError):  # what a client sees from /cacerts and the answer alone
        verify_path(leaf, root, [])
    # ... and with the intermediate given out of band:
    assert verify_path(leaf, root, [intermediate]) == [leaf, intermediate, root]
    sub_server.set_config(cacerts_omit_intermediate=False)  # a runtime switch, both ways
    assert ders(cacerts(sub_server, label)) == ders([root, intermediate])
    leaf, certs, dummy = enroll_answer(sub_server, label)
    assert ders(certs) == ders([leaf, intermediate])


def test_omit_intermediate_from_serverkeygen_and_fullcmc(sub_server):
    root, intermediate = root_and_intermediate(sub_server)
    sub_server.set_config(cacerts_omit_intermediate=True)
    (leaf,) = serverkeygen_certs(sub_server)
    leaf.verify_directly_issued_by(intermediate)
    key = new_key()
    signer, certs = fullcmc_certs(sub_server, key)
    assert signer == root and intermediate not in certs
    (leaf,) = [cert for cert in certs if cert.public_key() == key.public_key()]
    assert ders(certs) == ders([leaf, root])
    leaf.verify_directly_issued_by(intermediate)


def test_config_values_are_checked(sub_server):
    with pytest.raises(LabServerError, match="issuing_ca must be one of root, intermediate"):
        sub_server.set_config(issuing_ca="subordinate")
    with pytest.raises(LabServerError, match="cacerts_omit_intermediate must be true or false"):
        sub_server.set_config(cacerts_omit_intermediate="yes")


# -- switching, persistence, key types ----------------------------------------------------------------------


def test_issuing_ca_switches_at_runtime_and_persists(tmp_path):
    with lab_server(tmp_path, config={"users": USERS, "labels": ["iot"]}) as lab:
        root = load_pem(lab.ca_path)
        assert lab.ready["intermediate_path"] is None and not os.path.exists(lab.intermediate_path)
        lab.set_config(issuing_ca="intermediate")
        assert lab.ready["intermediate_path"] == str(lab.state_dir / "intermediate.pem")
        intermediate = load_pem(lab.intermediate_path)
        assert load_pem(lab.label_intermediate_path("iot")).issuer == load_pem(lab.label_ca_path("iot")).subject
        assert ders(cacerts(lab)) == ders([root, intermediate])
        leaf, dummy, key = enroll_answer(lab)
        leaf.verify_directly_issued_by(intermediate)
        identity = write_identity(tmp_path, leaf, key)
        # The TLS layer learnt the new intermediate: its certificates authenticate at once.
        renewed = enroll_answer(lab, key=key, op="simplereenroll", auth=None, cert=identity)[0]
        renewed.verify_directly_issued_by(intermediate)
        # A label added later gets its intermediate too.
        lab.set_config(labels=["iot", "late"])
        late_leaf = enroll_answer(lab, label="late")[0]
        late_leaf.verify_directly_issued_by(load_pem(lab.label_intermediate_path("late")))
        # Back to the root: /cacerts and issuance follow, the intermediate's certificates still authenticate.
        lab.set_config(issuing_ca="root")
        assert ders(cacerts(lab)) == ders([root])
        fresh, certs, dummy = enroll_answer(lab)
        assert certs == [fresh]
        fresh.verify_directly_issued_by(root)
        enroll_answer(lab, key=key, op="simplereenroll", auth=None, cert=identity)[0].verify_directly_issued_by(root)
        # After a restart (issuing_ca root) the intermediate is still known; switched on again it is the same one.
        lab.stop()
        lab.start()
        assert lab.ready["intermediate_path"] == lab.intermediate_path
        enroll_answer(lab, key=key, op="simplereenroll", auth=None, cert=identity)
        lab.set_config(issuing_ca="intermediate")
        assert load_pem(lab.intermediate_path) == intermediate
        assert ders(cacerts(lab)) == ders([root, intermediate])


def test_a_foreign_intermediate_file_is_replaced(tmp_path):
    with lab_server(tmp_path / "other", config={"users": USERS, "issuing_ca": "intermediate"}) as other:
        foreign = load_pem(other.intermediate_path)
        foreign_key = (other.state_dir / "intermediate.key").read_bytes()
    state = tmp_path / "estlab-state"
    with lab_server(tmp_path, config={"users": USERS}) as lab:
        root = load_pem(lab.ca_path)
    (state / "intermediate.pem").write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    (state / "intermediate.key").write_bytes(foreign_key)
    with lab_server(tmp_path, config={"users": USERS, "issuing_ca": "intermediate"}) as lab:
        intermediate = load_pem(lab.intermediate_path)
        assert intermediate != foreign
        intermediate.verify_directly_issued_by(root)
        enroll_answer(lab)[0].verify_directly_issued_by(intermediate)


def test_rsa_root_gets_an_rsa_intermediate(tmp_path):
    with lab_server(tmp_path, config={"users": USERS, "issuing_ca": "intermediate"}, key_type="rsa") as lab:
        root, intermediate = root_and_intermediate(lab)
        assert isinstance(intermediate.public_key(), rsa.RSAPublicKey)
        assert intermediate.public_key().key_size == root.public_key().key_size
        leaf = enroll_answer(lab)[0]
        assert verify_path(leaf, root, [intermediate]) == [leaf, intermediate, root]
