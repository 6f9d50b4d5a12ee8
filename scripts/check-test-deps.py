#!/usr/bin/python3
"""Fails when a test or benchmark needs something scripts/install-deps.sh does not install.

  scripts/check-test-deps.py [-v]

Reads what the tests (tests/, src/**/*_test.cpp) and the benchmark harness (bench/) import
(Python) and spawn (argv literals in C++ and Python), finds the Debian package that provides
each on this machine (dpkg -S), and checks that the package is in the dependency closure of
the packages install-deps.sh installs, or part of every Debian system (priority required).
A green test run on a machine that happens to carry a package proves nothing on a fresh
Debian 12; this check does not depend on what this machine has beyond finding the files.
"""
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's, not a pyenv or /usr/local first

# argv[0] literals: RunCommand({"tool", ...}), Process x({"tool", ...}), return {"tool", ...},
# argv = {"tool", ...}, launchers {"prlimit", ...}; Python run/Popen/check_output(["tool", ...]).
CPP_ARGV = [
    re.compile(r'RunCommand\(\s*\{\s*"([^"]+)"'),
    re.compile(r'Process\s+\w+\(\s*\{\s*"([^"]+)"'),
    re.compile(r'return\s+\{\s*"([^"]+)",\s*"-'),
    re.compile(r'argv\s*=\s*\{\s*"([^"]+)"'),
    re.compile(r'std::vector<std::string>\{\s*"([^"]+)",\s*"--'),
    re.compile(r'\{\s*"(prlimit|ffmpeg|ffprobe|node|curl)"\s*,'),
]
PY_ARGV = [
    re.compile(r'(?:run|Popen|check_output|check_call|call)\(\s*\[\s*"([^"]+)"'),
    re.compile(r'shutil\.which\(\s*"([^"]+)"'),
]
ABSOLUTE_TOOL = re.compile(r'"(/usr/s?bin/[\w.+-]+|/s?bin/[\w.+-]+)"')
PY_IMPORT = re.compile(r'^\s*(?:import|from)\s+([A-Za-z_]\w*)', re.M)
# Standard-library modules Debian ships in packages of their own.
SEPARATE_STDLIB = {"tkinter", "distutils", "lib2to3", "venv", "ensurepip", "idlelib"}


def installed_packages_list():
    lines = open(os.path.join(ROOT, "scripts", "install-deps.sh")).read().splitlines()
    text = "\n".join(line.split("#", 1)[0] for line in lines)  # comments may hold ( )
    names = []
    for block in re.findall(r'packages\+?=\(([^)]*)\)', text):
        names += [w for w in block.split() if re.fullmatch(r'[a-z0-9][a-z0-9+.-]+', w)]
    return sorted(set(names))


def closure(packages):
    out = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
        capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        token = line.strip().split(":", 1)[-1].strip().strip("<>|")
        if token:
            names.add(token.split(":")[0])
    return names


def required_packages():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Priority} ${Essential}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {p for p, *rest in (l.split() for l in out.splitlines())
            if "required" in rest or "yes" in rest}


def package_of(path):
    real = os.path.realpath(path)
    for candidate in dict.fromkeys([path, real]):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def sources(patterns):
    files = []
    for p in patterns:
        files += glob.glob(os.path.join(ROOT, p), recursive=True)
    return sorted(f for f in set(files) if "node_modules" not in f)


def main():
    verbose = "-v" in sys.argv
    listed = installed_packages_list()
    allowed = closure(listed) | required_packages()
    problems, seen = [], []

    # Python imports of test and bench scripts, resolved by Debian's python3.
    for f in sources(["tests/**/*.py", "bench/*.py"]):
        here = os.path.dirname(f)
        for mod in sorted(set(PY_IMPORT.findall(open(f).read()))):
            if os.path.exists(os.path.join(here, mod + ".py")):
                continue  # a sibling script
            if mod in sys.stdlib_module_names and mod not in SEPARATE_STDLIB:
                continue
            where = subprocess.run(
                ["/usr/bin/python3", "-c",
                 "import importlib.util,sys; s=importlib.util.find_spec(sys.argv[1]); "
                 "print(s.origin or list(s.submodule_search_locations)[0])", mod],
                capture_output=True, text=True)
            rel = os.path.relpath(f, ROOT)
            if where.returncode != 0:
                problems.append(f"{rel}: imports '{mod}', which /usr/bin/python3 cannot find")
                continue
            pkg = package_of(where.stdout.strip())
            seen.append((rel, f"import {mod}", pkg))
            if pkg not in allowed:
                problems.append(f"{rel}: imports '{mod}' from package {pkg}, which "
                                "scripts/install-deps.sh does not install")

    # Tools spawned by the C++ tests and by Python scripts.
    tools = {}
    for f in sources(["tests/**/*.cpp", "tests/**/*.h", "src/**/*_test.cpp"]):
        text = open(f).read()
        for rx in CPP_ARGV + [ABSOLUTE_TOOL]:
            for tool in rx.findall(text):
                tools.setdefault(tool, os.path.relpath(f, ROOT))
    for f in sources(["tests/**/*.py", "bench/*.py"]):
        text = open(f).read()
        for rx in PY_ARGV + [ABSOLUTE_TOOL]:
            for tool in rx.findall(text):
                tools.setdefault(tool, os.path.relpath(f, ROOT))
    for tool, rel in sorted(tools.items()):
        path = tool if tool.startswith("/") else shutil.which(tool, path=SYSTEM_PATH)
        if not path or not os.path.exists(path):
            problems.append(f"{rel}: runs '{tool}', which is not installed here")
            continue
        pkg = package_of(path)
        seen.append((rel, f"runs {tool}", pkg))
        if pkg not in allowed:
            problems.append(f"{rel}: runs '{tool}' ({path}) from package {pkg}, which "
                            "scripts/install-deps.sh does not install")

    if verbose:
        for rel, what, pkg in seen:
            print(f"  {rel}: {what} <- {pkg}")
    if problems:
        print("check-test-deps: what tests need but a fresh Debian 12 would not have:")
        for p in problems:
            print("  " + p)
        return 1
    print(f"check-test-deps: {len(seen)} imports and tools of the tests, all from packages "
          f"scripts/install-deps.sh installs ({len(listed)} listed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
