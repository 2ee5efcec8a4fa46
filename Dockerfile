# syntax=docker/dockerfile:1
# apiscp-backup-api: build on the full Debian 12 Node image (it has python3, make and g++ in case better-sqlite3 must
# compile), run on the slim one with the backup tools from Debian. Both stages are Debian 12, so the native module built
# in the first runs in the second.
#
# Node 22 (LTS until April 2027; Node 20 reached its end of life in April 2026). The code also runs on Node 20.19+.
# Both base images are pinned by digest so a rebuild gets the same bytes; bump tag and digest together. These digests
# are the node:22-bookworm and node:22-bookworm-slim (Node 22.22.1) ones pinned in OpenClaw's Dockerfile
# (github.com/openclaw/openclaw, ARG OPENCLAW_NODE_BOOKWORM_IMAGE / OPENCLAW_NODE_BOOKWORM_SLIM_IMAGE); check a new one
# with `docker buildx imagetools inspect node:22-bookworm-slim`.

FROM node:22-bookworm@sha256:b501c082306a4f528bc4038cbf2fbb58095d583d0419a259b2114b5ac53d12e9 AS build
WORKDIR /app
# swagger-ui-dist's dependency @scarf/scarf reports installs from a postinstall script unless told not to.
ENV SCARF_ANALYTICS=false
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim@sha256:9c2c405e3ff9b9afb2873232d24bb06367d649aa3e6259cbe314da59578e81e9 AS runtime
# duplicity (+ gnupg for encrypted targets, python3-paramiko for sftp:// and scp:// targets, which --no-install-recommends
# would otherwise leave out), getfacl/setfacl and getfattr/setfattr to carry ACLs and xattrs through duplicity, bconsole,
# restic and borg (the deduplicating providers; ssh for borg's ssh:// repositories), and the database clients of the
# native exporter. Debian 12: duplicity 0.8.22, bconsole 9.6.7, MariaDB 10.11 and
# PostgreSQL 15 clients (pg_dump refuses servers newer than itself).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        duplicity python3-paramiko gnupg acl attr bacula-console \
        mariadb-client postgresql-client tini ca-certificates git zstd \
        restic borgbackup openssh-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/var/lib/apiscp-backup-api VIRTUAL_ROOT=/home/virtual

# Runs as root on purpose, so there is no USER line. The service reads every site's files (siteN/shadow belongs to many
# users, with modes that shut others out) and restores them exactly: owners (CAP_CHOWN), modes, ACLs and user.* xattrs
# on files it does not own (CAP_FOWNER, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), setgid bits (CAP_FSETID),
# security.capability (CAP_SETFCAP) and trusted.*/security.* xattrs (CAP_SYS_ADMIN, which also lets an engine start
# beside the attribute capture through a fanotify fence). No unprivileged user can do that.
# Kubernetes drops every other capability (k8s/daemonset.yaml, securityContext).

EXPOSE 8080

# Liveness only (GET /healthz); Kubernetes ignores this and uses the probes in k8s/daemonset.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# tini reaps the children duplicity and gpg leave behind and passes SIGTERM on to node, which then lets running jobs
# stop within SHUTDOWN_GRACE_SECONDS.
ENTRYPOINT ["tini", "--"]
# --max-semi-space-size=2: V8's young generation capped at 2 MiB per semi-space keeps the service's RSS ~27 MB lower
# (idle ~100 MB instead of ~128 MB) at the cost of more, shorter scavenges. --optimize-for-size: the old generation
# grows by smaller steps before a full collection (peak RSS over 100,000-file jobs 110 instead of 140 MiB, the same
# CPU per request). package.json "start" uses the same flags.
CMD ["node", "--max-semi-space-size=2", "--optimize-for-size", "dist/main.js"]
