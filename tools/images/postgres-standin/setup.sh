#!/bin/bash
# Stand-in for the official postgres:18 image (docker.io/library/postgres), run inside the chroot
# of a debootstrapped Debian unstable (minbase), which carries PostgreSQL 18. Laid out as the
# official image is, because the chart relies on it:
#   - user and group "postgres" with uid/gid 999, created BEFORE the packages (postgresql-common
#     would otherwise pick a system uid);
#   - postgresql-common told not to create a "main" cluster, then postgresql-18 (server, psql,
#     pg_basebackup, pg_receivewal, pg_isready in /usr/lib/postgresql/18/bin);
#   - the en_US.UTF-8 locale (the official image's LANG), nss_wrapper (its support for an arbitrary
#     uid without a passwd entry), /docker-entrypoint-initdb.d, and /var/run/postgresql writable.
set -euo pipefail

groupadd --system --gid 999 postgres
useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres

# No daemon may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
# unstable's Release file may be past its Valid-Until when a mirror lags; we only read it once here.
echo 'Acquire::Check-Valid-Until "false";' > /etc/apt/apt.conf.d/99bazar-no-valid-until
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# systemd-standalone-tmpfiles satisfies postgresql-common's tmpfiles dependency without systemd.
apt-get install -y -qq --no-install-recommends postgresql-common systemd-standalone-tmpfiles
sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
  /etc/postgresql-common/createcluster.conf
grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf
apt-get install -y -qq --no-install-recommends postgresql-18 locales libnss-wrapper

# (unstable's locales no longer ships locale.alias; the official image passes it where it exists.)
alias_file=/usr/share/locale/locale.alias
if [ -f "$alias_file" ]; then
  localedef -i en_US -c -f UTF-8 -A "$alias_file" en_US.UTF-8
else
  localedef -i en_US -c -f UTF-8 en_US.UTF-8
fi
locale -a | grep -qx 'en_US.utf8'

install -d -o postgres -g postgres -m 3777 /var/run/postgresql
# PGDATA is /var/lib/postgresql/18/docker; the image's volume is /var/lib/postgresql. 1777 on the
# parent lets a container started with another uid create its data directory there.
install -d -o postgres -g postgres -m 1777 /var/lib/postgresql
install -d -m 0755 /docker-entrypoint-initdb.d

test -z "$(ls -A /var/lib/postgresql)" || { echo "setup: a cluster was created in /var/lib/postgresql" >&2; exit 1; }
/usr/lib/postgresql/18/bin/postgres --version
/usr/lib/postgresql/18/bin/pg_isready --version
