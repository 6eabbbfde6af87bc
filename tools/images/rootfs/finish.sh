#!/bin/bash
# Last step in every debootstrapped root, run inside its chroot: what makes a root filesystem an
# image root. No package lists or caches (the image does not install anything at run time), no man
# pages or translations (like Debian's -slim images), no host identity (the container runtime
# provides resolv.conf and hostname), no build-time apt settings.
set -euo pipefail

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian
# Keep the copyright files, as Debian's slim images do.
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -f /usr/sbin/policy-rc.d /etc/apt/apt.conf.d/99bazar-*
: > /etc/resolv.conf
: > /etc/hostname
chmod 0644 /etc/resolv.conf /etc/hostname
find /var/log -type f -delete
rm -rf /tmp/* /tmp/.[!.]* /var/tmp/* /root/.cache /root/.npm
