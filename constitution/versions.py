"""Released versions are immutable: ``constitution/versions.lock`` pins each one's digest.

A changed released file (same version, different digest) is refused by a test and by
``check_lock``; the remedy is a new version with a changelog entry (§15 governance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LOCK_PATH = Path(__file__).with_name("versions.lock")


@dataclass(frozen=True)
class Release:
    version: str
    file: str
    digest: str


def read_lock(path: Path = LOCK_PATH) -> dict[str, Release]:
    data = json.loads(path.read_text("utf-8"))
    return {v: Release(v, e["file"], e["digest"]) for v, e in data["released"].items()}


@cache
def _released() -> dict[str, Release]:
    return read_lock()


def locked_digest(version: str) -> str | None:
    """The digest ``version`` was released with (None: not released). The lock ships with the
    package, so it is read once per process."""
    release = _released().get(version)
    return None if release is None else release.digest


def render_lock(releases: dict[str, Release]) -> str:
    body = {v: {"file": r.file, "digest": r.digest} for v, r in sorted(releases.items())}
    return json.dumps({"released": body}, indent=2, sort_keys=True) + "\n"


def check_lock(path: Path = LOCK_PATH) -> list[str]:
    """Problems with released files: changed content, wrong version, missing file."""
    from constitution.load import load_constitution

    problems = []
    for release in read_lock(path).values():
        file = path.parent / release.file
        if not file.exists():
            problems.append(f"{release.version}: released file {release.file} is missing")
            continue
        loaded = load_constitution(file, released_check=False)
        if loaded.version != release.version:
            problems.append(
                f"{release.file}: says version {loaded.version}, the lock says {release.version}"
            )
        if loaded.digest != release.digest:
            problems.append(
                f"{release.file}: released version {release.version} changed (digest {loaded.digest}, "
                f"locked {release.digest}); released versions are immutable: make a new version"
            )
    return problems
