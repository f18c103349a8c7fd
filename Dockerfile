# The indexer (with its API) and the payout agent: one image, the npm scripts as commands.
FROM node:22-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ENV NODE_ENV=production LOG_FORMAT=json
CMD ["npm", "run", "indexer"]
