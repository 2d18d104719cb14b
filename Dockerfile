# One image for every flowlake component: the eBPF agent, the processor, the API and console, the operator.
#
#   docker build -t ghcr.io/flowlake/flowlake:0.1.0 .
#   docker run --rm ghcr.io/flowlake/flowlake:0.1.0 --help
#
# Debian 12 because the agent compiles its kernel programs with bcc, which comes from Debian's
# python3-bpfcc (not on PyPI) and only works with Debian's Python 3.11: the virtualenv is made from that
# Python and the agent appends /usr/lib/python3/dist-packages to its path to reach bcc. Kernel headers are
# not in the image: they belong to each node's kernel, so the agent DaemonSet mounts the node's /lib/modules
# and /usr/src (and /sys/kernel/btf for struct offsets); the operator renders those mounts.

# -- the console's front-end libraries (npm ci from the committed lock file, as `make console` does) ------
FROM node:20-bookworm-slim AS console
WORKDIR /src/api/console
COPY api/console/package.json api/console/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && mkdir -p vendor \
 && cp node_modules/uplot/dist/uPlot.esm.js vendor/uplot.js \
 && cp node_modules/uplot/dist/uPlot.min.css vendor/uplot.css \
 && cp node_modules/uplot/LICENSE vendor/uplot.LICENSE \
 && cp node_modules/cytoscape/dist/cytoscape.esm.min.mjs vendor/cytoscape.js \
 && cp node_modules/cytoscape/LICENSE vendor/cytoscape.LICENSE

# -- the runtime -----------------------------------------------------------------------------------------
FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
# python3-bpfcc: bcc with its bundled LLVM/clang (compiles the agent's C at start against the node's
# headers, mounted from the host); bpftool: BTF struct offsets; iproute2: TC qdiscs; kmod and libelf1:
# what bcc's header and module lookups use; ca-certificates: TLS to object stores, Kafka and the API server.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-bpfcc bpftool iproute2 kmod \
      libelf1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine engine
COPY agent agent
COPY bpf bpf
COPY api api
COPY operator operator
COPY --from=console /src/api/console/vendor api/console/vendor
# Every runtime extra (no dev tools); PYTHONSAFEPATH keeps the source root (which holds operator/) off
# sys.path, so the standard library's `operator` module is never shadowed.
ENV PYTHONSAFEPATH=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/flowlake \
 && /opt/flowlake/bin/pip install --upgrade pip \
 && /opt/flowlake/bin/pip install '.[agent,api,k8s,kafka,otel,operator,s3]' \
 && rm -rf /src

# The processor, API and operator run as this user (the operator's pod templates set runAsUser 10001);
# the agent DaemonSet runs as root with the BPF capabilities.
RUN groupadd --gid 10001 flowlake \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin flowlake
ENV PATH=/opt/flowlake/bin:$PATH
WORKDIR /
USER 10001
ENTRYPOINT ["flowlake"]
CMD ["--help"]
