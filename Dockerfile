# One image for the API (serve), the workers (worker) and the schema migration (migrate).
# Stage 1 builds the web frontend, stage 2 the wheel (frontend included), stage 3 is the runtime:
# slim Python, the wheel and its dependencies only, no compilers, no Node, a non-root user.
# The bases are build arguments: a site without access to a public registry passes its own
# (scripts/image makes both locally with mmdebstrap and passes them this way).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${NODE_IMAGE} AS frontend
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# vite writes to ../src/skao_staging/web
RUN npm run build

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /build
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md ./
COPY src/ src/
COPY --from=frontend /build/src/skao_staging/web/ src/skao_staging/web/
RUN python -m build --wheel --outdir /dist

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="skao-staging" \
      org.opencontainers.image.description="Data staging service of the SKA Regional Centres" \
      org.opencontainers.image.licenses="BSD-3-Clause"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STAGING_LOG_FILE=/var/log/skao-staging/staging_service.log \
    STAGING_HEALTH_PORT=8000
RUN groupadd --system --gid 10001 staging \
    && useradd --system --uid 10001 --gid staging --no-create-home --shell /usr/sbin/nologin staging \
    && mkdir -p /var/lib/skao-staging /var/log/skao-staging \
    && chown staging:staging /var/lib/skao-staging /var/log/skao-staging
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
WORKDIR /var/lib/skao-staging
USER 10001:10001
EXPOSE 8000
# The API answers /healthz; a worker started with --metrics-port answers there too (set STAGING_HEALTH_PORT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['STAGING_HEALTH_PORT'], timeout=4)"]
ENTRYPOINT ["skao-staging"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
