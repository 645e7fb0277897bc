# The service in a container: `docker compose up` (compose.yaml) brings it up with PostgreSQL.
# Two stages: the first installs into a virtual environment (every dependency comes as a wheel,
# pinned by requirements/app.txt); the second holds only that environment and the Python
# runtime, with no pip cache, no source tree and no compiler, and runs as a user without rights.
# `scripts/check_image_steps.py` runs the same install and start commands in CI.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python3 -m venv /opt/task-api
# The pinned dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements/app.txt requirements/app.txt
RUN /opt/task-api/bin/pip install -r requirements/app.txt
COPY pyproject.toml README.md LICENSE ./
COPY api api
COPY graphql_schema graphql_schema
RUN /opt/task-api/bin/pip install --no-deps . \
 && /opt/task-api/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin task-api
COPY --from=build /opt/task-api /opt/task-api
# alembic.ini: a release step may run `alembic upgrade head` in this directory.
COPY alembic.ini /srv/task-api/alembic.ini
WORKDIR /srv/task-api
ENV PATH=/opt/task-api/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UVICORN_HOST=0.0.0.0 \
    UVICORN_PORT=8000
USER task-api
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('UVICORN_PORT', '8000')}/health\", timeout=4).status != 200)"]
# The README's production command (its Deployment section explains each option), after
# `python -m api.startup`: it checks the settings and the database and migrates (under an
# advisory lock, as each worker's start-up does too), and a bad setting ends the container with
# one line and exit code 3, which uvicorn's supervisor would turn into 0.
CMD ["sh", "-c", "python -m api.startup && exec python -m api.serve --workers 2 --loop uvloop --http httptools --ws websockets-sansio --ws-per-message-deflate false --no-access-log --timeout-graceful-shutdown 20 --proxy-headers --forwarded-allow-ips '*'"]
