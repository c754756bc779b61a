"""The shape of the code: layers that import only downwards, no import circles, and modules and
functions small enough to read (team guide: modules up to ~450 lines, functions up to 60).

Every module of ``src/qa_bot`` must be placed in :data:`LAYERS`, so a new module is a decision
about where it sits. Imports are read from the source (``ast``), including those inside
functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. A module may import its own layer or a lower one, never a higher one.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "plain types",
        {"errors", "models", "settings", "files", "text", "decoding", "commands", "runtime"},
    ),
    ("question parts", {"filters"}),
    (
        "articles and vectors",
        {
            "seed_files",
            "html_article",
            "sidecar",
            "skip_state",
            "corpus",
            "chunking",
            "answer_types",
            "article_asked",
            "speakers",
            "lexicon",
            "lexical",
            "term_stats",
            "embedding",
            "onnx_embedding",
            "onnx_export",
            "vector_index",
        },
    ),
    (
        "stores",
        {
            "stores",
            "store",
            "store_api",
            "store_build",
            "store_snapshot",
            "store_search",
            "store_milvus",
            "milvus_build",
            "milvus_view",
            "milvus_rows",
            "milvus_client",
            "feedback",
        },
    ),
    ("indexing", {"indexer", "watching", "feeds"}),
    (
        "ranking and answers",
        {
            "query",
            "features",
            "ranker",
            "trees",
            "reader",
            "reader_spans",
            "reader_export",
            "read_stage",
            "decision",
            "retrieval",
            "query_adapter",
            "reading_notes",
            "quote_choice",
            "answer",
            "article_answer",
            "passages",
        },
    ),
    ("the door", {"service", "news"}),
    ("above the door", {"evaluation", "dialogue.*"}),
    ("fronts", {"cli.*", "telegram.*", "__main__", ""}),
]

#: Modules and functions allowed over the size limits: none today.
KNOWN_LONG_MODULES: set[str] = set()
KNOWN_LONG_FUNCTIONS: set[str] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "qa_bot").rglob("*.py")):
        parts = path.relative_to(SRC / "qa_bot").with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    for rank, (_, members) in enumerate(LAYERS):
        package = module.split(".")[0] + ".*"
        if (
            module in members
            or (package in members and "." in module)
            or (module + ".*" in members)
        ):
            return rank
    raise AssertionError(f"qa_bot.{module} is in no layer of tests/test_layout.py")


def _imports(path: Path) -> set[str]:
    """The qa_bot modules ``path`` imports (by module, not by name)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.startswith("qa_bot."):
                module = name.removeprefix("qa_bot.")
                if module in MODULES:
                    found.add(module)
    return found


GRAPH = {module: _imports(path) - {module} for module, path in MODULES.items()}


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module: str) -> None:
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {other} ({LAYERS[_layer(other)][0]})"
        for other in sorted(GRAPH[module])
        if _layer(other) > _layer(module) and not other.startswith(module + ".")
    ]
    assert not upward


def _circles() -> set[frozenset[str]]:
    """The modules of each import circle (strongly connected component of more than one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: set[frozenset[str]] = set()

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in GRAPH[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.add(frozenset(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    return circles


def test_no_import_circles() -> None:
    assert not [sorted(c) for c in _circles()]


def test_the_fronts_talk_to_the_core_through_the_service() -> None:
    """The fronts import the service, plain types and the front-neutral helpers (filters,
    commands, dialogue), never retrieval, answers, indexing or stores."""
    allowed = {"service", "evaluation", "filters", "commands", "models", "errors", "settings"}
    allowed |= {"files", "text", "indexer"}  # indexer: the report type the CLI prints
    allowed |= {"news"}  # the seeds folder's upkeep (watch, feeds), a door beside the service
    allowed |= {"runtime"}  # the process settings an entry point makes
    for module, imported in GRAPH.items():
        if module.startswith(("cli", "telegram")):
            inner = {m for m in imported if not m.startswith(("cli", "telegram", "dialogue"))}
            assert inner <= allowed, (module, sorted(inner - allowed))


def test_modules_and_functions_are_small() -> None:
    long_modules = set()
    long_functions = set()
    for module, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > 450:
            long_modules.add(module)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > 60:
                    long_functions.add(f"{module}.{node.name}")
    assert long_modules <= KNOWN_LONG_MODULES, sorted(long_modules - KNOWN_LONG_MODULES)
    assert long_functions <= KNOWN_LONG_FUNCTIONS, sorted(long_functions - KNOWN_LONG_FUNCTIONS)
