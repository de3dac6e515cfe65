# One image for every role; the compose file picks the entrypoint.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The web pages' HTML, CSS and JS: served as they are, found beside package.json.
COPY web ./web
# The API description, served at /openapi.yaml.
COPY package.json openapi.yaml ./
USER node
CMD ["node", "dist/src/api/main.js"]
