# flowlake — two commands on a fresh Debian 12 machine, as root from the repo root:
#   make up     install what is missing, then run the embedded deployment (processor + API + feed)
#   make test   install what is missing, then lint (ruff, mypy, import-linter) and run every test
# Every install step leaves a stamp in .venv/ so a second run skips it and starts in seconds.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
APT_PKGS := python3-bpfcc python3-venv python3-dev linux-headers-$(ARCH) bpftool iproute2 ca-certificates \
  prometheus dnsmasq-base iperf3 nftables ethtool openssl openjdk-17-jre-headless maven chromium
KREL := $(shell uname -r)
PYTEST_ARGS ?=
# The repo root holds a folder named operator/; never let `python -m` put the root on sys.path,
# or the standard library's `operator` module is shadowed.
export PYTHONSAFEPATH := 1

.PHONY: up test install lint unit bench docs clean-venv test-servers victorialogs k8s-apiserver kafka-broker console image \
  notebook goflow2

up: install
	$(VENV)/bin/flowlake up

test: install lint test-servers
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

install: $(VENV)/.installed kernel-headers console

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Re-checked when the Makefile changes (a new package in APT_PKGS); "install ok installed" skips
# packages that were removed but not purged, which `dpkg -s` alone would count as present.
$(VENV)/.apt: Makefile
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	mkdir -p $(VENV) && touch $@

# bcc compiles against /lib/modules/$(uname -r)/build; link the newest installed Debian headers
# when the running kernel ships none. Struct offsets come from BTF, so a version skew is harmless.
.PHONY: kernel-headers
kernel-headers: $(VENV)/.apt
	@if [ ! -e /lib/modules/$(KREL)/source/include/linux/kconfig.h ]; then \
	  hdr=$$(ls -d /usr/src/linux-headers-*-$(ARCH) 2>/dev/null | sort -V | tail -n1); \
	  if [ -n "$$hdr" ]; then mkdir -p /lib/modules/$(KREL); \
	    src=$$(dirname $$hdr)/$$(basename $$hdr | sed 's/-$(ARCH)$$/-common/'); \
	    [ -d "$$src" ] || src=$$hdr; \
	    ln -sfn $$hdr /lib/modules/$(KREL)/build; ln -sfn $$src /lib/modules/$(KREL)/source; \
	    echo "linked /lib/modules/$(KREL)/build -> $$hdr, source -> $$src"; fi; fi

# Order-only on the apt stamp: a Makefile edit re-checks packages without rebuilding the venv.
$(VENV)/bin/pip: | $(VENV)/.apt
	rm -rf $(VENV)/bin $(VENV)/lib $(VENV)/lib64 $(VENV)/include $(VENV)/pyvenv.cfg  # a half-made venv
	/usr/bin/python3 -P -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(VENV)/bin/pip
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	touch $@

# The web console's front-end libraries: npm ci from the committed lock file (Node.js and npm come with
# the machine), then their browser builds are copied into api/console/vendor/, which the API serves (no CDN).
# Re-runs only when package-lock.json changes; node_modules/ and vendor/ are not committed.
CONSOLE := api/console
console: $(CONSOLE)/vendor/.stamp

$(CONSOLE)/vendor/.stamp: $(CONSOLE)/package-lock.json $(CONSOLE)/package.json
	@command -v npm >/dev/null || { echo "make console: npm not found; install Node.js 18+ with npm"; exit 1; }
	cd $(CONSOLE) && npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(CONSOLE)/vendor && mkdir -p $(CONSOLE)/vendor
	cp $(CONSOLE)/node_modules/uplot/dist/uPlot.esm.js $(CONSOLE)/vendor/uplot.js
	cp $(CONSOLE)/node_modules/uplot/dist/uPlot.min.css $(CONSOLE)/vendor/uplot.css
	cp $(CONSOLE)/node_modules/uplot/LICENSE $(CONSOLE)/vendor/uplot.LICENSE
	cp $(CONSOLE)/node_modules/cytoscape/dist/cytoscape.esm.min.mjs $(CONSOLE)/vendor/cytoscape.js
	cp $(CONSOLE)/node_modules/cytoscape/LICENSE $(CONSOLE)/vendor/cytoscape.LICENSE
	touch $@

# Real servers the tests start on loopback, built or fetched once into $${FLOWLAKE_CACHE:-/var/cache/flowlake}
# from package registries (the first run takes minutes, later runs return at once).
test-servers: victorialogs k8s-apiserver kafka-broker goflow2

# goflow2, the IPFIX collector the IPFIX sink tests send to (tests/sinks/goflow2.py): built once from the Go
# module proxy into $${FLOWLAKE_CACHE:-/var/cache/flowlake}/goflow2/VERSION/ (~20 s); later runs return at once.
goflow2:
	bash tests/sinks/build_goflow2.sh >/dev/null

# kube-apiserver + etcd for tests/k8s, built from the Go module proxy (~7 min, 3.6 GB of Go caches while
# building, 138 MB kept).
k8s-apiserver:
	bash tests/k8s/build.sh

# VictoriaLogs, the Loki-protocol receiver the Loki sink tests push to: built once from the Go module proxy
# into $${FLOWLAKE_CACHE:-/var/cache/flowlake}/victorialogs/VERSION/ (~1 min); later runs return at once.
victorialogs:
	bash tests/sinks/build_victorialogs.sh >/dev/null

# Apache Kafka's broker jars for tests/kafka/ and benchmarks/bench_kafka.py, fetched with Maven from Maven
# Central into $${FLOWLAKE_CACHE:-/var/cache/flowlake}/kafka/VERSION/libs (~15 s, 43 MB); later runs return at once.
kafka-broker:
	bash tests/kafka/build_kafka.sh >/dev/null

# JupyterLab on loopback over notebooks/, kernel = this venv (docs/notebooks.md); `make up` in another shell.
NOTEBOOK_PORT ?= 8888
notebook: install
	cd notebooks && ../$(VENV)/bin/jupyter lab --ip 127.0.0.1 --port $(NOTEBOOK_PORT) --no-browser \
	  --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: install
	$(PY) -m pytest benchmarks --benchmark-enable -p no:cacheprovider

docs: install
	$(VENV)/bin/flowlake docs --write
	$(VENV)/bin/flowlake operator manifests   # deploy/ (CRDs, operator RBAC and Deployment, samples), docs/operator.md

# The one container image of every component (needs docker; not built by `make test`).
IMAGE ?= ghcr.io/flowlake/flowlake:0.1.0
image:
	docker build -t $(IMAGE) .

clean-venv:
	rm -rf $(VENV)
