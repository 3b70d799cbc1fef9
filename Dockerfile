# syntax=docker/dockerfile:1
#
# One image for all four copyloop services; the command picks the service:
#   python -m copyloop.profile.main | copyloop.generation.main | copyloop.prediction.main
#   | copyloop.fusion.main
# Build (BuildKit; needs the network for the package indexes):
#   docker build -t copyloop:dev .                        # the services (default target)
#   docker build --target triton -t copyloop-triton:dev . # Triton + torch/transformers + model repo
#
# Stages: `build` installs the pinned stack into /opt/venv and generates the gRPC stubs;
# `runtime` copies only the venv and the source, runs as a non-root user and is meant to run
# with a read-only root filesystem (writable: /tmp and the data volume). `triton` is the
# official Triton image plus what the copywriter Python-backend model imports.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
# requirements.lock pins torch==2.13.0+cpu: the +cpu build lives on the PyTorch CPU index, not
# PyPI (a plain `torch` would pull several GB of CUDA the services never use).
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --upgrade pip wheel setuptools \
    && /opt/venv/bin/pip install --extra-index-url "${TORCH_CPU_INDEX}" -r requirements.lock
COPY pyproject.toml Makefile README.md buf.yaml ./
COPY protos ./protos
COPY services ./services
# `make protos` exactly as on a dev machine, pointed at this venv. The marker tells make the
# venv is already installed, so it only runs grpc_tools.protoc + mypy-protobuf.
RUN touch /opt/venv/.installed \
    && make protos VENV=/opt/venv \
    && /opt/venv/bin/pip install --no-deps -e . \
    && /opt/venv/bin/python -m compileall -q /app/services \
    && /opt/venv/bin/python -c "import copyloop.v1.profile_pb2_grpc, copyloop.profile.main"

# ---------------------------------------------------------------------------------------------
# Triton with the copywriter model repository baked in (weights are NOT: they come from a
# volume at COPYWRITER_MODEL_DIR). The official image has no torch or transformers for the
# Python backend, so they are installed here, at build time, never in an entrypoint.
FROM ${TRITON_IMAGE} AS triton
# Empty = PyPI's default torch build (CUDA); set to a PyTorch CUDA index (e.g. .../whl/cu126)
# to match an older node driver.
ARG TORCH_INDEX_URL=
RUN pip install --no-cache-dir ${TORCH_INDEX_URL:+--index-url ${TORCH_INDEX_URL}} torch==2.13.0 \
    && pip install --no-cache-dir transformers==5.23.0 safetensors==0.8.0
COPY deploy/triton/models /models
ENV COPYWRITER_MODEL_DIR=/weights/copywriter HF_HUB_OFFLINE=1 HF_HOME=/tmp/hf
USER triton-server
CMD ["tritonserver", "--model-repository=/models", "--exit-timeout-secs=30"]

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
RUN groupadd --system --gid ${APP_UID} copyloop \
    && useradd --system --uid ${APP_UID} --gid copyloop --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin copyloop \
    && mkdir -p /var/lib/copyloop \
    && chown copyloop:copyloop /var/lib/copyloop
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
# Read-only root filesystem: no .pyc writes, caches under /tmp (a tmpfs / emptyDir), and no
# library may reach a model hub at run time.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    HF_HOME=/tmp/hf \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    COPYLOOP_LOG_LEVEL=INFO
# /var/lib/copyloop (owned by the app user) is the one data path: mount a volume there for
# SQLite files or model versions. No VOLUME line: it would leave an anonymous volume behind for
# every container, including the services that keep nothing on disk.
USER ${APP_UID}:${APP_UID}
EXPOSE 50051 50052 50053 50054 9101 9102 9103 9104
# No HEALTHCHECK: compose and Kubernetes probe grpc.health.v1 directly.
CMD ["python", "-m", "copyloop.profile.main"]
