# FastInsight API / scheduler image. Build: docker build -t fastinsight .
# No keys are baked in: run it with FASTINSIGHT_API_KEY and FASTINSIGHT_ADMIN_KEY in the
# environment (compose.yml requires them); without them `fastinsight serve` refuses to start.
# Same install as scripts/bootstrap.sh (pip install of this project), without dev extras.

# The dashboard's chart library, from the npm registry (same step as scripts/bootstrap.sh).
FROM node:20-slim AS dashboard-vendor
WORKDIR /dash
COPY src/fastinsight/dashboard/package.json ./
RUN npm install --no-audit --no-fund --loglevel=error

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# hnswlib ships only a source distribution: it needs a C++ compiler to build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY --from=dashboard-vendor /dash/node_modules ./src/fastinsight/dashboard/node_modules
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FASTINSIGHT_HOST=0.0.0.0 \
    FASTINSIGHT_PORT=8000 \
    FASTINSIGHT_VAR_DIR=/app/var \
    FASTINSIGHT_LOG_DIR=/app/var/log \
    FASTINSIGHT_SCRIPTS_DIR=/app/scripts \
    FASTINSIGHT_MONITOR_URL=http://127.0.0.1:8000 \
    KERAS_BACKEND=jax
RUN groupadd --system --gid 10001 fastinsight \
 && useradd --system --uid 10001 --gid fastinsight --home-dir /app --shell /usr/sbin/nologin fastinsight
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=fastinsight:fastinsight scripts ./scripts
RUN mkdir -p /app/var/log /app/var/backups \
 && chown -R fastinsight:fastinsight /app/var
USER 10001:10001
VOLUME ["/app/var"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status == 200 else 1)"]
CMD ["fastinsight", "serve"]
