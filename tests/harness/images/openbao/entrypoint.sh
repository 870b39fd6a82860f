#!/bin/sh
# The dev server's root token arrives on stdin (one line), never in the container's environment or arguments:
# the engine stores those on disk with the container's configuration.
set -eu
IFS= read -r BAO_DEV_ROOT_TOKEN_ID
export BAO_DEV_ROOT_TOKEN_ID
exec /usr/local/bin/bao "$@"
