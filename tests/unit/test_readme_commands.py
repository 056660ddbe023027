"""The README's command table says what the engine's command declarations say: no command missing, none extra."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_usages() -> set[str]:
    """Every `/command args` written in the first column of the "Talking to the bot" table."""
    section = README.read_text(encoding="utf-8").split("## Talking to the bot", 1)[1].split("\n## ", 1)[0]
    usages = set()
    for line in section.splitlines():
        if line.startswith("| `/"):
            first_cell = re.split(r"(?<!\\)\|", line)[1]
            usages |= {usage.replace("\\|", "|") for usage in re.findall(r"`(/[^`]+)`", first_cell)}
    return usages


def test_the_readme_table_lists_exactly_the_public_commands_with_their_arguments(engine):
    declared = {info.usage for info in engine.commands}
    written = readme_usages()
    assert written - declared == set(), "in the README but not declared (or with other arguments)"
    assert declared - written == set(), "declared but missing from the README"
