#!/usr/bin/env bash
# Installs and starts what the test suite drives for real: duplicity, acl/attr, Bacula, restic, borg, MariaDB,
# PostgreSQL, Chromium.
# Idempotent: does nothing for what is already there. Needs root (apt-get, starting daemons).
set -euo pipefail

need=()
command -v duplicity >/dev/null || need+=(duplicity)
command -v getfattr >/dev/null || need+=(attr)
command -v getfacl >/dev/null || need+=(acl)
command -v bconsole >/dev/null || need+=(bacula-console)
command -v bacula-dir >/dev/null || need+=(bacula-director bacula-director-sqlite3)
command -v bacula-sd >/dev/null || need+=(bacula-sd)
command -v bacula-fd >/dev/null || need+=(bacula-fd)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v mariadb-dump >/dev/null || need+=(mariadb-client)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v pg_dump >/dev/null || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v gzip >/dev/null || need+=(gzip)
# The sftp drills start their own loopback sshd (and make its keys with ssh-keygen).
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
# Web app snapshots: git, run as the site owner through setpriv (util-linux).
command -v git >/dev/null || need+=(git)
command -v setpriv >/dev/null || need+=(util-linux)
# Downloads (issue 16): GNU tar streams them, zstd compresses, the tests extract with bsdtar as well.
command -v tar >/dev/null || need+=(tar)
command -v zstd >/dev/null || need+=(zstd)
command -v bsdtar >/dev/null || need+=(libarchive-tools)
# The deduplicating providers; ssh for borg's unreachable-repository test, unshare (util-linux) for its lock tests.
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
command -v ssh >/dev/null || need+=(openssh-client)
command -v unshare >/dev/null || need+=(util-linux)
# promtool (Debian's prometheus package) checks /metrics, the alerting rules and their unit test.
command -v promtool >/dev/null || need+=(prometheus)
# The Swagger UI browser test drives Debian's Chromium (playwright-core never downloads a browser here).
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# MariaDB on 127.0.0.1:3306 (root, socket auth or empty password).
if ! mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null 2>&1; then
  echo "ensure-test-deps: starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1 || true
  for _ in $(seq 1 60); do mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
  mariadb -u root -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" 2>/dev/null || true
fi
mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null || { echo "MariaDB is not reachable on 127.0.0.1:3306" >&2; exit 1; }

# PostgreSQL on 127.0.0.1:5432 and its socket, trust auth for local tests.
if ! psql -h 127.0.0.1 -U postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
  echo "ensure-test-deps: starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nlocal all all trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 60); do psql -h 127.0.0.1 -U postgres -Atc 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
fi
psql -h 127.0.0.1 -U postgres -Atc 'SELECT 1' >/dev/null || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
echo "ensure-test-deps: ready"
