"""The packages depend one way: digitsite and trainer on recognizer, never back.

Read from the source (every import statement, those inside functions too),
so a late import cannot hide a dependency.
"""

import ast

from tests.support import BASE_DIR

PACKAGES = ("digitsite", "recognizer", "trainer")
# Who may import whom; recognizer, the model and its pages, imports neither.
ALLOWED = {"digitsite": {"recognizer"}, "recognizer": set(), "trainer": {"recognizer"}}


def imported_packages(path):
    """The top-level packages of this project that the module at `path` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        found.update(name.split(".")[0] for name in names)
    return found & set(PACKAGES)


def test_packages_import_only_the_ones_below_them():
    wrong = []
    for package in PACKAGES:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            for other in imported_packages(path) - {package} - ALLOWED[package]:
                wrong.append(f"{path.relative_to(BASE_DIR)} imports {other}")
    assert wrong == []
