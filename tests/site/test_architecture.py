"""The apps depend one way, accounts <- movies <- recommender, and no import hides a circle.

Every .py file of accounts/, movies/ and recommender/ is read with `ast` (nothing is imported):
- accounts imports neither movies nor recommender, and movies does not import recommender, at module level or
  inside a function;
- the modules' top-level imports form no circle;
- an import inside a function (a lazy import, the usual way to dodge a circle) is allowed only in migrations, in an
  AppConfig.ready(), for the heavy libraries that web processes must never load (TensorFlow and Keras through
  recommender.ml.vae, matplotlib), or where LAZY_ALLOWED says why;
- outside recommender/ml, those heavy libraries are never imported at module level.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

APPS = ("accounts", "movies", "recommender")
# What each app may import from the others.
MAY_IMPORT = {"accounts": set(), "movies": {"accounts"}, "recommender": {"accounts", "movies"}}
# Loaded only when used: TensorFlow and Keras (recommender.ml.vae, and recommender.ml.tuning, which imports it) and
# matplotlib must never load in web processes, which only serve the model with NumPy.
HEAVY = ("tensorflow", "keras", "matplotlib", "recommender.ml.vae", "recommender.ml.tuning")
# Other lazy imports: (file or folder, imported module or its prefix) -> why. Keep it short; a stale entry fails.
LAZY_ALLOWED = {
    (
        "recommender/management/commands/evaluate_model.py",
        "recommender.ml.",
    ): "the command loads the ML code only when it runs, so `manage.py help` stays quick",
}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the project, with "/"
    line: int
    module: str  # the module the statement imports (absolute)
    function: str | None  # the enclosing function's qualified name; None at module level
    type_checking: bool  # under `if TYPE_CHECKING:` (never executed)

    def where(self) -> str:
        return f"{self.path}:{self.line} ({self.function or 'module level'}) imports {self.module}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_files() -> list[Path]:
    return sorted(p for app in APPS for p in (PROJECT_ROOT / app).rglob("*.py"))


MODULES = {module_name(path) for path in app_files()}


def resolve(node: ast.ImportFrom | ast.Import, path: Path) -> list[str]:
    """The absolute modules an import statement loads (a `from package import submodule` loads the submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    others = [alias.name for alias in node.names if f"{base}.{alias.name}" not in MODULES]
    return submodules + ([base] if others or not submodules else [])


class _Collector(ast.NodeVisitor):
    def __init__(self, path: Path) -> None:
        self.path, self.scope, self.functions, self.type_checking = path, [], 0, 0
        self.found: list[Import] = []

    def _scoped(self, node, is_function: bool) -> None:
        self.scope.append(node.name)
        self.functions += is_function
        self.generic_visit(node)
        self.functions -= is_function
        self.scope.pop()

    def visit_FunctionDef(self, node) -> None:
        self._scoped(node, True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node) -> None:
        self._scoped(node, False)

    def visit_If(self, node: ast.If) -> None:
        guarded = "TYPE_CHECKING" in ast.unparse(node.test)
        self.type_checking += guarded
        for child in node.body:
            self.visit(child)
        self.type_checking -= guarded
        for child in node.orelse:
            self.visit(child)

    def _record(self, node) -> None:
        relative = self.path.relative_to(PROJECT_ROOT).as_posix()
        for module in resolve(node, self.path):
            self.found.append(
                Import(
                    relative,
                    node.lineno,
                    module,
                    ".".join(self.scope) if self.functions else None,
                    bool(self.type_checking),
                )
            )

    visit_Import = visit_ImportFrom = _record


def all_imports() -> list[Import]:
    found = []
    for path in app_files():
        collector = _Collector(path)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += collector.found
    return found


IMPORTS = all_imports()


def app_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in APPS else None


def is_heavy(module: str) -> bool:
    return any(module == heavy or module.startswith(heavy + ".") for heavy in HEAVY)


def lazy_allowance(item: Import) -> tuple[str, str] | None:
    for where, module in LAZY_ALLOWED:
        if (item.path == where or (where.endswith("/") and item.path.startswith(where))) and (
            item.module == module or (module.endswith(".") and item.module.startswith(module))
        ):
            return where, module
    return None


def lazy_import_is_allowed(item: Import) -> bool:
    return (
        "/migrations/" in item.path
        or (item.path.endswith("/apps.py") and item.function is not None and item.function.endswith(".ready"))
        or is_heavy(item.module)
        or lazy_allowance(item) is not None
    )


def test_the_files_are_found():
    assert {"accounts.services", "movies.views", "movies.pages", "recommender.views", "recommender.services"} <= MODULES
    assert any(item.module == "recommender.ml.vae" and item.function for item in IMPORTS)  # the lazy VAE import


@pytest.mark.parametrize("app", APPS)
def test_apps_depend_one_way(app):
    wrong = [
        item.where()
        for item in IMPORTS
        if app_of(item.path.replace("/", ".")) == app and app_of(item.module) not in (None, app, *MAY_IMPORT[app])
    ]
    assert not wrong, f"{app} may import only {sorted(MAY_IMPORT[app]) or 'none of the other apps'}:\n" + "\n".join(
        wrong
    )


def test_no_lazy_import_outside_the_allow_list():
    wrong = [item.where() for item in IMPORTS if item.function and not lazy_import_is_allowed(item)]
    assert not wrong, (
        "Import these at the top of the module; if that makes a circle, split the modules so that one imports the "
        "other (see docs/architecture.md):\n" + "\n".join(wrong)
    )


def test_the_allow_list_has_no_stale_entry():
    used = {lazy_allowance(item) for item in IMPORTS if item.function}
    assert not set(LAZY_ALLOWED) - used, f"no longer needed, remove from LAZY_ALLOWED: {set(LAZY_ALLOWED) - used}"


def test_heavy_libraries_load_lazily_outside_the_ml_package():
    wrong = [
        item.where()
        for item in IMPORTS
        if not item.function
        and not item.type_checking
        and is_heavy(item.module)
        and not item.path.startswith("recommender/ml/")
    ]
    assert not wrong, "TensorFlow, Keras and matplotlib must not load in web processes:\n" + "\n".join(wrong)


def test_top_level_imports_make_no_circle():
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for item in IMPORTS:
        if item.function or item.type_checking:
            continue
        source = module_name(PROJECT_ROOT / item.path)
        if item.module in MODULES and item.module != source:
            graph[source].add(item.module)
    circles = _cycles(graph)
    assert not circles, "circular imports:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append([*sorted(group), min(group)])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_checks_see_what_they_must_refuse():
    """The parser itself: a lazy import across the layers, and a relative import, are understood."""
    source = "from .models import Movie\n\ndef view():\n    from recommender.recommendations import popular_movies\n"
    collector = _Collector(PROJECT_ROOT / "movies" / "example.py")
    collector.visit(ast.parse(source))
    assert [(i.module, i.function) for i in collector.found] == [
        ("movies.models", None),
        ("recommender.recommendations", "view"),
    ]
    assert not lazy_import_is_allowed(collector.found[1])
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"]]
