#!/bin/bash
# Stand-in for node:20-bookworm-slim, run inside the chroot of a debootstrapped trixie (minbase +
# Debian's nodejs 20). What the official image provides and our Dockerfile relies on:
#   - node and npm on the PATH (npm ci, npx tsc); npm as Node 20 bundles it, unpacked from the npm
#     registry's tarball into /usr/local/lib/node_modules/npm with links in /usr/local/bin, the
#     official image's layout;
#   - a "node" user and group, uid/gid 1000, home /home/node (the Dockerfile's USER 1000:1000);
#   - /bin/sh for RUN and CMD.
# Inputs in /tmp/bazar-in: npm.tgz, ca-certificates.crt (this machine's CA bundle: npm ci inside the
# build must trust the same authorities the host trusts).
set -euo pipefail
in=/tmp/bazar-in

groupadd --gid 1000 node
useradd --uid 1000 --gid node --shell /bin/bash --create-home node

mkdir -p /usr/local/lib/node_modules/npm /usr/local/bin
tar -xzf "$in/npm.tgz" -C /usr/local/lib/node_modules/npm --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx

mkdir -p /etc/ssl/certs
install -m 0644 "$in/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt

# The stand-in is for Node 20: a suite that moved to another major must not pass as one.
node --version | grep -q '^v20\.' || { echo "setup: node $(node --version) is not Node 20" >&2; exit 1; }
echo "node $(node --version), npm $(npm --version)"
