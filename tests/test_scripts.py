"""The set-up scripts say what they install, why, and how long it may take, before each slow step."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [path for path in (ROOT / "scripts").iterdir() if path.is_file()]
SLOW_STEPS = re.compile(r"npm ci|pip install --quiet -e|apt-get install")


def test_every_debian_package_installation_gives_its_reason_and_duration() -> None:
    calls = [
        (path.name, line.strip())
        for path in SCRIPTS
        for line in path.read_text().splitlines()
        if re.match(r"\s*apt_install\b", line) and "()" not in line
    ]
    assert calls, "the scripts install Debian packages through apt_install"
    for script, call in calls:
        assert re.fullmatch(r'apt_install "[^"]+" "[^"]+"( [a-z0-9.+-]+)+', call), f"{script}: {call}"


def test_every_other_slow_step_is_announced_first() -> None:
    for path in SCRIPTS:
        if path.name == "_install.sh":
            continue
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if SLOW_STEPS.search(line) and "--upgrade pip" not in line:
                before = "\n".join(lines[max(0, number - 3) : number])
                assert "announce " in before, f"{path.name}:{number + 1} is not announced: {line.strip()}"


def test_the_announcement_says_what_why_and_how_long() -> None:
    said = subprocess.run(
        ["bash", "-c", 'source scripts/_install.sh; announce "graphviz from Debian\'s packages" "diagrams" "30 s"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert said.stdout == "installing graphviz from Debian's packages: diagrams (may take 30 s)\n"
