"""The repository explains itself: no tracked file points at a document outside it or at an
issue tracker number, and every requirement code (R1, R2, ...) used anywhere is defined in
docs/domain.md, so a newcomer with only a clone can follow every reference."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO_ROOT).as_posix()
DOMAIN_DOC = REPO_ROOT / "docs" / "domain.md"

# Each pattern names what it catches; they are matched line by line, case-sensitively.
OUTSIDE_REFERENCES = {
    "a design document kept outside the repository": re.compile(
        r"\b(?:DOMAIN|DESIGN|STYLE|BRIEF)\.md\b"
    ),
    "a shared folder outside the repository": re.compile(r"(?:\.\./|\b)shared/"),
    "reference material outside the repository": re.compile(r"\bseeds/\d{3}_"),
    "an issue number": re.compile(r"\b[Ii]ssues?\s+#?\d+"),
    # "#12" in prose; CSS colours (#222, #f3f3f3) have 3 or more digits and are not issues.
    "an issue number (#N)": re.compile(r"(?<![\w:&/'\"#-])#\d{1,2}\b"),
}
REQUIREMENT_CODE = re.compile(r"\bR(\d{1,2})\b")
# docs/domain.md defines a code in its requirements table: a row starting "| R6 |".
DEFINITION = re.compile(r"^\|\s*R(\d{1,2})\s*\|", re.MULTILINE)


def _tracked_text_files() -> list[tuple[str, str]]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for raw in names:
        name = raw.decode()
        path = REPO_ROOT / name
        if not name or name == THIS_FILE or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images)
        files.append((name, data.decode("utf-8", errors="replace")))
    return files


def test_no_reference_outside_the_repository_or_to_an_issue_number() -> None:
    hits = []
    for name, text in _tracked_text_files():
        for number, line in enumerate(text.splitlines(), start=1):
            for what, pattern in OUTSIDE_REFERENCES.items():
                if pattern.search(line):
                    hits.append(f"{name}:{number}: {what}: {line.strip()[:120]}")
    assert hits == [], f"{len(hits)} references:\n" + "\n".join(hits[:60])


def test_every_requirement_code_is_defined_in_docs() -> None:
    defined = (
        {int(n) for n in DEFINITION.findall(DOMAIN_DOC.read_text())}
        if (DOMAIN_DOC.exists())
        else set()
    )
    undefined = []
    for name, text in _tracked_text_files():
        for number, line in enumerate(text.splitlines(), start=1):
            for code in REQUIREMENT_CODE.findall(line):
                if int(code) not in defined:
                    undefined.append(f"{name}:{number}: R{code}: {line.strip()[:100]}")
    assert undefined == [], (
        f"{len(undefined)} requirement codes not defined in docs/domain.md:\n"
        + "\n".join(undefined[:60])
    )
