"""Run the Dockerfile's install and start commands outside a container, and check /health.

Where no container engine runs (CI), this keeps the image's steps honest: it copies what the
Dockerfile copies into a scratch directory, runs the Dockerfile's own `RUN` lines (its virtual
environment moved under the scratch directory), starts its `CMD` on a free port of 127.0.0.1
against a scratch PostgreSQL database, waits for its `HEALTHCHECK` command to pass, reads
/metrics with a token, and stops it with SIGTERM as a container engine would.

    python3 scripts/check_image_steps.py [postgresql://postgres@127.0.0.1:5432/postgres]
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_IN_IMAGE = "/opt/task-api"
HEALTHY_WITHIN = 90.0
STOPPED_WITHIN = 30.0
METRICS_TOKEN = "image-check-metrics-token"
HEALTH_REQUESTS = 20


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of each line, continuation lines joined."""
    joined = dockerfile.replace("\\\n", " ")
    steps = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            steps.append((word.upper(), rest.strip()))
    return steps


def build_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The steps of the first stage (up to the second FROM)."""
    froms = [index for index, (word, _) in enumerate(steps) if word == "FROM"]
    return steps[froms[0] + 1 : froms[1]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_build(steps: list[tuple[str, str]], source: Path, venv: Path) -> None:
    for word, arguments in build_stage(steps):
        if word == "COPY":
            *sources, _target = shlex.split(arguments)
            for name in sources:
                origin = ROOT / name
                destination = source / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    skip = shutil.ignore_patterns("__pycache__")
                    shutil.copytree(origin, destination, ignore=skip)
                else:
                    shutil.copy2(origin, destination)
        elif word == "RUN":
            command = arguments.replace(VENV_IN_IMAGE, str(venv))
            print(f"$ {command}", flush=True)
            subprocess.run(command, shell=True, cwd=source, check=True)


def exec_array(arguments: str) -> list[str]:
    command = json.loads(arguments.removeprefix("CMD").strip())
    assert isinstance(command, list), "CMD and HEALTHCHECK must be exec arrays"
    return [str(part) for part in command]


def healthy(command: list[str], environment: dict[str, str]) -> bool:
    """Whether the HEALTHCHECK command passes (its complaints while the server starts hidden)."""
    return subprocess.run(command, env=environment, capture_output=True).returncode == 0


def health_checks_counted(port: int) -> float:
    """The successful /health requests that /metrics counts over every worker."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
    )
    metrics = urllib.request.urlopen(request, timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("task_api_requests_total{")
        and 'route="/health"' in line
        and 'status="200"' in line
    )


def main() -> int:
    admin_url = (
        sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    steps = instructions((ROOT / "Dockerfile").read_text())
    (start,) = [arguments for word, arguments in steps if word == "CMD"]
    (health,) = [arguments for word, arguments in steps if word == "HEALTHCHECK"]
    health = health[health.index("CMD") :]
    database = f"task_api_image_check_{uuid.uuid4().hex[:8]}"
    base = admin_url.rsplit("/", 1)[0]
    with tempfile.TemporaryDirectory() as scratch:
        source, venv, workdir = Path(scratch, "src"), Path(scratch, "venv"), Path(scratch, "srv")
        source.mkdir()
        workdir.mkdir()
        run_build(steps, source, venv)
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {database}"], check=True)
        port = free_port()
        environment = {
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "UVICORN_HOST": "127.0.0.1",
            "UVICORN_PORT": str(port),
            "DATABASE_URL": f"{base}/{database}",
            "TASK_API_METRICS_TOKEN": METRICS_TOKEN,
            "TASK_API_LOG_FORMAT": "json",
        }
        command = exec_array(start)
        print(f"$ {shlex.join(command)}  (port {port})", flush=True)
        server = subprocess.Popen(command, cwd=workdir, env=environment)
        try:
            deadline = time.monotonic() + HEALTHY_WITHIN
            while not healthy(exec_array(health), environment):
                if server.poll() is not None or time.monotonic() > deadline:
                    print("the image's start command never became healthy", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            # Each on a new connection, so the workers share them; a scrape of any one worker
            # must count them all (one more: the health check that passed).
            for _ in range(HEALTH_REQUESTS):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read()
            # The worker that answers the scrape counts its own requests at once; the others
            # publish theirs once a second.
            counted = 0.0
            deadline = time.monotonic() + 5
            while counted != HEALTH_REQUESTS + 1 and time.monotonic() < deadline:
                counted = health_checks_counted(port)
                if counted != HEALTH_REQUESTS + 1:
                    time.sleep(0.5)
            if counted != HEALTH_REQUESTS + 1:
                print(
                    f"/metrics counted {counted:g} health checks of {HEALTH_REQUESTS + 1}",
                    file=sys.stderr,
                )
                return 1
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=STOPPED_WITHIN)
            print(
                f"healthy, {counted:g} requests counted over the workers, stopped on SIGTERM",
                flush=True,
            )
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {database}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
