"""pyproject.toml's version floors leave out releases with known vulnerabilities, and the container installs the
versions the tests passed with (constraints.txt), as scripts/setup.sh does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement(name: str) -> Requirement:
    listed = PROJECT["project"]["dependencies"] + PROJECT["build-system"]["requires"]
    for extra in PROJECT["project"]["optional-dependencies"].values():
        listed += extra
    return next(Requirement(spec) for spec in listed if Requirement(spec).name == name)


@pytest.mark.parametrize(
    "name, vulnerable, fixed",
    [
        ("torch", "2.5.1", "2.6.0"),  # torch.load(weights_only=True) runs code from crafted files
        ("aiohttp", "3.12.13", "3.12.14"),  # request smuggling
        ("transformers", "4.52.4", "4.53.0"),  # ReDoS and deserialisation
        ("tqdm", "4.66.2", "4.66.3"),  # code execution through CLI arguments
        ("setuptools", "78.1.0", "78.1.1"),  # path traversal
    ],
)
def test_known_vulnerable_releases_are_excluded(name, vulnerable, fixed):
    specifier = requirement(name).specifier
    assert vulnerable not in specifier and fixed in specifier


def test_the_image_installs_with_the_constraints_file():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^COPY .*constraints\.txt", dockerfile, re.MULTILINE)
    assert re.search(r'pip install --constraint constraints\.txt "\.\[', dockerfile)
    assert (ROOT / "constraints.txt").is_file()
