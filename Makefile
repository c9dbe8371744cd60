# pki.est — the two commands: `make demo` and `make test`.
# Everything installs itself: Python packages into .venv, Debian packages through apt-get.

SHELL := /bin/bash
empty :=
space := $(empty) $(empty)
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
BUILD := .build
# Ansible finds the collection through this symlink; ansible-test needs a real copy (SANITY_DIR).
COLLECTIONS := $(abspath $(BUILD))/collections
SANITY_DIR := $(BUILD)/sanity/ansible_collections/pki/est
DEMO_DIR := $(abspath .demo)
# Keys in hardware, emulated: SoftHSM2, and a TPM 2.0 (swtpm + tpm2-abrmd + tpm2-pkcs11; ../shared/TESTING.md).
TPM_PACKAGES := swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 libtss2-tcti-swtpm0 libtpm2-pkcs11-1 \
	libtpm2-pkcs11-tools dbus-daemon tpm2-openssl
# Windows support's C# (no Windows here): compiled and tested with Mono (docs/windows.md).
MONO_PACKAGES := mono-mcs mono-runtime libmono-system-security4.0-cil
SYSTEM_PACKAGES := shellcheck openssh-server openssh-client ca-certificates openssl procps jq chromium softhsm2 $(TPM_PACKAGES) \
	$(MONO_PACKAGES)
# make test installs them: a test that would skip for want of them fails instead.
export PKI_EST_REQUIRE_TPM := 1
export PKI_EST_REQUIRE_MONO := 1
export PKI_EST_REQUIRE_BROWSER := 1
PYTEST_FLAGS ?= -q
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_LOCALHOST_WARNING := false
export ANSIBLE_INVENTORY_UNPARSED_WARNING := false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help demo demo-stop test test-sanity test-units test-lab test-integration test-molecule lint venv system-deps collection clean

help:
	@echo "make demo   - start the lab EST server on 127.0.0.1:8443 and run playbooks/enroll.yml against this host"
	@echo "make test   - sanity, unit, lab server, integration tests and ansible-lint"

# What the demo runs, and no more: the controller and the host are this machine.
DEMO_PACKAGES := ansible-core cryptography requests pyasn1 pyasn1-modules jinja2

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	grep -E '^($(subst $(space),|,$(DEMO_PACKAGES)))[<>=!~ ]' requirements.txt > $(VENV)/requirements-demo.txt
	$(BIN)/pip install -q --disable-pip-version-check -r $(VENV)/requirements-demo.txt
	touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements.txt requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	    || { echo "apt-get could not install$$missing" >&2; exit 1; }; \
	fi

collection:
	@mkdir -p $(COLLECTIONS)/ansible_collections/pki
	@ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/pki/est

demo: $(VENV)/.runtime collection
	@mkdir -p $(DEMO_DIR)/agent/sbin
	$(BIN)/ansible-playbook -i demo/inventory.yml playbooks/lab_server.yml
	$(BIN)/ansible-playbook -i demo/inventory.yml playbooks/enroll.yml --limit fleet
	@echo; echo "== The renewal agent on the host, as its timer would run it: what is due? (--check)"
	$(DEMO_DIR)/agent/sbin/pki-est-agent --config $(DEMO_DIR)/agent/config.json --check
	@echo; echo "== Renew the web certificate now (--force web): /simplereenroll with its own certificate"
	$(DEMO_DIR)/agent/sbin/pki-est-agent --config $(DEMO_DIR)/agent/config.json --force web
	@echo; echo "Demo done: keys, certificates and chains are in $(DEMO_DIR)/host, the agent in $(DEMO_DIR)/agent;"
	@echo "'make demo-stop' stops the lab server."

demo-stop: $(VENV)/.runtime collection
	$(BIN)/ansible-playbook -i demo/inventory.yml playbooks/lab_server.yml -e est_lab_server_state=stopped

test: venv system-deps collection test-units test-lab test-integration test-molecule test-sanity lint
	@echo "make test: all suites passed"

test-units: venv
	$(PY) -m pytest $(PYTEST_FLAGS) tests/unit

test-lab: venv
	$(PY) -m pytest $(PYTEST_FLAGS) tests/lab_server

test-integration: venv collection
	$(PY) -m pytest $(PYTEST_FLAGS) --durations=25 -n 2 tests/integration

# The roles together on this host (extensions/molecule/default): converge, idempotence, verify.
test-molecule: venv system-deps collection
	molecule test
	molecule test -s fleet

# ansible-test wants the collection under .../ansible_collections/pki/est inside a git work tree.
test-sanity: venv
	@pipver=$$($(PY) -c 'import re,ansible_test,os;p=os.path.join(os.path.dirname(ansible_test.__file__),"_internal","python_requirements.py");print(re.search(r"pip=.([0-9.]+)",open(p).read()).group(1))'); \
	  cache=$$HOME/.ansible/test/cache/get_pip_$${pipver//./_}.py; mkdir -p $$(dirname $$cache); \
	  [ -f $$cache ] || cp tests/tools/get_pip.py $$cache
	rm -rf $(BUILD)/sanity && mkdir -p $(SANITY_DIR)
	git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents -P {} $(SANITY_DIR)/ 2>/dev/null || true
	cd $(SANITY_DIR) && git init -q && git add -A
	cd $(SANITY_DIR) && $(abspath $(BIN))/ansible-test sanity --local --python 3.11 \
	  $$(find plugins -name '*.ps1' -o -name '*.psm1' | sed 's/^/--exclude /')

lint: venv
	$(BIN)/ansible-lint --profile production

clean:
	rm -rf $(BUILD) tests/output .pytest_cache
