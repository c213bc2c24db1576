"""Sessions: tests, lint, typing, demo, bench. Each installs what it needs into its own venv.

torch is pinned first (ZIPFSTAGE_TORCH, default torch==2.13.0): a looser spec lets pip pull a
multi-GB CUDA build where a CPU wheel would do. On a GPU machine set ZIPFSTAGE_TORCH to the build
you want (e.g. "torch" with the right --index-url in PIP_INDEX_URL).
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = os.environ.get("ZIPFSTAGE_PYTHON", "3.11")
TORCH = os.environ.get("ZIPFSTAGE_TORCH", "torch==2.13.0")


def install_project(session: nox.Session, extras: str) -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite (no network, no GPU needed)."""
    install_project(session, "test")
    session.run("pytest", "-q", *session.posargs, env={"HF_HUB_OFFLINE": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "zipfstage", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "zipfstage", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    install_project(session, "test,dev")
    session.run("mypy")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Collect, fit, plot and report on the offline demo model and corpus into ./results."""
    install_project(session, "test")
    session.run("zipfstage", "demo", *session.posargs, env={"HF_HUB_OFFLINE": "1"})


@nox.session(name="compare-demo", python=PYTHON)
def compare_demo(session: nox.Session) -> None:
    """The demo model on pydoc and stdlib docstrings, float32 and bfloat16, compared."""
    install_project(session, "test")
    session.run("zipfstage", "demo", "--compare", *session.posargs, env={"HF_HUB_OFFLINE": "1"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios against baselines run side by side (not timed tests)."""
    install_project(session, "test")
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("bench_") and script.endswith(".py"):
            # the repo root on the path: some benchmarks build their stores with tests/ helpers
            session.run(
                "python", f"benchmarks/{script}", *session.posargs, env={"PYTHONPATH": os.getcwd()}
            )
