# syntax=docker/dockerfile:1
# apiscp-backup-api: build on the full Debian 12 Node image (it has python3, make and g++ in case better-sqlite3 must
# compile), run on the slim one with the backup tools from Debian. Both stages are Debian 12, so the native module built
# in the first runs in the second.

FROM node:20-bookworm AS build
WORKDIR /app
# swagger-ui-dist's dependency @scarf/scarf reports installs from a postinstall script unless told not to.
ENV SCARF_ANALYTICS=false
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
# duplicity (+ gnupg for encrypted targets, python3-paramiko for sftp:// and scp:// targets, which --no-install-recommends
# would otherwise leave out), getfacl/setfacl and getfattr/setfattr to carry ACLs and xattrs through duplicity, bconsole,
# and the database clients of the native exporter. Debian 12: duplicity 0.8.22, bconsole 9.6.7, MariaDB 10.11 and
# PostgreSQL 15 clients (pg_dump refuses servers newer than itself).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        duplicity python3-paramiko gnupg acl attr bacula-console \
        mariadb-client postgresql-client tini ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/var/lib/apiscp-backup-api VIRTUAL_ROOT=/home/virtual

# Runs as root on purpose, so there is no USER line. The service reads every site's files (siteN/shadow belongs to many
# users, with modes that shut others out) and restores them exactly: owners (CAP_CHOWN), modes, ACLs and user.* xattrs
# on files it does not own (CAP_FOWNER, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), setgid bits (CAP_FSETID),
# security.capability (CAP_SETFCAP) and trusted.*/security.* xattrs (CAP_SYS_ADMIN). No unprivileged user can do that.
# Kubernetes drops every other capability (k8s/daemonset.yaml, securityContext).

EXPOSE 8080

# Liveness only (GET /healthz); Kubernetes ignores this and uses the probes in k8s/daemonset.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# tini reaps the children duplicity and gpg leave behind and passes SIGTERM on to node, which then lets running jobs
# stop within SHUTDOWN_GRACE_SECONDS.
ENTRYPOINT ["tini", "--"]
CMD ["node", "dist/main.js"]
