"""Real git repositories in tmp dirs, for the project identity tests (no network: clones are local)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV, HOME=str(cwd))
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(folder: Path, *, commits: int = 2, origin: str | None = None) -> str:
    """A repository at ``folder`` with ``commits`` commits; returns its root commit."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    for number in range(commits):
        (folder / "main.py").write_text(f"print({number})\n")
        git(folder, "add", "main.py")
        git(folder, "commit", "-q", "-m", f"commit {number}")
    if origin:
        git(folder, "remote", "add", "origin", origin)
    return git(folder, "rev-list", "--max-parents=0", "HEAD") if commits else ""
