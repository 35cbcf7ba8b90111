# berth as a container: multi-stage, small (node:20-alpine), multi-arch with arm64 first:
#   docker buildx build --platform linux/arm64,linux/amd64 -t berth .
# Run it with host networking (its proxy reaches apps on their bridge network and binds the
# public ports) and the Docker socket mounted; see examples/compose.yaml.
ARG NODE_IMAGE=node:20-alpine

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: berth needs none (esbuild, ssh2 and friends work without them).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY crds ./crds
COPY controllers ./controllers
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    BERTH_MANIFESTS=/data/manifests \
    BERTH_STATUS=/data/status \
    BERTH_STATE=/data/state
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/crds ./crds
COPY bin ./bin
# /data is owned by the unprivileged user, so named volumes mounted there are writable by it.
RUN mkdir -p /data/manifests /data/status /data/state && chown -R node:node /data && chmod 700 /data/state
USER node
VOLUME ["/data"]
EXPOSE 8080 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/berth.js"]
CMD ["run"]
