#!/usr/bin/env bash
# `make image`: build the project's image with Docker and print its size.
#   IMAGE (quantumedge), TAG (the chart's appVersion, so the chart's default image.tag matches),
#   BASE (the builder's base; empty = the Debian base made by base.sh if present, else Docker Hub's
#   python image if it can be had, else base.sh builds one with debootstrap), CA_BUNDLE (a PEM file the
#   builder trusts for PyPI, for builds behind a TLS-re-signing proxy; default $SSL_CERT_FILE).
# The engine: $DOCKER_HOST, else the system's, else the project's own (tools/docker_engine.py).
# The build runs at nice 19 with the legacy builder (BuildKit would pull its frontend and helper images),
# with `--network host` for its RUN steps (no NAT or IP forwarding on the host is ever turned on).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
IMAGE="${IMAGE:-quantumedge}"
TAG="${TAG:-$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' charts/quantumedge/Chart.yaml)}"
OFFICIAL_BASE="$(awk -F= '/^ARG PYTHON_IMAGE=/ {print $2}' Dockerfile)"
CA_BUNDLE="${CA_BUNDLE-${SSL_CERT_FILE:-}}"

DOCKER_HOST="$("$PY" tools/docker_engine.py ensure)"
export DOCKER_HOST

pick_base() {
	if [ -n "${BASE:-}" ]; then echo "$BASE"; return; fi
	local local_base
	local_base="$(docker image ls --format '{{.Repository}}:{{.Tag}}' 'quantumedge-base' | head -1)"
	if [ -n "$local_base" ] && [ "$(bash tools/image/base.sh --name)" = "$local_base" ]; then echo "$local_base"; return; fi
	if docker image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 || timeout 60 docker pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
		echo "$OFFICIAL_BASE"
		return
	fi
	echo "image: $OFFICIAL_BASE cannot be pulled; building a base from Debian packages" >&2
	bash tools/image/base.sh | tail -1
}

base="$(pick_base)"
mkdir -p build
if [ -n "$CA_BUNDLE" ] && [ -s "$CA_BUNDLE" ]; then
	cp "$CA_BUNDLE" build/ca-bundle.pem
else
	rm -f build/ca-bundle.pem
fi
echo "image: building $IMAGE:$TAG on $base (engine $DOCKER_HOST)"
t0=$(date +%s)
DOCKER_BUILDKIT=0 nice -n 19 docker build --network host --build-arg "PYTHON_IMAGE=$base" \
	--build-arg "VERSION=$TAG" -t "$IMAGE:$TAG" . >"$ROOT/.cache/image-build.log" 2>&1 ||
	{ tail -40 "$ROOT/.cache/image-build.log" >&2; echo "image: build failed; whole log: .cache/image-build.log" >&2; exit 1; }
grep -E '^(slim|rootfs):' "$ROOT/.cache/image-build.log" || true
bytes="$(docker image inspect -f '{{.Size}}' "$IMAGE:$TAG")"
echo "image: $IMAGE:$TAG built in $(($(date +%s) - t0)) s; size $((bytes / 1000000)) MB"
