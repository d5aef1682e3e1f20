"""The import graph between the project's parts (docs/architecture.md):
no cycles, and no import the wrong way.

The parts: the project package `digitsite` (settings, URLs, ASGI, the HTTP
and WebSocket guards), the game app `digitsite.game`, the recognizer app
`recognizer` with its sub-packages `recognizer.collection` (collected drawings)
and `recognizer.teaching` (the /learn/ pages), `trainer`, and its sub-package
`trainer.teach` (the teach page, which the site serves). Every import
counts, including the ones inside functions that break a cycle only at run
time: those hide a cycle, they do not remove it.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("digitsite", "recognizer", "trainer")
# Sub-packages that are parts of their own, longest first so they match first.
PARTS = ("digitsite.game", "recognizer.collection", "recognizer.teaching", "trainer.teach",
         "digitsite", "recognizer", "trainer")
# What may never be imported by what: the recognizer serves the game and the
# teaching pages and is trained by the trainer, so it knows none of them.
# The teach page (trainer.teach) builds on the trainer, the recognizer, the
# collection, the lessons' navigation and the game's classes; only the
# project's URLs import it.
FORBIDDEN = {
    "recognizer": {"trainer", "trainer.teach", "digitsite", "digitsite.game",
                   "recognizer.teaching"},
    "recognizer.collection": {"trainer", "trainer.teach", "digitsite", "digitsite.game",
                              "recognizer.teaching"},
    "recognizer.teaching": {"trainer", "trainer.teach", "digitsite", "digitsite.game"},
    "trainer": {"trainer.teach", "digitsite.game", "recognizer.teaching"},
    "trainer.teach": {"digitsite"},
    "digitsite.game": {"trainer", "trainer.teach", "recognizer.teaching"},
}
# The one module of the project that may import the teach page: its URLs.
TEACH_IMPORTERS = {"digitsite.urls"}


def part_of(module):
    for part in PARTS:
        if module == part or module.startswith(part + "."):
            return part
    return None


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path, module):
    """Every module `path` (the source of `module`) imports, anywhere in it."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            yield prefix
            for alias in node.names:  # `from recognizer import teaching` imports a part
                yield f"{prefix}.{alias.name}"


def import_graph():
    """{part: {part it imports: [(module, imported module), ...]}}"""
    graph = {part: {} for part in PARTS}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # migrations are history, frozen at the time they were written
            source = module_name(path)
            here = part_of(source)
            for target in imported_modules(path, source):
                there = part_of(target)
                if there and there != here:
                    graph[here].setdefault(there, []).append((source, target))
    return graph


def find_cycle(graph):
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                return trail + [node, nxt]
            if nxt not in state:
                found = visit(nxt, trail + [node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in graph:
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_the_parts_import_each_other_without_a_cycle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + "\n" + "\n".join(
        f"  {a} -> {b}: {graph[a][b][:3]}" for a, b in zip(cycle, cycle[1:], strict=False))


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_part_imports_what_it_must_not_know(part):
    graph = import_graph()
    wrong = {there: graph[part][there] for there in FORBIDDEN[part] if there in graph[part]}
    assert not wrong, f"{part} imports {wrong}"


def test_only_the_urls_import_the_teach_page():
    importers = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = module_name(path)
            if "migrations" in path.parts or part_of(source) == "trainer.teach":
                continue
            if any(part_of(target) == "trainer.teach"
                   for target in imported_modules(path, source)):
                importers.add(source)
    assert importers <= TEACH_IMPORTERS, importers


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    # The check is only as good as its parser: an import hidden in a function
    # body, a relative import and `from package import part` all count.
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from trainer import mnist\n"
                      "from . import teaching\n"
                      "from ..digitsite.game import rooms\n")
    found = set(imported_modules(source, "recognizer.probe"))
    assert {"trainer", "trainer.mnist", "recognizer.teaching"} <= found
    assert part_of("recognizer.teaching.views") == "recognizer.teaching"
    assert part_of("recognizer.network") == "recognizer"
    assert part_of("trainer.teach.views") == "trainer.teach"
    assert part_of("trainer.head_only") == "trainer"
    assert find_cycle({"a": {"b": []}, "b": {"a": []}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b": []}, "b": {}}) is None


def _torch_modules_after(steps):
    """Run Django's set-up and then `steps` (Python source) in a fresh
    interpreter (this test process has torch already): (its output, the
    torch modules it imported)."""
    code = ("import os, sys, django\n"
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'digitsite.settings')\n"
            "django.setup()\n" + steps +
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *output, torch_modules = done.stdout.strip().splitlines()
    return "\n".join(output), torch_modules


def test_django_starts_without_importing_torch():
    # Every manage.py command pays for what django.setup() imports. With torch
    # (the admin imported it through the model files' error class) a `shell`
    # took 3.8 s of CPU to start, against 1.6 s without
    # (bench/bench_django_start.py).
    _, torch_modules = _torch_modules_after("")
    assert torch_modules == "[]", (
        "django.setup() imports torch; import it where a model is used:\n" + torch_modules[:500])


def test_the_url_checks_of_migrate_and_check_do_not_import_torch():
    # `migrate` and `check` run the system checks, which import every view
    # through the URLs: the health check, the API, the teaching and teach
    # pages. Those import torch where a model is used, not at the top, so
    # these commands start in about the time of a `shell`
    # (bench/bench_django_start.py) instead of paying 2 s for torch.
    output, torch_modules = _torch_modules_after(
        "from django.core.management import call_command\n"
        "call_command('check')\n"
        "views = ('digitsite.health', 'recognizer.views', 'recognizer.teaching.views',\n"
        "         'trainer.teach.views')\n"
        "assert all(name in sys.modules for name in views), views\n")
    assert "System check identified no issues" in output
    assert torch_modules == "[]", (
        "the URL checks import torch; import it where a model is used:\n" + torch_modules[:500])
