# Franchise Hub. Configure at run time: HUB_DATABASE_URL (PostgreSQL), HUB_REDIS_URL (Redis) and
# HUB_SECRET_KEY; see README.md. `hub serve` applies migrations before serving.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY hub ./hub
RUN pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --create-home --home-dir /home/hub --shell /usr/sbin/nologin hub \
    && install -d -o hub -g hub /app
COPY --from=builder /opt/venv /opt/venv
# /app belongs to hub, so that without any configuration the embedded defaults (hub.sqlite3 and
# .hub-secret in the working directory) still work for a quick try; production sets the variables.
WORKDIR /app
USER hub
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["hub", "serve", "--host", "0.0.0.0", "--port", "8000"]
