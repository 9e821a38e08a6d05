#!/usr/bin/env python3
"""Mutation testing by hand: plants one-line bugs and checks that a test fails.

    python3 tests/mutation/mutate.py tests/mutation/runtime_kernels.json [--keep DIR]

Works on a copy of the committed tree (git archive HEAD into a temporary
folder, or DIR with --keep, reused when it exists), never on your checkout.
The JSON gives the CMake arguments, the target to build, the test command
(run in the build folder) and the mutations: {"id", "file", "old", "new"},
`old` occurring exactly once in `file`. Each mutation is applied, the target
rebuilt, the command run, the file restored. Prints a markdown table:
killed (the test command failed, with the failing doctest cases) or
SURVIVED. Exit 1 if any mutation survived. Slow (one rebuild per mutation):
run it under nice, it is not part of ctest.
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def sh(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True)


def failing_cases(output):
    failed = set()
    for block in output.split("=" * 79):
        m = re.search(r"TEST CASE:\s+(.*)", block)
        if m and re.search(r"ERROR:|FATAL|exception", block):
            failed.add(m.group(1).strip())
    return sorted(failed)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    spec = json.load(open(sys.argv[1]))
    repo = sh("git rev-parse --show-toplevel").stdout.strip()
    src = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else tempfile.mkdtemp(prefix="mtan-mutation-")
    if not os.path.exists(os.path.join(src, "CMakeLists.txt")):
        os.makedirs(src, exist_ok=True)
        r = sh(f"git -C '{repo}' archive HEAD | tar -x -C '{src}'")
        if r.returncode != 0:
            print(r.stderr)
            return 2
    build = os.path.join(src, "build-mutation")
    configure = f"cmake -S '{src}' -B '{build}' -G Ninja -DCMAKE_BUILD_TYPE=Release {spec.get('cmake_args', '')}"
    build_cmd = f"cmake --build '{build}' -j2 --target {spec['target']}"
    for cmd in (configure, build_cmd):
        r = sh(cmd)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            return 2
    r = sh(spec["command"], cwd=build)
    if r.returncode != 0:
        print("the tests fail without any mutation:\n" + r.stdout[-3000:])
        return 2
    print("| mutation | file | result |\n| --- | --- | --- |")
    survived = 0
    for m in spec["mutations"]:
        path = os.path.join(src, m["file"])
        orig = open(path).read()
        if orig.count(m["old"]) != 1:
            print(f"| {m['id']} | {m['file']} | not applied: `old` matches {orig.count(m['old'])} times |")
            survived += 1
            continue
        line = orig[: orig.index(m["old"])].count("\n") + 1
        try:
            open(path, "w").write(orig.replace(m["old"], m["new"]))
            b = sh(build_cmd)
            if b.returncode != 0:
                verdict = "does not build"
            else:
                t = sh(spec["command"], cwd=build)
                if t.returncode == 0:
                    verdict = "**SURVIVED**"
                    survived += 1
                else:
                    verdict = "killed: " + "; ".join(failing_cases(t.stdout + t.stderr))
        finally:
            open(path, "w").write(orig)
        print(f"| {m['id']} | {m['file']}:{line} | {verdict} |", flush=True)
    sh(build_cmd)
    print(f"\n{len(spec['mutations']) - survived} of {len(spec['mutations'])} killed; tree in {src}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
