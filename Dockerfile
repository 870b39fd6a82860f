# One image for all four services: the command picks the service
#   docker run IMAGE serve risk        (default: serve ingest)
#
# Build from the repository root:  make image   (or: docker build -t quantumedge:dev .)
# No `# syntax=` line: BuildKit would pull a frontend image for it, which fails where no registry is reachable.
#
# PYTHON_IMAGE is the builder's base: any Debian-family image with python3.11 on PATH. By default Docker Hub's
# python:3.11-slim, pinned by tag here; for production builds pin it by digest as well, e.g.
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-trixie@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11.14-slim-trixie` prints the digest), and let a bot bump it.
# With no registry reachable, `make image` builds one from Debian packages (tools/image/base.sh, debootstrap).
# The runtime stage is FROM scratch: only what the builder collected (tools/image/rootfs.py) is in the image.
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

# ---------------------------------------------------------------------------------------------------
# builder: resolve the pinned, hash-checked dependencies into a virtual environment, install the package
# itself (no dev or train extras), cut what no command imports, and collect the runtime's root filesystem.
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Dependencies first (their own layer, reused while only the code changes). requirements.lock is
# `uv pip compile --universal --generate-hashes` output of pyproject.toml: every version and hash pinned.
# build/ca-bundle.pem exists only when `make image CA_BUNDLE=...` put it into the context, for a build behind
# a TLS-re-signing proxy; it is public material and this stage never reaches the image.
COPY requirements.lock build/ca-bundle.pe[m] ./
RUN if [ -s ca-bundle.pem ]; then export SSL_CERT_FILE=/src/ca-bundle.pem PIP_CERT=/src/ca-bundle.pem; fi \
 && python3.11 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir uv==0.13.9 \
 && /opt/uv/bin/uv venv --python python3.11 /opt/venv \
 && /opt/uv/bin/uv pip sync --python /opt/venv/bin/python --require-hashes --only-binary :all: requirements.lock

# Then the package, as a regular (non-editable) install without its dependencies (already pinned above).
COPY pyproject.toml README.md ./
COPY services ./services
COPY tools/image/slim.py tools/image/rootfs.py tools/image/openai_probe.py ./image/
RUN if [ -s ca-bundle.pem ]; then export SSL_CERT_FILE=/src/ca-bundle.pem; fi \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python --no-deps . \
 && python3.11 image/slim.py /opt/venv /opt/uv/bin/uv \
 && /opt/venv/bin/python image/openai_probe.py \
 && python3.11 image/rootfs.py /rootfs /opt/venv

# ---------------------------------------------------------------------------------------------------
# runtime: the interpreter, its libraries, the venv and the models. No shell, no package manager, no compiler,
# no uv, no pip, no sources, no secrets.
FROM scratch AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="quantumedge" \
      org.opencontainers.image.description="QuantumEdge: ingest, inference, risk and execution gRPC services over Kafka" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in the cluster (bytecode was compiled at build).
# HOME=/tmp: the only writable place besides the data volume, for any library that wants a home directory.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/tmp \
    LANG=C.UTF-8 \
    PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    QE_BUS=kafka \
    QE_MODELS_DIR=/app/models \
    QE_DATA_DIR=/data

# A fixed numeric user (10001, in the collected /etc/passwd), so Kubernetes can verify runAsNonRoot without a
# name lookup; /data and /tmp are the only folders it may write.
COPY --from=builder /rootfs /
# Models are baked into the image (QE_MODELS_DIR); a chart value can mount a newer registry over them.
COPY models /app/models

WORKDIR /app
USER 10001:10001

# The build fails here if a cut or a missing library broke a command: every service module imports and
# every command answers --help, as the service user, with no shell in the image.
RUN ["/opt/venv/bin/python", "-c", "import quantumedge.ingest.service, quantumedge.inference.service, quantumedge.risk.service, quantumedge.execution.service, quantumedge.inference.onnx_graph, quantumedge.embedded, quantumedge.backtest.cli, onnx.compose, onnx.helper, pyarrow.parquet, pyarrow.dataset, onnxruntime"]
RUN ["/opt/venv/bin/quantumedge", "--help"]

# ingest, inference, risk, execution (gRPC + health + reflection)
EXPOSE 50051 50052 50053 50054

# The runner drains on SIGTERM: health goes NOT_SERVING, in-flight calls finish, consumers commit, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["quantumedge"]
CMD ["serve", "ingest"]
