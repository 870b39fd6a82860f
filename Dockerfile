# syntax=docker/dockerfile:1.7
# One image for all four services: the command picks the service
#   docker run IMAGE serve risk        (default: serve ingest)
#
# Build from the repository root:  docker build -t quantumedge:dev .
#
# Base image: pinned by tag here. For production builds pin it by digest as well, e.g.
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-trixie@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11.14-slim-trixie` prints the digest), and let a bot bump it.
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

# ---------------------------------------------------------------------------------------------------
# builder: resolve the pinned, hash-checked dependencies into a virtual environment, then install the
# package itself (no dev or train extras). Nothing from this stage but /opt/venv reaches the final image.
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /src

# Dependencies first (their own layer, reused while only the code changes). requirements.lock is
# `uv pip compile --universal --generate-hashes` output of pyproject.toml: every version and hash pinned.
COPY requirements.lock ./
RUN uv venv --python /usr/local/bin/python3.11 /opt/venv \
 && uv pip sync --python /opt/venv/bin/python --require-hashes --only-binary :all: requirements.lock

# Then the package, as a regular (non-editable) install without its dependencies (already pinned above).
COPY pyproject.toml README.md ./
COPY services ./services
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
 && /opt/venv/bin/quantumedge --help > /dev/null

# ---------------------------------------------------------------------------------------------------
# runtime: the interpreter, the venv and the models. No compiler, no uv, no pip, no sources, no secrets.
FROM ${PYTHON_IMAGE} AS runtime

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
    PATH=/opt/venv/bin:$PATH \
    QE_BUS=kafka \
    QE_MODELS_DIR=/app/models \
    QE_DATA_DIR=/data

# A fixed numeric user, so Kubernetes can verify runAsNonRoot without a name lookup; pip/setuptools/wheel
# of the base image are removed: nothing installs anything at run time.
RUN groupadd --system --gid 10001 quantumedge \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin quantumedge \
 && python -m pip uninstall --yes --quiet pip setuptools wheel \
 && mkdir -p /data \
 && chown 10001:10001 /data

COPY --from=builder /opt/venv /opt/venv
# Models are baked into the image (QE_MODELS_DIR); a chart value can mount a newer registry over them.
COPY models /app/models

WORKDIR /app
USER 10001:10001

# ingest, inference, risk, execution (gRPC + health + reflection)
EXPOSE 50051 50052 50053 50054

# The runner drains on SIGTERM: health goes NOT_SERVING, in-flight calls finish, consumers commit, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["quantumedge"]
CMD ["serve", "ingest"]
