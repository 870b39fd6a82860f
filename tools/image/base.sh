#!/usr/bin/env bash
# Build the image's base from Debian packages when no registry can be pulled from:
#   debootstrap --variant=minbase bookworm + python3.11 (+ venv) + ca-certificates + binutils (strip),
#   cleaned of docs, man pages, locales and apt lists, without the EXTERNALLY-MANAGED marker (the venv
#   is built by uv, never into the system interpreter), then `docker import`ed as $BASE_IMAGE.
# The root filesystem is cached as a tarball in .cache/image, so a wiped engine imports it again in seconds;
# both are keyed by a hash of this script, so changing the package list rebuilds.
#   usage: tools/image/base.sh            prints the image name it made (or found) on its last line
#          tools/image/base.sh --name     prints that name only
# Needs root (debootstrap) and DOCKER_HOST pointing at an engine. 3-12 minutes cold, at nice 19.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SUITE="${QE_BASE_SUITE:-bookworm}"
# debootstrap resolves dependencies only partly (not virtual packages): what python3.11-venv needs is named.
PACKAGES="python3.11,python3.11-venv,python3-pip-whl,python3-setuptools-whl,python3-distutils,python3-lib2to3,python3,ca-certificates,binutils"
KEY="$(cat "$0" | sha256sum | cut -c1-12)"
NAME="quantumedge-base:${SUITE}-${KEY}"
CACHE="$ROOT/.cache/image"
TARBALL="$CACHE/base-${SUITE}-${KEY}.tar"

log() { echo "image base: $*" >&2; }

if [ "${1:-}" = "--name" ]; then # the name this script makes, for callers deciding whether it is there
	echo "$NAME"
	exit 0
fi

if docker image inspect "$NAME" >/dev/null 2>&1; then
	log "$NAME present"
	echo "$NAME"
	exit 0
fi

mirror() {
	# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list), else the default.
	local uri
	uri="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v security | grep -oE 'https?://[^ ]+/debian/?' | head -1 || true)"
	echo "${QE_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

if [ ! -s "$TARBALL" ]; then
	command -v debootstrap >/dev/null || {
		[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 2; }
		log "installing debootstrap (apt-get)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
	}
	[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 2; }
	mkdir -p "$CACHE"
	ROOTFS="$(mktemp -d "$CACHE/rootfs-XXXXXX")"
	trap 'rm -rf "$ROOTFS"' EXIT
	t0=$(date +%s)
	log "debootstrap $SUITE from $(mirror) (minbase + $PACKAGES; minutes, nice 19)"
	nice -n 19 debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 ||
		{
			cp "$ROOTFS/debootstrap/debootstrap.log" "$CACHE/debootstrap-inner.log" 2>/dev/null || true
			tail -25 "$CACHE/debootstrap-inner.log" >&2 || tail -25 "$CACHE/debootstrap.log" >&2
			log "debootstrap failed; logs: $CACHE/debootstrap.log, $CACHE/debootstrap-inner.log"
			exit 2
		}
	# Nothing installs anything at run time: no package lists, caches, docs, man pages or locales.
	rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
		"$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
		"$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/lintian "$ROOTFS"/var/log/* \
		"$ROOTFS"/usr/lib/python3.11/EXTERNALLY-MANAGED "$ROOTFS"/tmp/* "$ROOTFS"/root/.[!.]* 2>/dev/null || true
	nice -n 19 tar -C "$ROOTFS" --numeric-owner -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
	log "root filesystem built in $(($(date +%s) - t0)) s: $(du -sh "$TARBALL" | cut -f1)"
fi
docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
	--message "debootstrap --variant=minbase $SUITE + $PACKAGES" "$TARBALL" "$NAME" >/dev/null
log "imported $NAME ($(docker image inspect -f '{{.Size}}' "$NAME" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$NAME"
