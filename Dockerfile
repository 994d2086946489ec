# The gateway alone; configured only by environment variables (README "Configuration").
# Used by docker-compose.yml and deploy/k8s (image "registry-gateway").
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Only what the gateway's build reads: `COPY . .` would also copy .local/ (etcd data and
# credentials of the dev stack) and deploy/compose/secrets/ into a build layer.
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY libs ./libs
COPY apps/gateway ./apps/gateway
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# A heap limit sized for 100k instances (live heap ~100 MB there): without one V8 grows the heap to
# several times what is live before it collects, and RSS follows (bench/results/memory.md). deploy/k8s
# sets the same; raise it with the container's memory limit.
ENV NODE_OPTIONS=--max-old-space-size=768
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# uid 1000: deploy/k8s runs it with runAsNonRoot and runAsUser 1000.
USER node
EXPOSE 8080
# Exec form: node is PID 1 and gets SIGTERM itself (graceful drain, no lease revoked).
CMD ["node", "dist/apps/gateway/apps/gateway/src/main.js"]
