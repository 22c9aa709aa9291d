# syntax=docker/dockerfile:1
# The restate-op operator image: `python -m restate_op run` as user 1000:3000, on a read-only
# root filesystem (the chart's securityContext), serving HTTP on 8080.
#
#   docker build -t ghcr.io/restate-op/restate-op:0.1.0 .   (or podman build)
#
# Layout: dependencies in a venv (/opt/venv); the operator's source in /app, on PYTHONPATH,
# because restate_op/machine.py loads the state machine from ../states/restatecluster.yaml.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first (from pyproject.toml's [project] dependencies) so code changes reuse
# this layer. Only wheels: the final stage has no compiler, and neither needs one.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && /opt/venv/bin/pip install --only-binary=:all: --requirement requirements.txt \
    && /opt/venv/bin/pip uninstall --yes pip setuptools
COPY restate_op/ /app/restate_op/
COPY states/ /app/states/
# Byte-compile once here: at run time the filesystem is read-only. unchecked-hash keeps the
# .pyc files valid whatever the copied files' timestamps.
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app/restate_op

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 3000 restate \
    && useradd --uid 1000 --gid 3000 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin restate
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /app
USER 1000:3000
EXPOSE 8080
ENTRYPOINT ["python", "-m", "restate_op", "run"]
