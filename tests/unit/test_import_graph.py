"""No import cycle among core/, storage/ and bot/ (module level; lazy and TYPE_CHECKING imports cannot make one)."""

from __future__ import annotations

from pathlib import Path

from tests.support.import_graph import cycles, import_graph


def test_core_storage_and_bot_import_one_another_without_a_cycle():
    graph = import_graph()
    assert {"core.conversation.engine", "core.ports", "storage.repository", "bot.distributed.frontend"} <= set(graph)
    assert "core.domain" in graph["core.ports"]  # the graph sees our imports at all
    assert cycles(graph) == []


def test_core_imports_neither_storage_nor_bot():
    graph = import_graph()
    assert [(module, sorted(imported)) for module, imported in graph.items() if module.startswith("core")
            and any(not name.startswith("core") for name in imported)] == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_is_found_however_the_modules_import_each_other(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "try:\n    from . import c\nexcept ImportError:\n    c = None\nthing = 1\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/d.py": "import pkg.a\n",
    })
    assert cycles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_lazy_and_type_checking_imports_make_no_cycle(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n"
                    "def later():\n    from pkg import a\n",
    })
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg", "pkg.b"} and graph["pkg.b"] == set()
    assert cycles(graph) == []
