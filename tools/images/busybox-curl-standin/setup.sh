#!/bin/bash
# Two small stand-ins, staged inside the chroot of a debootstrapped trixie (minbase + curl +
# busybox-static); each stage directory becomes an image on its own, FROM scratch:
#
#   /bazar-stage/busybox  stand-in for docker.io/library/busybox, the image local-path-provisioner
#                         starts helper pods with (sh, mkdir, rm, chmod): Debian's static busybox
#                         with one link per applet in /bin, root and nobody users, /tmp.
#   /bazar-stage/curl     stand-in for curlimages/curl (the chart's `helm test` image). That image is
#                         Alpine: busybox for sh, grep, sed, date, cat, and curl. Same here: the
#                         busybox stage, plus Debian's curl with exactly the shared libraries it
#                         loads, this machine's CA bundle, and curlimages' user curl_user (uid 100,
#                         group curl_group gid 101).
# Input in /tmp/bazar-in: ca-certificates.crt.
set -euo pipefail
in=/tmp/bazar-in
bb=/bazar-stage/busybox
cu=/bazar-stage/curl

stage_busybox() {
  mkdir -p "$bb/bin" "$bb/etc" "$bb/root" "$bb/tmp" "$bb/var/tmp" "$bb/home"
  chmod 1777 "$bb/tmp" "$bb/var/tmp"
  chmod 0700 "$bb/root"
  cp /bin/busybox "$bb/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bb/bin/$applet"
  done
  # busybox's own image keeps /usr/bin and /usr/sbin empty; scripts that name /usr/bin/env still work.
  mkdir -p "$bb/usr/bin" "$bb/usr/sbin" "$bb/sbin"
  ln -s ../../bin/env "$bb/usr/bin/env"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' > "$bb/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > "$bb/etc/group"
  printf '%s\n' 'hosts: files dns' > "$bb/etc/nsswitch.conf"
}

# Copies a file to the same path under the stage, following links (the stage holds real files).
stage_file() {
  install -D -m "$(stat -c %a "$(readlink -f "$1")")" "$(readlink -f "$1")" "$cu$1"
}

stage_curl() {
  cp -a "$bb/." "$cu/"
  stage_file /usr/bin/curl
  local lib
  # ldd prints "libx.so.N => /path (addr)" and the loader as "/lib64/ld-linux-x86-64.so.2 (addr)".
  for lib in $(ldd /usr/bin/curl | awk '$2 == "=>" { print $3; next } $1 ~ /^\// { print $1 }'); do
    stage_file "$lib"
  done
  mkdir -p "$cu/etc/ssl/certs"
  install -m 0644 "$in/ca-certificates.crt" "$cu/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$cu/home/curl_user"
  chown 100:101 "$cu/home/curl_user"
  printf '%s\n' 'curl_user:x:100:101:curl_user:/home/curl_user:/bin/sh' >> "$cu/etc/passwd"
  printf '%s\n' 'curl_group:x:101:curl_user' >> "$cu/etc/group"
}

# The image is tagged 1.37 (tools/images/src/recipes.ts): a suite that moved on must say so.
version="$( (/bin/busybox --help 2>&1 || true) | head -1)"
case "$version" in
  "BusyBox v1.37."*) ;;
  *) echo "setup: $version is not 1.37" >&2; exit 1 ;;
esac
stage_busybox
stage_curl
# The stages must work on their own, without anything of this root.
chroot "$bb" /bin/sh -c 'mkdir -p /tmp/x && rm -r /tmp/x && echo "busybox stage: $( (busybox --help 2>&1 || true) | head -1)"'
# (No /dev in a stage: the container runtime provides it.)
chroot "$cu" /bin/sh -c 'curl --version | head -1 && echo "{\"id\": 1}" | grep -Eq "\"id\": ?1[,}]" && date +%s | grep -q "^[0-9]"'
