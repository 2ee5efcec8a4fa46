#!/usr/bin/env bash
# Builds a small ApisCP-like site tree for the demo: three sites with domains, owners, xattrs and ACLs.
# Usage: scripts/sample-tree.sh VIRTUAL_ROOT
set -euo pipefail
root=${1:?usage: sample-tree.sh VIRTUAL_ROOT}
mkdir -p "$root"

make_site() {
  local n=$1 domain=$2 prefix=$3
  local site="$root/site$n"
  [ -d "$site" ] && return 0
  mkdir -p "$site/info/current" "$site/shadow/var/www/html/wp-content/uploads" "$site/shadow/home/admin$n" \
    "$site/shadow/var/lib/mysql/${prefix}wp" "$site/shadow/var/backups"
  printf 'domain = %s\nadmin_user = admin%s\nemail = admin@%s\n' "$domain" "$n" "$domain" > "$site/info/current/siteinfo"
  printf 'dbaseprefix = %s\n' "$prefix" > "$site/info/current/mysql"
  printf 'dbaseprefix = %s\n' "$prefix" > "$site/info/current/pgsql"
  printf '<?php echo "hello from %s";\n' "$domain" > "$site/shadow/var/www/html/index.php"
  printf "<?php define('DB_PASSWORD', 'demo');\n" > "$site/shadow/var/www/html/wp-config.php"
  head -c 1048576 /dev/urandom > "$site/shadow/var/www/html/wp-content/uploads/photo.bin"
  printf 'export PS1="$ "\n' > "$site/shadow/home/admin$n/.bashrc"
  printf 'raw database file: never backed up\n' > "$site/shadow/var/lib/mysql/${prefix}wp/ibdata1"
  ln -s ../html "$site/shadow/var/www/public_html"
  chown -R "$((1000 + n)):$((1000 + n))" "$site/shadow/var/www" "$site/shadow/home/admin$n"
  chmod 0600 "$site/shadow/var/www/html/wp-config.php"
  chmod 2775 "$site/shadow/var/www/html/wp-content/uploads"
  # Fortification: ACLs for the web server and default ACLs for uploads, an xattr the panel relies on.
  if command -v setfacl >/dev/null; then
    setfacl -m u:33:r-- "$site/shadow/var/www/html/wp-config.php" || true
    setfacl -d -m u:33:rwx,g:33:rwx "$site/shadow/var/www/html/wp-content/uploads" || true
  fi
  if command -v setfattr >/dev/null; then
    setfattr -n user.apiscp.fortify -v "site$n" "$site/shadow/var/www/html/index.php" || true
  fi
  ln -sfn "site$n" "$root/$domain"
  ln -sfn "site$n" "$root/admin$n"
}

make_site 1 example.com ex_
make_site 2 shop.example.net shop_
make_site 3 blog.example.org blog_
ln -sfn site1 "$root/www.example.com"
echo "sample sites under $root: site1 (example.com), site2 (shop.example.net), site3 (blog.example.org)"
