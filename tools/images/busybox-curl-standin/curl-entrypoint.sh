#!/bin/sh
# Entrypoint of the curlimages/curl stand-in, with that image's behaviour: arguments that are not a
# command (options, a URL) are given to curl; a command (sh, curl ...) runs as it is.
set -e
first="${1:-}"
if [ -z "$first" ]; then
  set -- curl
elif [ "${first#-}" != "$first" ] || ! command -v -- "$first" >/dev/null 2>&1; then
  set -- curl "$@"
fi
exec "$@"
