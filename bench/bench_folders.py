"""Folders of many small files (a Measurement Set) staged as one item, against ``cp`` in the same run.

    .venv/bin/python bench/bench_folders.py [--files 4000] [--runs 3]

A tree of ``--files`` files (1 to 32 KiB, in folders of 100, as a Measurement Set's tables are) is
staged through POST /stage_data by ``local_copy`` (verified) and ``symlink_copy`` (hard links),
with STAGING_FSYNC=false against ``cp -r`` and ``cp -al``, and with STAGING_FSYNC=true against the
same followed by ``sync`` of the copy. Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import httpx

from bench_core import Service, timed

KIB = 1024


def make_tree(top: Path, files: int) -> int:
    """A read-only tree of ``files`` files; returns its bytes."""
    chance, total = random.Random(42), 0
    for index in range(files):
        path = top / f"table{index // 100:03d}" / f"f{index:05d}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = chance.randbytes(chance.randint(1, 32) * KIB)
        path.write_bytes(data)
        path.chmod(0o444)
        total += len(data)
    for folder in [*top.iterdir(), top]:
        folder.chmod(0o555)  # an archive's tree is read-only: a hard link of it is allowed
    return total


def baseline(command: str, base: Path, flush: bool, name: str) -> float:
    target = base / "baseline" / name  # kept until the end: removing 4,000 files slows what follows
    target.parent.mkdir(exist_ok=True)
    script = f"{command} {base / 'storage' / 'ms'} {target}" + (f" && sync -f {target}" if flush else "")
    return timed(lambda: subprocess.run(script, shell=True, check=True))


def staged(service: Service, method: str, name: str) -> float:
    with httpx.Client() as client:
        return timed(lambda: service.stage(client, method, "bench", "ms", name))


def measure(base: Path, runs: int, flush: bool) -> dict[str, tuple[float, float]]:
    """method -> (median seconds of the service, median seconds of its baseline)."""
    service = Service(base, fsync=str(flush).lower())
    try:
        results = {}
        for method, command in (("local_copy", "cp -r"), ("symlink_copy", "cp -al")):
            ours, theirs = [], []
            for run in range(runs):  # interleaved, each after a sync: earlier writes do not slow it
                name = f"{method}-{flush}-{run}"
                subprocess.run(["sync"], check=True)
                ours.append(staged(service, method, name))
                subprocess.run(["sync"], check=True)
                theirs.append(baseline(command, base, flush, name))
            results[method] = (statistics.median(ours), statistics.median(theirs))
        return results
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="skao-bench-folders-"))
    try:
        size = make_tree(base / "storage" / "ms", args.files)
        rows = [(flush, measure(base, args.runs, flush)) for flush in (False, True)]
    finally:  # folders writable again to remove them; the files of hard-linked trees are the archive's own
        subprocess.run(["find", str(base), "-type", "d", "-exec", "chmod", "u+w", "{}", "+"], check=False)
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n| {args.files} files, {size / KIB / KIB:.0f} MiB, median of {args.runs} | service | baseline | ratio |")
    print("|---|---|---|---|")
    for flush, results in rows:
        for method, (ours, theirs) in results.items():
            command = "cp -r" if method == "local_copy" else "cp -al"
            label = f"{method} STAGING_FSYNC={str(flush).lower()} vs `{command}`" + (" + `sync`" if flush else "")
            print(f"| {label} | {ours:.2f} s | {theirs:.2f} s | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()
