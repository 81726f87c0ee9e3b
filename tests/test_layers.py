"""Each package imports only the packages below it (docs/architecture.md, "Packages")."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BELOW = {  # what each package may import from the project
    "flows": set(),
    "agent": {"flows"},
    "deployments": {"flows", "agent"},
    "ui": {"flows", "agent", "deployments"},
}


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(BELOW)


def test_no_package_imports_one_above_it() -> None:
    wrong = []
    for package, allowed in BELOW.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for other in _project_imports(path) - allowed - {package}:
                wrong.append(f"{path.relative_to(ROOT)} imports {other}")
    assert not wrong, "\n".join(wrong)


def test_the_front_page_reaches_the_service_through_one_door() -> None:
    """ui/backend.py is the only front-page module that imports Prefect, deployments/ or agent/
    (ui/screenshots.py is a tool that drives the whole product, not a part of the page)."""
    pages = [p for p in sorted((ROOT / "ui").rglob("*.py")) if p.name not in ("backend.py", "screenshots.py")]
    wrong = [f"{p.relative_to(ROOT)} imports {m}" for p in pages
             for m in {n.split(".")[0] for n in _all_modules(p)} & {"deployments", "agent", "prefect"}]
    assert pages and not wrong, "\n".join(wrong)


def _all_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


PREFECT_CLIENT = {  # the modules that call Prefect's client, each named for the records it keeps
    "flows/runs.py": "a job run's own records: state, pauses, answers, log lines",
    "agent/pools.py": "each host's pool, deployments, workers and queued runs",
    "deployments/jobs.py": "submitting, resuming, cancelling and reading job runs",
    "deployments/templates.py": "templates (deployments) and their schedules",
    "deployments/notifications.py": "the automation that tells people",
    "deployments/recovery.py": "the automations that clean up after runs",
    "deployments/lines.py": "integration lines (deployments of the line flow) and the automations that move them",
    "ui/backend.py": "the front page's one door",
}


def test_prefect_s_client_is_called_from_the_modules_that_keep_its_records_only() -> None:
    callers = {str(p.relative_to(ROOT)) for package in BELOW for p in (ROOT / package).rglob("*.py")
               if "get_client" in p.read_text()}
    assert callers == set(PREFECT_CLIENT), sorted(callers ^ set(PREFECT_CLIENT))
