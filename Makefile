# wirespeed.datapath: one entry point for installing, testing and the demo.
#   make demo   lab fleet up, deploy a sample program, show it acting on traffic, tear down
#   make test   every test: lint, unit, real-kernel integration, Ansible against the lab
# Both install what they need on a fresh Debian machine (apt-get + .venv) and are
# quick when everything is already there. Run as root: the tests load BPF programs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

APT_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 python3-venv chromium systemd-container mmdebstrap apt-utils \
	openssh-server openssh-client tcpdump util-linux shellcheck
SYSTEM_PYTHON := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build
COLLECTIONS := $(CURDIR)/$(BUILD)/collections
COLLECTION_LINK := $(BUILD)/collections/ansible_collections/wirespeed/datapath

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PYTHONPATH := $(COLLECTIONS)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_PYTHON_INTERPRETER := $(CURDIR)/$(VENV)/bin/python

.PHONY: help deps apt venv collection lint sanity unit integration molecule test demo bench lab-up lab-down lab-images clean

help:
	@echo "make demo   # lab fleet, site.yml, attackers and legit traffic, status table, rollback, clean up"
	@echo "make test   # every test (lint, sanity, unit, real kernel, Ansible on the lab, molecule)"
	@echo "make bench  # map sync vs ipset/nft, ns/packet per program, veth Mpps vs nftables/iptables, fleet cost vs ping"

root-check:
	@test "$$(id -u)" = 0 || { echo "run as root: the tests and the demo load BPF programs and create namespaces" >&2; exit 1; }

apt: root-check
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install $$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: apt $(VENV)/.installed

collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@test -L $(COLLECTION_LINK) || ln -sfn ../../../.. $(COLLECTION_LINK)

deps: apt venv collection

LINT_PATHS := roles playbooks tests/molecule tests/integration/playbooks/xdp.yml tests/integration/playbooks/role.yml \
	tests/integration/playbooks/host.yml tests/integration/playbooks/installed.yml

lint: deps
	$(VENV)/bin/ruff check plugins tests
	$(VENV)/bin/ansible-lint --offline --profile production $(LINT_PATHS)

sanity: deps
	tests/sanity/run.sh

unit: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

integration: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

# the slowest scenarios first, so that none of them runs alone at the end
MOLECULE_ROLES := l2_forwarder load_balancer firewall ssh_limiter wireguard_filter mirror egress_ratelimit dscp_marking \
	conn_limiter af_xdp

# each role's scenario: lab create, check, converge, idempotence, verify with packets, destroy. Every scenario
# brings up its own lab (own namespaces, subnet and molecule cache dir), so they run MOLECULE_JOBS at a time;
# each one's output goes to build/molecule/<role>.log and is printed whole when it fails.
MOLECULE_JOBS ?= 3
# the pytest suite runs TEST_JOBS test files at a time (pytest-xdist, one file per worker: a file's lab fixture
# is shared by its tests); most of a test's time is spent waiting on ssh, ansible and traffic, not on the CPU
TEST_JOBS ?= 3

molecule: deps
	@mkdir -p $(BUILD)/molecule
	@$(MAKE) --no-print-directory -j$(MOLECULE_JOBS) $(addprefix molecule-,$(MOLECULE_ROLES))

molecule-%:
	@start=$$(date +%s); log=$(BUILD)/molecule/$*.log; \
	if (cd roles/$* && $(CURDIR)/$(VENV)/bin/molecule test) >$$log 2>&1; then \
		echo "molecule test: roles/$* passed in $$(( $$(date +%s) - start )) s ($$log)"; \
	else cat $$log; echo "molecule test: roles/$* FAILED after $$(( $$(date +%s) - start )) s ($$log)"; exit 1; fi

# the booting lab's Debian images (tests/lab/image.py), built once per machine and cached in /var/cache/wirespeed-lab
LAB_RELEASES ?= bookworm trixie

lab-images: $(addprefix lab-image-,$(LAB_RELEASES))

lab-image-%: deps
	@$(PY) tests/lab/image.py build --release $* >/dev/null

# lint (one core), sanity (one core) and the image builds (the network) run side by side, then the suite
test: deps
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint sanity lab-images
	$(PY) -m pytest -p no:cacheprovider -rs -n $(TEST_JOBS) --dist loadfile --durations=15 \
		tests/unit tests/integration tests/reliability
	$(MAKE) --no-print-directory molecule

demo: deps
	$(PY) tests/lab/demo.py

bench: deps
	@command -v ipset >/dev/null && command -v nft >/dev/null && command -v iptables-restore >/dev/null && \
		command -v ipvsadm >/dev/null && command -v xdp-filter >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends ipset nftables iptables ipvsadm xdp-tools >/dev/null
	@mkdir -p $(BUILD)/bench && rm -f $(BUILD)/bench/results.jsonl
	$(PY) bench/map_sync.py --rounds 7 $(BENCH_ARGS)
	$(PY) bench/programs.py
	$(PY) bench/veth_mpps.py
	$(PY) bench/scaling.py
	$(PY) bench/load_balancer.py
	$(PY) bench/map_memory.py
	$(PY) bench/fleet.py --hosts 5,10,20
	$(PY) bench/summary.py $(BUILD)/bench/results.jsonl

lab-up: deps
	$(PY) tests/lab/lab.py up 3

lab-down: deps
	$(PY) tests/lab/lab.py down

clean:
	rm -rf $(BUILD) $(VENV) .lab
