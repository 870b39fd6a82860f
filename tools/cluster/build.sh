#!/usr/bin/env bash
# Build, once, the real control plane `make cluster-test` runs, into .cache/cluster/bin:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (Go module k8s.io/kubernetes, tools/cluster/kube)
#   etcd                                                     (Go module go.etcd.io/etcd/server/v3, tools/cluster/etcd)
#   kwok                                                     (sigs.k8s.io/kwok/cmd/kwok: fake nodes, no kubelet)
# Every binary is skipped when it is already there for the pinned version (a warm run takes no time).
# A cold build takes 20-40 minutes on 2 cores and is run at the lowest CPU priority. Go's module and build
# caches (several GB) live in .cache/go during the build and are removed after it; set QE_KEEP_GO_CACHE=1 to
# keep them for a faster rebuild after a version change.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/tools/cluster"
BIN="$ROOT/.cache/cluster/bin"
KUBE_VERSION="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$HERE/kube/go.mod")"
ETCD_VERSION="$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$HERE/etcd/go.mod")"
KWOK_VERSION="v0.8.0"

GO="$(command -v go || true)"
[ -n "$GO" ] || GO=/usr/local/go/bin/go
[ -x "$GO" ] || { echo "cluster build: no Go toolchain (go >= 1.26 on PATH or /usr/local/go/bin) to build the control plane" >&2; exit 2; }

# Lowest CPU priority for this script and every compiler it starts: the machine is shared.
renice -n 19 -p $$ >/dev/null
mkdir -p "$BIN"
export GOMODCACHE="$ROOT/.cache/go/mod" GOCACHE="$ROOT/.cache/go/build" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
built=0

stamp_ok() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/$1.version" 2>/dev/null)" = "$2" ]; }

timed() { # name, version, command...
	local name="$1" version="$2" t0
	shift 2
	if stamp_ok "$name" "$version"; then
		echo "cluster build: $name $version cached"
		return
	fi
	echo "cluster build: building $name $version (cold: minutes; nice -n 19)"
	t0=$(date +%s)
	"$@"
	echo "$version" >"$BIN/$name.version"
	echo "cluster build: $name built in $(($(date +%s) - t0)) s"
	built=1
}

# The three control-plane binaries share most packages: one `go build` compiles them together.
build_kube() {
	local minor
	minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
	# Without the version stamp the binaries report v0.0.0 and the chart's kubeVersion check refuses it.
	local ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
	ld="$ld -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
	ld="$ld -X k8s.io/component-base/version.gitTreeState=clean"
	(cd "$HERE/kube" && "$GO" build -trimpath -ldflags "$ld" -o "$BIN/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler)
	for b in kube-controller-manager kube-scheduler; do echo "$KUBE_VERSION" >"$BIN/$b.version"; done
}

build_etcd() {
	local ld="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}"
	(cd "$HERE/etcd" && "$GO" build -trimpath -ldflags "$ld" -o "$BIN/etcd" .)
}

build_kwok() {
	GOFLAGS=-buildvcs=false GOBIN="$BIN" "$GO" install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

if ! { stamp_ok kube-controller-manager "$KUBE_VERSION" && stamp_ok kube-scheduler "$KUBE_VERSION"; }; then
	rm -f "$BIN/kube-apiserver.version"
fi
timed kube-apiserver "$KUBE_VERSION" build_kube
timed etcd "$ETCD_VERSION" build_etcd
timed kwok "$KWOK_VERSION" build_kwok

if [ "$built" = 1 ] && [ "${QE_KEEP_GO_CACHE:-0}" != 1 ] && [ -d "$ROOT/.cache/go" ]; then
	chmod -R u+w "$ROOT/.cache/go" && rm -rf "$ROOT/.cache/go"
	echo "cluster build: removed Go's caches (.cache/go); binaries kept in $BIN ($(du -sh "$BIN" | cut -f1))"
fi
