"""The container files, checked without a Docker engine: the Dockerfile lints clean (hadolint), the compose file
matches the compose specification (check-jsonschema's copy of its schema; `docker compose config` too where that
client is installed), and the build context holds everything the Dockerfile copies and nothing private.
Each tool-based check skips cleanly when its tool is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
COMPOSE_DISTRIBUTED = ROOT / "docker" / "compose.distributed.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def arguments(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def build_context() -> set[str]:
    """The paths `docker build` would send, by .dockerignore's rules (docker-py implements them)."""
    build = pytest.importorskip("docker.utils.build")
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line.strip() and not line.startswith("#")]
    return set(build.exclude_paths(str(ROOT), patterns))


def run_tool(*command: str) -> subprocess.CompletedProcess:
    # The test extra installs the linters beside this Python, which need not be on PATH (.venv/bin/python -m pytest).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    program = shutil.which(command[0], path=path)
    if program is None:
        pytest.skip(f"{command[0]} is not installed")
    return subprocess.run([program, *command[1:]], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_dockerfile_lints_clean():
    done = run_tool("hadolint", "--no-color", str(DOCKERFILE))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("compose", [COMPOSE, COMPOSE_DISTRIBUTED], ids=lambda path: path.name)
def test_compose_file_matches_the_compose_specification(compose):
    done = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(compose))
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_config_accepts_every_profile():
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"],
                                                        capture_output=True).returncode != 0:
        pytest.skip("the docker compose client is not installed")
    done = run_tool("docker", "compose", "-f", str(COMPOSE), "--profile", "postgres", "config", "--quiet")
    assert done.returncode == 0, done.stderr


def test_everything_the_dockerfile_copies_is_in_the_build_context():
    context = build_context()
    copies = arguments("COPY")
    assert copies
    for args in copies:
        assert not args.startswith("--from"), "no multi-stage copies expected"
        *sources, _target = args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source in context or any(path.startswith(f"{source}/") for path in context), source
    # The package's own files come along, the bundled sample photo included.
    assert {"core/conversation/engine.py", "storage/migrations/env.py", "bot/samples/sample.jpg"} <= context


def test_the_build_context_keeps_data_virtualenvs_and_secrets_out():
    context = build_context()
    private = (".venv", "data", ".env", ".git", "tests", "out")
    leaked = sorted(path for path in context if path.split("/", 1)[0] in private or "__pycache__" in path)
    assert leaked == []


def test_the_image_runs_as_a_user_with_volumes_and_a_healthcheck():
    [user] = arguments("USER")
    assert user.split(":")[0] not in {"root", "0"}
    [volumes] = arguments("VOLUME")
    environment = " ".join(arguments("ENV"))
    assert "HF_HOME=/cache/huggingface" in environment and "EDITBOT_DATA_DIR=/data" in environment
    assert "/data" in volumes and "/cache/huggingface" in volumes
    [healthcheck] = arguments("HEALTHCHECK")
    assert "/healthz" in healthcheck and "EDITBOT_HTTP_PORT" in healthcheck
    assert "EDITBOT_HTTP_HOST=0.0.0.0" in environment  # reachable from outside the container
    assert arguments("FROM")[0].startswith("${CUDA_IMAGE}")
    assert any(args.startswith("CUDA_IMAGE=nvidia/cuda:") and "runtime" in args for args in arguments("ARG"))


def test_compose_runs_the_bots_in_one_service_with_the_gpu_reserved():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    bot = services["bot"]
    assert "profiles" not in bot and bot["command"] == ["bots"]  # one process: every platform whose token is set
    [device] = bot["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert {"data:/data", "model-cache:/cache/huggingface"} <= set(bot["volumes"])
    assert services["postgres"]["profiles"] == ["postgres"]


def test_the_image_installs_the_extras_named_by_a_build_argument():
    """EXTRAS picks pyproject.toml's extras; by default the ones the compose files need, the distributed mode's
    included."""
    [default] = [args.split("=", 1)[1] for args in arguments("ARG") if args.startswith("EXTRAS=")]
    extras = default.split(",")
    known = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(known)
    assert {"telegram", "discord", "postgres", "distributed"} <= set(extras)
    project_installs = [args for args in arguments("RUN") if re.search(r'pip install .*"\.\[', args)]
    assert project_installs == ['pip install --constraint constraints.txt ".[${EXTRAS}]"']


def test_distributed_compose_builds_this_image_for_workers_and_front_ends():
    services = yaml.safe_load(COMPOSE_DISTRIBUTED.read_text())["services"]
    for name in ("worker", "telegram", "discord"):
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
        assert services[name]["environment"]["EDITBOT_MODE"] == "distributed"


def test_the_installed_package_carries_the_web_page(tmp_path):
    """The image installs the project as a wheel (`pip install .`, not editable): files that are not Python reach it
    only through package-data. Without the page's assets, the web chat in the container has no page to serve."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    for name in ("core", "storage", "bot"):  # what the Dockerfile copies
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                           "--quiet", "-w", str(tmp_path / "wheel")], cwd=source, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    page = {path.relative_to(ROOT).as_posix() for path in (ROOT / "bot" / "web" / "assets").iterdir()}
    assert "bot/web/assets/index.html" in page
    assert page - packaged == set()
    assert {"storage/migrations/env.py", "bot/samples/sample.jpg"} <= packaged
