# syntax=docker/dockerfile:1
# The virtstack operator image: Python 3.11 on Debian 12 slim, non-root (65532), nothing written
# to the image at run time (runs under readOnlyRootFilesystem; /tmp is an emptyDir in the chart).
#
# Base: the tag pins the Python minor (3.11) and the Debian release (bookworm); patch releases
# and security fixes arrive with rebuilds. Debian 12 matters: cryptography 50's wheel needs
# glibc >= 2.34 (manylinux_2_34; bookworm has 2.36). For reproducible releases pin the digest too:
#   docker buildx imagetools inspect python:3.11-slim-bookworm   -> PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
#
#   docker build -t ghcr.io/virtstack/virtstack:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the virtstack wheel and every dependency wheel (pinned in pyproject.toml) -------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --wheel-dir /wheels .

# --- run: a virtualenv of wheels only, no compiler, no build context -------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/virtstack/bin:$PATH \
    VIRTSTACK_CONFIG=/etc/virtstack/config.yaml
# pip compiles the .pyc files here, at build time, so nothing is written at run time.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/virtstack \
    && /opt/virtstack/bin/pip install --no-index --find-links=/wheels virtstack \
    && /opt/virtstack/bin/pip uninstall --yes pip \
    && virtstack --help >/dev/null
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
ENTRYPOINT ["virtstack"]
CMD ["run", "--liveness=http://0.0.0.0:8080/healthz"]
