#!/usr/bin/python3
"""Checks that every system file kiln's build and tests use comes from a package that install-deps.sh installs.

    /usr/bin/python3 scripts/check_deps.py [--build build] [--exclude PKG ...] [--verbose]
    /usr/bin/python3 scripts/check_deps.py --self-test [--build build]

It lists what the build in BUILD used:
- every header and source outside the repository that a compile read (`ninja -t deps`);
- every absolute path in CMakeCache.txt (compilers, tools, libraries, include folders, the CMake configs that
  find_package read: each *.cmake file in a <Package>_DIR);
- every library named on a link line in build.ninja, and every shared library the built programs load (`ldd`);
- the Python modules that the tests, examples and benchmarks import (each module's file, as /usr/bin/python3
  imports it), and the commands the Makefile and scripts run (node, npm, clang-format, git).
It maps each file to its Debian package (`dpkg -S`) and fails, naming the package and a file, unless the package
is listed in scripts/debian-packages.txt or is in the Depends/Pre-Depends closure of a listed package (a
virtual package counts through the installed package that provides it; Recommends and Suggests do not count).
Packages marked Essential are on every Debian system (debootstrap's minbase) and count as present.

--exclude PKG drops PKG from the list, as if install-deps did not install it. --self-test runs the check, then
runs it again without a package the build needs (libpng-dev) and expects it to fail naming that package.
"""
import argparse
import ast
import glob
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PACKAGE_LIST = os.path.join(HERE, "debian-packages.txt")
# Commands the Makefile, .ci/run and the test scripts run besides what CMake found.
COMMANDS = ["node", "npm", "clang-format", "git", "make", "cmake", "ninja", "ccache", "dpkg"]


def listed_packages():
    out = []
    with open(PACKAGE_LIST) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line)
    return out


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def outside_repo(path):
    real = os.path.realpath(path)
    return os.path.isabs(path) and not real.startswith(ROOT + os.sep)


def ninja_deps(build):
    r = run(["ninja", "-C", build, "-t", "deps"])
    if r.returncode != 0:
        sys.exit("check-deps: `ninja -t deps` failed in %s (build first): %s" % (build, r.stderr.strip()))
    files = set()
    for line in r.stdout.splitlines():
        if line.startswith("    "):
            p = line.strip()
            if os.path.isabs(p) and outside_repo(p):
                files.add(p)
    return files


def cmake_cache(build):
    files = set()
    cache = os.path.join(build, "CMakeCache.txt")
    with open(cache) as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9_.+-]+):(FILEPATH|PATH|STRING|INTERNAL)=(.*)$", line.strip())
            if not m:
                continue
            key, _, value = m.groups()
            for v in value.split(";"):
                if not v.startswith("/") or not os.path.exists(v) or not outside_repo(v):
                    continue
                if key in ("CMAKE_INSTALL_PREFIX",) or v.startswith(os.path.realpath(build)):
                    continue
                if os.path.isdir(v):
                    # A find_package config folder: its config and targets files (those named after the package:
                    # GTest's folder also holds GMock's, which find_package(GTest) does not read).
                    if key.endswith("_DIR"):
                        name = key[:-len("_DIR")].lower()
                        files.update(c for c in glob.glob(os.path.join(v, "*.cmake"))
                                     if os.path.basename(c).lower().startswith(name))
                    continue
                files.add(v)
    return files


def link_libraries(build):
    files = set()
    with open(os.path.join(build, "build.ninja")) as f:
        for line in f:
            if "LINK_LIBRARIES" not in line and "LINK_PATH" not in line:
                continue
            for tok in re.findall(r"/[^\s;\"']+\.(?:so(?:\.[0-9.]+)?|a)\b", line):
                if os.path.exists(tok) and outside_repo(tok):
                    files.add(tok)
    return files


def built_programs(build):
    progs = []
    for dirpath, _, names in os.walk(build):
        if "/_deps" in dirpath or "/ort/" in dirpath or "CMakeFiles" in dirpath:
            continue
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            if not (os.access(p, os.X_OK) or n.endswith(".so")):
                continue
            with open(p, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    progs.append(p)
    return progs


def loaded_libraries(build):
    files = set()
    for prog in built_programs(build):
        r = run(["ldd", prog])
        for line in r.stdout.splitlines():
            m = re.search(r"=>\s+(/\S+)", line) or re.match(r"^\s*(/\S+)", line)
            if m and os.path.exists(m.group(1)) and outside_repo(m.group(1)):
                files.add(m.group(1))
    return files


def imported_modules():
    """Top-level modules imported by the Python files of tests/, examples/ and bench/ that are neither the
    standard library nor the repository's own."""
    names = set()
    local = set()
    for folder in ("tests", "examples", "bench", "python"):
        for path in glob.glob(os.path.join(ROOT, folder, "**", "*.py"), recursive=True):
            local.add(os.path.splitext(os.path.basename(path))[0])
            try:
                tree = ast.parse(open(path).read(), path)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    stdlib = set(sys.stdlib_module_names)
    return sorted(n for n in names if n not in stdlib and n not in local and n != "kiln")


def module_files(modules):
    """module -> its file as /usr/bin/python3 imports it; None when it does not import."""
    code = ("import importlib, json, sys\nout = {}\nfor m in sys.argv[1:]:\n"
            "    try:\n        out[m] = getattr(importlib.import_module(m), '__file__', None)\n"
            "    except Exception:\n        out[m] = None\nprint(json.dumps(out))")
    r = run(["/usr/bin/python3", "-c", code] + modules)
    import json
    return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}


def command_files():
    files = set()
    for c in COMMANDS:
        p = shutil.which(c)
        if p:
            files.add(p)
    return files


def owners(paths):
    """path -> [packages] from dpkg -S (also tried as its real path and across the merged /usr)."""
    result = {}
    pending = sorted(paths)

    def variants(p):
        out = [p]
        real = os.path.realpath(p)
        if real != p:
            out.append(real)
        for q in list(out):
            for a, b in (("/usr/lib/", "/lib/"), ("/lib/", "/usr/lib/"), ("/usr/bin/", "/bin/"), ("/bin/", "/usr/bin/")):
                if q.startswith(a):
                    out.append(b + q[len(a):])
        return out

    candidates = {p: variants(p) for p in pending}
    query = sorted({v for vs in candidates.values() for v in vs})
    found = {}
    for i in range(0, len(query), 200):
        r = run(["dpkg", "-S"] + query[i:i + 200])
        for line in r.stdout.splitlines():
            if line.startswith("diversion by"):
                continue
            m = re.match(r"^(.+?): (/.*)$", line)
            if m:
                pkgs = [p.strip().split(":")[0] for p in m.group(1).split(",")]
                found.setdefault(m.group(2), []).extend(pkgs)
    for p, vs in candidates.items():
        for v in vs:
            if v in found:
                result[p] = sorted(set(found[v]))
                break
    return result


def installed_status():
    """Installed packages: name -> (depends, pre_depends, provides, essential)."""
    fmt = "${Package}\t${Status}\t${Depends}\t${Pre-Depends}\t${Provides}\t${Essential}\n"
    r = run(["dpkg-query", "-W", "-f=" + fmt])
    pkgs = {}
    for line in r.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 6 or not parts[1].endswith(" installed"):
            continue
        pkgs[parts[0]] = parts[2:6]
    return pkgs


def names_of(relation):
    """'a (>= 1) | b, c:any' -> [['a', 'b'], ['c']]"""
    groups = []
    for group in relation.split(","):
        alts = [re.sub(r"\s*\(.*?\)|\s*\[.*?\]|:\S+", "", a).strip() for a in group.split("|")]
        alts = [a for a in alts if a]
        if alts:
            groups.append(alts)
    return groups


def closure(roots, pkgs):
    providers = {}
    for name, (_, _, provides, _) in pkgs.items():
        for group in names_of(provides):
            for v in group:
                providers.setdefault(v, set()).add(name)
    seen, stack = set(), list(roots)
    while stack:
        name = stack.pop()
        real = [name] if name in pkgs else sorted(providers.get(name, ()))
        for r in real:
            if r in seen:
                continue
            seen.add(r)
            depends, pre_depends, _, _ = pkgs[r]
            for group in names_of(depends) + names_of(pre_depends):
                # Every installed alternative may be what satisfies it on this machine.
                stack.extend(group)
    return seen


def check(build, exclude, verbose):
    files = set()
    sources = [("ninja -t deps", ninja_deps(build)), ("CMakeCache.txt", cmake_cache(build)),
               ("link lines", link_libraries(build)), ("ldd", loaded_libraries(build)), ("commands", command_files())]
    mods = imported_modules()
    mfiles = module_files(mods)
    py_files = {f for f in mfiles.values() if f}
    sources.append(("Python imports", py_files))
    for _, s in sources:
        files |= s
    listed = [p for p in listed_packages() if p not in exclude]
    pkgs = installed_status()
    allowed = closure(listed, pkgs)
    allowed |= {n for n, (_, _, _, essential) in pkgs.items() if essential == "yes"}
    own = owners(files)
    by_package = {}
    unowned = []
    for f in sorted(files):
        if f not in own:
            unowned.append(f)
            continue
        for p in own[f]:
            by_package.setdefault(p, []).append(f)
    failures = []
    for pkg, fs in sorted(by_package.items()):
        # A file several packages share (a folder, a diverted file) needs one of them.
        if pkg in allowed or any(pkg2 in allowed for f in fs for pkg2 in own[f]):
            continue
        failures.append("check-deps: package %s (%d files, e.g. %s) is neither in scripts/debian-packages.txt nor in "
                        "the Depends/Pre-Depends closure of a package there" % (pkg, len(fs), fs[0]))
    # Files no package owns: something installed by hand (outside /usr/local, which a fresh system leaves empty).
    for f in unowned:
        failures.append("check-deps: %s belongs to no Debian package (installed by hand?)" % f)
    not_importable = [m for m in mods if not mfiles.get(m)]
    print("check-deps: %d files from %d packages (%s); listed %d packages, closure %d; Python modules %s" %
          (len(files), len(by_package), ", ".join("%s %d" % (n, len(s)) for n, s in sources), len(listed),
           len(allowed), ", ".join(m for m in mods if mfiles.get(m))))
    if not_importable:
        print("check-deps: not installed, so not checked (no test needs them): %s" % ", ".join(not_importable))
    if verbose:
        for pkg, fs in sorted(by_package.items()):
            print("  %-32s %5d  %s" % (pkg, len(fs), fs[0]))
    for line in failures:
        print(line, file=sys.stderr)
    return not failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.build, "CMakeCache.txt")):
        sys.exit("check-deps: %s has no CMakeCache.txt (build first)" % args.build)
    if not check(args.build, args.exclude, args.verbose):
        sys.exit(1)
    if args.self_test:
        r = run([sys.executable, os.path.abspath(__file__), "--build", args.build, "--exclude", "libpng-dev"])
        if r.returncode == 0 or "libpng-dev" not in r.stderr:
            sys.exit("check-deps: self-test failed: without libpng-dev in the list the check should fail naming it; "
                     "it exited %d with:\n%s" % (r.returncode, r.stderr))
        print("check-deps: self-test ok (without libpng-dev: %s)" % r.stderr.strip().splitlines()[0])
    print("check-deps: ok")


if __name__ == "__main__":
    main()
