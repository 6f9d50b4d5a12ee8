#!/usr/bin/python3
"""Fails on any #include in src/ that crosses an arrow the module map forbids.

Each folder under src/ is a module; a file may include its own module's
headers and those of the modules listed for it below (ARCHITECTURE.md draws
the same map). A module's unit tests (src/MODULE/*_test.cpp) are held to
the same list, plus tests/support ("support/..."), and so are the test
helpers beside them (src/MODULE/test_*.h/.cpp); tests/e2e and
tests/support may use anything and are not checked.

Usage: scripts/check-layering.py [REPO_ROOT]   (exit 1 and one line per
offending include when the map is broken)
"""

import pathlib
import re
import sys

# Who may include whom (besides itself). The never-arrows the design states
# are the ones missing here: http -> media, aws/objects -> media,
# store -> ingest/snapshot, ingest -> snapshot, snapshot -> http,
# kvs -> http, core -> anything.
ALLOWED = {
    "core": set(),
    "media": {"core"},
    "aws": {"core"},
    "auth": {"core"},
    "store": {"core", "media", "objects"},
    "objects": {"core", "aws"},
    "ingest": {"core", "media", "store"},
    "snapshot": {"core", "media", "store", "objects"},
    "kvs": {"core", "aws", "objects", "media", "store", "ingest", "snapshot"},
    "http": {"core", "aws", "auth", "objects", "store", "ingest", "snapshot", "kvs"},
    "app": {"core", "aws", "auth", "objects", "media", "store", "ingest", "snapshot", "kvs", "http"},
}
# Of some modules, another may see only the interface headers named here.
ONLY = {
    ("http", "snapshot"): {"snapshot/snapshot_engine.h"},
    # The shared archive (--archive) keeps fragments as objects: the seam only.
    ("store", "objects"): {"objects/object_store.h"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([^"]+)"', re.MULTILINE)


def check(root: pathlib.Path) -> list[str]:
    problems = []
    src = root / "src"
    modules = sorted(p.name for p in src.iterdir() if p.is_dir())
    for module in modules:
        if module not in ALLOWED:
            problems.append(f"src/{module}/: a module the map does not know (add it to {__file__})")
            continue
        for path in sorted((src / module).glob("*")):
            if path.suffix not in (".h", ".cpp"):
                continue
            # Unit tests and their helpers (test_*.h/.cpp) may use tests/support too.
            is_test = path.name.endswith("_test.cpp") or path.name.startswith("test_")
            text = path.read_text(encoding="utf-8", errors="replace")
            for match in INCLUDE.finditer(text):
                target, rest = match.group(1), match.group(2)
                line = text.count("\n", 0, match.start()) + 1
                where = f"{path.relative_to(root)}:{line}"
                header = f"{target}/{rest}"
                if target == module:
                    continue
                if target == "support" and is_test:
                    continue
                if target not in ALLOWED:
                    problems.append(f'{where}: includes "{header}", outside every module')
                elif target not in ALLOWED[module]:
                    problems.append(f'{where}: {module} -> {target} ("{header}") is not an arrow '
                                    f"of the module map")
                elif (module, target) in ONLY and header not in ONLY[(module, target)]:
                    allowed = ", ".join(sorted(ONLY[(module, target)]))
                    problems.append(f'{where}: {module} sees only {allowed} of {target}, '
                                    f'not "{header}"')
    return problems


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else __file__).resolve()
    if root.is_file():
        root = root.parent.parent
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layering: {len(problems)} include(s) cross the module map (ARCHITECTURE.md)")
        return 1
    print("check-layering: every include follows the module map")
    return 0


if __name__ == "__main__":
    sys.exit(main())
