# The chat demo (examples/chat) in a container. Build from the repository root:
#   docker build -t websocket-stabilizer-chat .
#   docker run --rm -p 3000:3000 -e TOKEN_SECRET="$(openssl rand -base64 48)" websocket-stabilizer-chat
# Set REDIS_URL to share sessions between containers (docker-compose.yml does). test/deploy/compose.test.ts checks
# this file against the repository (what it copies exists, its runtime packages are package.json's) and runs its
# command; no Docker daemon was available to build it where the tests run.

# 1. Build the library (JavaScript only; the demo needs no type declarations).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsup.config.ts ./
COPY src ./src
RUN npm run build:js

# 2. The runtime: the built library, the demo, and only the packages they import.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# The library's dependencies (ws, zod), the demo's logger (pino) and the Redis client for REDIS_URL (ioredis), at
# the versions package.json names.
RUN npm install --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
      ws@^8.23.0 zod@^4.6.7 pino@^10.4.0 ioredis@^6.0.0 \
    && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY examples/chat ./examples/chat
USER node
EXPOSE 3000
ENV PORT=3000
# node as PID 1 gets SIGTERM from `docker stop` and Kubernetes: closeOnSignals drains and shuts down gracefully.
CMD ["node", "examples/chat/server.mjs"]
