# One image for the foreman and the worker: the command picks which.
#   docker build -t crowdcompute .
#   docker run -p 8000:8000 crowdcompute                                   # foreman on SQLite (/data)
#   docker run crowdcompute worker --foreman ws://host:8000/ws --allow-code # worker
# Node 24 runs the TypeScript sources directly (type stripping): no build step, so no install
# scripts either (better-sqlite3 and isolated-vm load their prebuilt binaries).
FROM node:24-bookworm-slim

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY examples ./examples

# Not root. /data holds the SQLite file when the foreman runs on the embedded store;
# /credentials, tokens written by set-up steps (compose.yaml); /home/node/.config, the local
# credentials file of a foreman on SQLite.
RUN mkdir -p /data /credentials && chown node:node /data /credentials
USER node
ENV NODE_ENV=production \
    CROWDCOMPUTE_DATABASE=sqlite:/data/crowdcompute.db \
    HEALTH_PORT=8000
EXPOSE 8000 8001

# /health answers 200 when healthy: the foreman on 8000; a worker's status server on 8001
# (set HEALTH_PORT=8001 for workers).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.HEALTH_PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "--no-node-snapshot", "bin/crowdcompute.js"]
CMD ["foreman", "--port", "8000"]
