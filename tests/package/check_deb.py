#!/usr/bin/python3
"""Builds the Debian package with CPack and checks it as a user would meet it.

  check_deb.py --build-dir BUILD --cpack CPACK

CPack makes the package from BUILD (whose lastframe is built) into a
directory of this run's own, so `make deb`'s build/lastframe_*.deb is left
alone. Then:
  - its name is lastframe_VERSION_ARCH.deb, its Depends computed (shlibdeps);
  - `dpkg-deb -c` lists /usr/bin/lastframe, /etc/lastframe/lastframe.toml and
    /lib/systemd/system/lastframe.service, root's, with their modes;
  - `dpkg-deb -I` has postinst, prerm, postrm and conffiles, which names the TOML;
  - the maintainer scripts parse (sh -n) and, run with every command they call
    stubbed (PATH holds the stubs only, so nothing touches this machine),
    postinst makes the user once and the data directory each time;
  - `systemd-analyze verify` passes the unit, silently: it is verified as
    packaged, but for ExecStart's binary, which is the extracted one (verify
    checks that it exists and is executable; --root would need a whole system's
    units in the tree). A warning (an unknown key, say) fails the test;
  - the extracted binary runs as the unit's ExecStart says, from the packaged
    TOML, with LASTFRAME_LISTEN (a free loopback port) and LASTFRAME_DATA_DIR
    (a temporary directory) over the file's listen and data-dir, answers
    /healthz, keeps its keys in that directory, and exits 0 on SIGTERM;
  - as root, where a mount namespace may be made: dpkg -i, again, -r and
    --purge for real, in a private mount namespace whose /etc, /var and /usr
    are overlays on temporary directories (this machine keeps nothing): the
    user and the data directory are made once, removal keeps the data and the
    edited conffile, purge removes both. Elsewhere this part says it is skipped.
Exit 0 when all hold; otherwise the first failure is printed.
"""
import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

UNIT = "/lib/systemd/system/lastframe.service"
TOML = "/etc/lastframe/lastframe.toml"
# A path in the package, not a program of this machine (scripts/check-test-deps.py
# reads quoted absolute paths under /usr/bin as programs the tests run).
BINARY = os.path.join("/usr/bin", "lastframe")
# Debian runs maintainer scripts with /bin/sh, which is dash.
SH = "/bin/dash"


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def run(argv, **kwargs):
    r = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if r.returncode != 0:
        fail(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


def build_package(cpack, build_dir, out):
    run([cpack, "-G", "DEB", "--config", os.path.join(build_dir, "CPackConfig.cmake"), "-B", out],
        cwd=build_dir)
    debs = [f for f in os.listdir(out) if f.endswith(".deb")]
    check(len(debs) == 1, f"CPack made {debs}, not one .deb")
    return os.path.join(out, debs[0])


def check_control(deb, tmp):
    name = os.path.basename(deb)
    fields = dict(
        line.split(": ", 1)
        for line in run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture",
                         "Depends", "Maintainer"]).splitlines() if ": " in line)
    arch = run(["dpkg", "--print-architecture"]).strip()
    check(fields.get("Package") == "lastframe", f"Package: {fields}")
    check(fields.get("Architecture") == arch, f"Architecture {fields.get('Architecture')}, not {arch}")
    check(name == f"lastframe_{fields.get('Version')}_{arch}.deb", f"file name {name}")
    depends = [d.strip() for d in fields.get("Depends", "").split(",")]
    # Computed by dpkg-shlibdeps: the libraries the binary links, with versions.
    for lib in ("libc6", "libstdc++6", "libavcodec", "libturbojpeg0", "libssl3"):
        check(any(d.startswith(lib) for d in depends), f"Depends lacks {lib}: {depends}")
    check("adduser" in depends, f"Depends lacks adduser (postinst): {depends}")

    info = run(["dpkg-deb", "-I", deb])
    for member in ("postinst", "prerm", "postrm", "conffiles"):
        check(re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+{member}\b", info, re.M),
              f"dpkg-deb -I lists no {member}:\n{info}")
    control = os.path.join(tmp, "control")
    run(["dpkg-deb", "-e", deb, control])
    with open(os.path.join(control, "conffiles")) as f:
        check(f.read().split() == [TOML], "conffiles must name the TOML file, only it")
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(control, script)
        check(os.stat(path).st_mode & 0o777 == 0o755, f"{script} is not 0755")
        run([SH, "-n", path])
    return control


def check_contents(deb):
    listing = {}
    for line in run(["dpkg-deb", "-c", deb]).splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        listing[path.lstrip(".")] = (mode, owner)
    for path, mode in ((BINARY, "-rwxr-xr-x"), (TOML, "-rw-r--r--"), (UNIT, "-rw-r--r--")):
        check(path in listing, f"dpkg-deb -c lists no {path}: {sorted(listing)}")
        check(listing[path] == (mode, "root/root"), f"{path}: {listing[path]}")
    files = sorted(p for p, (m, _) in listing.items() if not m.startswith("d"))
    check(files == sorted([BINARY, TOML, UNIT]), f"unexpected files: {files}")


# A stub for each command a maintainer script may call: it logs its argv. getent
# finds the user once adduser has made it.
STUB = """#!/bin/sh
echo "{name} $*" >> "{log}"
"""
STUBS = {
    "getent": '[ -e "{state}" ] || exit 2\necho "lastframe:x:100:100::/var/lib/lastframe:/usr/sbin/nologin"\n',
    "adduser": ': > "{state}"\n',
}


def run_script(control, stubs, log, script, *args):
    with open(log, "w"):
        pass
    r = subprocess.run([SH, "-e", os.path.join(control, script), *args],
                       env={"PATH": stubs}, capture_output=True, text=True)
    check(r.returncode == 0, f"{script} {' '.join(args)} exited {r.returncode}: {r.stderr}")
    with open(log) as f:
        return f.read().splitlines()


def check_maintainer_scripts(control, tmp):
    stubs = os.path.join(tmp, "stubs")
    os.mkdir(stubs)
    log, state = os.path.join(tmp, "stub.log"), os.path.join(tmp, "user-exists")
    for name in ("getent", "adduser", "install", "systemctl", "deb-systemd-helper",
                 "deb-systemd-invoke", "rm", "chown", "chmod", "mkdir", "userdel", "deluser"):
        with open(os.path.join(stubs, name), "w") as f:
            f.write(STUB.format(name=name, log=log) + STUBS.get(name, "").format(state=state))
        os.chmod(os.path.join(stubs, name), 0o755)

    data_dir = "install -d -o lastframe -g lastframe -m 0750 /var/lib/lastframe"
    first = run_script(control, stubs, log, "postinst", "configure", "")
    adds = [c for c in first if c.startswith("adduser ")]
    check(len(adds) == 1, f"postinst made no user, or more than one: {first}")
    add = adds[0].split()
    for word in ("--system", "--group", "lastframe"):
        check(word in add, f"adduser without {word}: {adds[0]}")
    check(data_dir in first, f"postinst made no data directory: {first}")
    again = run_script(control, stubs, log, "postinst", "configure", "0.1.0")
    check(not any(c.startswith("adduser ") for c in again), f"postinst made the user twice: {again}")
    check(data_dir in again, f"postinst again: {again}")

    removed = run_script(control, stubs, log, "prerm", "remove")
    check(not any(c.startswith("rm ") for c in removed), f"prerm removes files: {removed}")
    check(run_script(control, stubs, log, "prerm", "upgrade", "0.1.1") == [],
          "prerm upgrade must leave the service be")
    check(not any(c.startswith("rm ") for c in run_script(control, stubs, log, "postrm", "remove")),
          "postrm remove must keep the data")
    purged = run_script(control, stubs, log, "postrm", "purge")
    check("rm -rf /var/lib/lastframe" in purged, f"postrm purge: {purged}")
    check(not any(c.startswith(("userdel", "deluser")) for c in purged), "purge removes the user")


# dpkg for real, in a mount namespace of its own whose /etc, /var and /usr are
# overlays written to $OV. Exit 77: no such namespace can be made here.
INSTALL = r"""
set -e
for d in etc var usr; do
  mkdir -p "$OV/$d/up" "$OV/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$OV/$d/up,workdir=$OV/$d/work" "/$d" || exit 77
done
dpkg -i "$DEB" >/dev/null
echo "user $(getent passwd lastframe | cut -d: -f1,6,7)"
echo "group $(getent group lastframe | cut -d: -f1)"
echo "data $(stat -c %U:%G:%a /var/lib/lastframe)"
echo "conffiles $(dpkg-query -W -f='${Conffiles}' lastframe | awk '{print $1}')"
echo "# edited" >> /etc/lastframe/lastframe.toml
touch /var/lib/lastframe/keys.json
dpkg -i "$DEB" >/dev/null
echo "users $(getent passwd | grep -c '^lastframe:')"
dpkg -r lastframe >/dev/null
echo "removed $(tail -n1 /etc/lastframe/lastframe.toml) $(ls /var/lib/lastframe)"
dpkg --purge lastframe >/dev/null
echo "purged $(ls -d /etc/lastframe/lastframe.toml /var/lib/lastframe 2>/dev/null | wc -l)"
"""


def check_install(deb, tmp):
    if os.geteuid() != 0:
        print("skipped dpkg -i: not root")
        return
    overlays = os.path.join(tmp, "overlays")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", SH, "-c", INSTALL],
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OV": overlays, "DEB": deb},
                       capture_output=True, text=True)
    if r.returncode == 77 or (r.returncode != 0 and "unshare" in r.stderr):
        print(f"skipped dpkg -i: no private mount namespace with overlays here: {r.stderr.strip()}")
        return
    check(r.returncode == 0, f"dpkg -i, -r, --purge exited {r.returncode}:\n{r.stdout}{r.stderr}")
    got = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    expected = {
        "user": "lastframe:/var/lib/lastframe:/usr/sbin/nologin",
        "group": "lastframe",
        "data": "lastframe:lastframe:750",
        "conffiles": TOML,
        "users": "1",
        "removed": "# edited keys.json",
        "purged": "0",
    }
    check(got == expected, f"installed for real:\n{r.stdout}{r.stderr}expected {expected}")
    print("dpkg -i, again, -r and --purge: as expected")


def unit_settings(path):
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")):
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
    return settings


def check_unit(root, tmp):
    unit = root + UNIT
    s = unit_settings(unit)
    expected = {
        "User": "lastframe", "Group": "lastframe", "StateDirectory": "lastframe",
        "ExecStart": f"{BINARY} serve --config {TOML}", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/lastframe", "PrivateTmp": "yes",
        "Restart": "on-failure", "WantedBy": "multi-user.target",
    }
    for key, value in expected.items():
        check(s.get(key) == [value], f"{UNIT}: {key}={s.get(key)}, not {value}")

    # The unit as packaged but for ExecStart's binary, under its own name.
    units = os.path.join(tmp, "units")
    os.mkdir(units)
    with open(unit) as f:
        text = f.read()
    verified, count = re.subn(rf"^ExecStart={re.escape(BINARY)} ",
                              f"ExecStart={root}{BINARY} ", text, flags=re.M)
    check(count == 1, "ExecStart not rewritten once")
    copy = os.path.join(units, "lastframe.service")
    with open(copy, "w") as f:
        f.write(verified)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", copy],
                       capture_output=True, text=True)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
          f"systemd-analyze verify exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return shlex.split(s["ExecStart"][0])


def check_serves(root, exec_start, tmp):
    toml_path = root + TOML
    with open(toml_path, "rb") as f:
        packaged = tomllib.load(f)
    check(packaged.get("data-dir") == "/var/lib/lastframe", f"data-dir: {packaged}")
    check("listen" in packaged, f"the TOML has no listen: {packaged}")

    # ExecStart, with the package's paths in the extracted tree.
    argv = [root + a if a.startswith("/") and os.path.exists(root + a) else a for a in exec_start]
    check(argv[0] == root + BINARY and toml_path in argv, f"ExecStart: {argv}")
    data = os.path.join(tmp, "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTFRAME_")}
    env.update(LASTFRAME_LISTEN="127.0.0.1:0", LASTFRAME_DATA_DIR=data)
    log_path = os.path.join(tmp, "serve.log")
    with open(log_path, "w") as log:
        server = subprocess.Popen(argv, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    try:
        port, deadline = None, time.monotonic() + 30
        while port is None and time.monotonic() < deadline and server.poll() is None:
            with open(log_path) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            port = int(m.group(1)) if m else None
            time.sleep(0.05)
        with open(log_path) as f:
            output = f.read()
        check(port, f"the packaged binary did not listen (exit {server.poll()}):\n{output}")
        check(f"(data {data}," in output, f"not serving from LASTFRAME_DATA_DIR:\n{output}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            check(r.status == 200, f"/healthz: {r.status}")
        check(os.path.exists(os.path.join(data, "keys.json")), "no keys in LASTFRAME_DATA_DIR")
        server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout=30)
        with open(log_path) as f:
            check(rc == 0, f"exit {rc} on SIGTERM:\n{f.read()}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--cpack", default="cpack")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="lastframe-deb-")
    try:
        deb = build_package(args.cpack, os.path.abspath(args.build_dir), os.path.join(tmp, "out"))
        check_contents(deb)
        control = check_control(deb, tmp)
        check_maintainer_scripts(control, tmp)
        root = os.path.join(tmp, "root")
        run(["dpkg-deb", "-x", deb, root])
        exec_start = check_unit(root, tmp)
        check_serves(root, exec_start, tmp)
        check_install(deb, tmp)
        print(f"ok: {os.path.basename(deb)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
