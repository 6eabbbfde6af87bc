#!/bin/sh
# Entrypoint of the node:20 stand-in, with the official image's documented behaviour: arguments
# that are not a command (an option such as --version, or a script file) are given to node;
# a command (sh, npm, node ...) runs as it is.
set -e
first="${1:-}"
if [ -z "$first" ]; then
  set -- node
elif [ "${first#-}" != "$first" ] || ! command -v -- "$first" >/dev/null 2>&1 || { [ -f "$first" ] && [ ! -x "$first" ]; }; then
  set -- node "$@"
fi
exec "$@"
