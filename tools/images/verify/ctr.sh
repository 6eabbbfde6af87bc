#!/usr/bin/env bash
# One "container" of the image checks (verify.sh): runs a command in an extracted image root the
# way a pod's container runs, without a container runtime. Meant to be the command of
#   unshare --mount --propagation private [--pid --fork] -- ctr.sh ...
# so that every mount below vanishes with it.
#
#   ctr.sh ROOT UID:GID [-w DIR] [-v HOSTDIR:PATH | -t PATH | -f HOSTFILE:PATH]... -- [NAME=VALUE]... -- CMD [ARG]...
#
# The root is mounted read-only (readOnlyRootFilesystem), with a fresh /proc, a minimal /dev (null,
# zero, random, urandom, tty, fd, a tmpfs /dev/shm), and the volumes: -v binds a host directory
# (an emptyDir or a PVC), -t mounts a tmpfs, -f binds one file (a ConfigMap key). Paths are resolved
# inside the root, as the runtime would: /var/run/postgresql is /run/postgresql there, never the
# host's. The command runs as UID:GID (no supplementary groups) in DIR (the image's WORKDIR) with
# exactly the given environment.
set -euo pipefail

root="$1"
user="$2"
shift 2

# PATH inside ROOT, following symbolic links relative to ROOT → the host path it names.
resolve_in_root() {
  local base="$1" path="$2" out="" link hops=0
  local -a parts rest
  IFS=/ read -ra parts <<<"${path#/}"
  local i=0
  while [ "$i" -lt "${#parts[@]}" ]; do
    local part="${parts[$i]}"
    i=$((i + 1))
    if [ -z "$part" ] || [ "$part" = . ]; then continue; fi
    if [ "$part" = .. ]; then
      out="${out%/*}"
      continue
    fi
    if [ -L "$base$out/$part" ]; then
      hops=$((hops + 1))
      [ "$hops" -lt 40 ] || { echo "ctr.sh: too many links in $path" >&2; exit 1; }
      link="$(readlink "$base$out/$part")"
      if [ "${link:0:1}" = / ]; then out=""; fi
      IFS=/ read -ra rest <<<"${link#/}"
      parts=("${rest[@]}" "${parts[@]:$i}")
      i=0
    else
      out="$out/$part"
    fi
  done
  printf '%s%s\n' "$base" "$out"
}

target="$(mktemp -d "${CTR_TMPDIR:-/tmp}/ctr.XXXXXX")"
mount --bind "$root" "$target"
# Images FROM scratch have no /proc or /dev: create the mount points, as runc does.
proc="$(resolve_in_root "$target" /proc)"
mkdir -p "$proc"
mount -t proc proc "$proc"

dev="$(resolve_in_root "$target" /dev)"
mkdir -p "$dev"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$dev"
for node in null zero full random urandom tty; do
  touch "$dev/$node"
  mount --bind "/dev/$node" "$dev/$node"
done
ln -s /proc/self/fd "$dev/fd"
mkdir -m 1777 "$dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm"

workdir=/
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  case "$1" in
    -w) workdir="$2" ;;
    -v)
      dest="$(resolve_in_root "$target" "${2#*:}")"
      mkdir -p "$dest"
      mount --bind "${2%%:*}" "$dest"
      ;;
    -t)
      dest="$(resolve_in_root "$target" "$2")"
      mkdir -p "$dest"
      mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dest"
      ;;
    -f)
      dest="$(resolve_in_root "$target" "${2#*:}")"
      mkdir -p "$(dirname "$dest")"
      touch "$dest"
      mount --bind "${2%%:*}" "$dest"
      mount -o remount,bind,ro "$dest"
      ;;
    *)
      echo "ctr.sh: unknown option $1" >&2
      exit 2
      ;;
  esac
  shift 2
done
shift

env_vars=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  env_vars+=("$1")
  shift
done
shift

mount -o remount,bind,ro "$target"
# chroot(8) always starts in /, and a FROM-scratch image has no setpriv to change user inside it:
# perl (Essential in Debian) does chroot, chdir, setgroups, setgid, setuid and exec, in that order,
# with the container's environment, so the command is looked up in the image's PATH.
# PERL_BADLANG=0: the image's LANG need not exist on the host; perl removes it before the exec.
exec env -i "${env_vars[@]}" PERL_BADLANG=0 /usr/bin/perl -e '
  my ($root, $wd, $uid, $gid, @cmd) = @ARGV;
  delete $ENV{PERL_BADLANG};
  chroot($root) or die "chroot $root: $!\n";
  chdir($wd) or die "chdir $wd: $!\n";
  $) = "$gid $gid"; $( = $gid;
  $> = $uid; $< = $uid;
  die "cannot become $uid:$gid\n" if $< != $uid || $> != $uid || $( != $gid;
  exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!\n";
' "$target" "$workdir" "${user%%:*}" "${user##*:}" "$@"
