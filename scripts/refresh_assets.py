#!/usr/bin/env python3
"""Rebuild the browser assets in api/web/static from the npm packages pinned in scripts/assets.

    python scripts/refresh_assets.py            # rebuild exactly the pinned versions
    python scripts/refresh_assets.py --upgrade  # move every pin to its newest release, rebuild

The pins live in one place, scripts/assets/package.json (with package-lock.json for everything
they pull in). GraphiQL is built with esbuild from its published ES modules (scripts/assets/
build.mjs); Swagger UI and ReDoc ship ready-made browser bundles, which are copied as they are.
Every package's licence goes beside its files, VERSIONS.json records the versions and each file's
SHA-256, and JavaScript and CSS get a gzip twin the server sends to clients that accept it.
Nothing here is edited by hand: change a pin (or pass --upgrade), run this, commit the result.
Needs node, npm and the npm registry.
"""

import argparse
import base64
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "scripts" / "assets"
STATIC = ROOT / "api" / "web" / "static"
MANIFEST = STATIC / "VERSIONS.json"
# The directories this script owns; anything else under api/web/static (our own scripts) is kept.
VENDORED = ("graphiql", "swagger-ui", "redoc")
SOURCE_FILES = ("package.json", "package-lock.json", ".npmrc", "build.mjs")
SOURCE_FILES += ("graphiql.jsx", "graphiql.css")
NPM_FLAGS = ("--ignore-scripts", "--no-audit", "--no-fund")
SWAGGER_UI_FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui-bundle.js.LICENSE.txt",
    "swagger-ui.css",
    "oauth2-redirect.js",
    "favicon-32x32.png",
    "LICENSE",
    "NOTICE",
)
LICENCE_FILE = re.compile(r"^(licen[cs]e|copying|notice|thirdpartynotices)", re.IGNORECASE)
COMPRESSED_SUFFIXES = (".js", ".css")


def run(*command: str, cwd: Path) -> str:
    """Run a command, echoing it; its standard output, or exit with its error."""
    print("+", " ".join(command), flush=True)
    completed = subprocess.run(command, cwd=cwd, check=False, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{command[0]} failed ({completed.returncode}):\n{completed.stderr}")
    return completed.stdout


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def install(build: Path, upgrade: bool) -> None:
    """Install the pinned packages into `build`; with `upgrade`, first move every pin to latest."""
    package = read_json(build / "package.json")
    if upgrade:
        for section, flag in (("dependencies", "--save-prod"), ("devDependencies", "--save-dev")):
            names = [f"{name}@latest" for name in package.get(section, {})]
            run("npm", "install", flag, "--save-exact", *NPM_FLAGS, *names, cwd=build)
        package = read_json(build / "package.json")
        for name, pin in package.get("packedDependencies", {}).items():
            pin["version"] = json.loads(run("npm", "view", name, "version", "--json", cwd=build))
            integrity = run("npm", "view", f"{name}@{pin['version']}", "dist.integrity", cwd=build)
            pin["integrity"] = integrity.strip()
        write_json(build / "package.json", package)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(build / name, SOURCE / name)
    elif (build / "package-lock.json").exists():
        run("npm", "ci", *NPM_FLAGS, cwd=build)
    else:
        run("npm", "install", *NPM_FLAGS, cwd=build)
        shutil.copyfile(build / "package-lock.json", SOURCE / "package-lock.json")


def package_root(input_path: str) -> str | None:
    """`node_modules/a/node_modules/@b/c/x.js` -> `node_modules/a/node_modules/@b/c`."""
    parts = input_path.split("/")
    if "node_modules" not in parts:
        return None
    start = len(parts) - 1 - parts[::-1].index("node_modules")
    length = 3 if parts[start + 1].startswith("@") else 2
    return "/".join(parts[: start + length])


def licence_texts(root: Path) -> list[tuple[str, str]]:
    files = sorted(
        path for path in root.iterdir() if path.is_file() and LICENCE_FILE.match(path.name)
    )
    return [
        (path.name, path.read_text(encoding="utf-8", errors="replace").strip()) for path in files
    ]


def write_third_party_licences(build: Path, inputs: list[str], destination: Path) -> None:
    """One file naming every npm package inside the GraphiQL bundle, with its licence text."""
    roots = sorted({root for path in inputs if (root := package_root(path)) is not None})
    sections = [
        "Third-party software in this directory (built by scripts/refresh_assets.py with esbuild).",
    ]
    seen: set[tuple[str, str]] = set()
    for root in roots:
        meta = read_json(build / root / "package.json")
        key = (meta["name"], meta["version"])
        if key in seen:
            continue
        seen.add(key)
        header = f"{meta['name']} {meta['version']} ({meta.get('license', 'see below')})"
        texts = licence_texts(build / root)
        body = "\n\n".join(f"--- {name}\n{text}" for name, text in texts) or (
            f"The package ships no licence file; its package.json declares {meta.get('license')}."
        )
        sections.append(f"{'=' * 78}\n{header}\n{'=' * 78}\n{body}")
    destination.write_text("\n\n".join(sections) + "\n", encoding="utf-8")


def build_graphiql(build: Path, out: Path) -> None:
    metafile = build / "metafile.json"
    run("node", "build.mjs", str(out), str(metafile), cwd=build)
    shutil.copyfile(build / "node_modules" / "graphiql" / "LICENSE", out / "LICENSE")
    write_third_party_licences(
        build, read_json(metafile)["inputs"], out / "THIRD_PARTY_LICENSES.txt"
    )


def copy_swagger_ui(build: Path, out: Path) -> None:
    out.mkdir()
    for name in SWAGGER_UI_FILES:
        shutil.copyfile(build / "node_modules" / "swagger-ui-dist" / name, out / name)


def fetch_packed(build: Path, name: str, pin: dict[str, str]) -> Path:
    """Download one pinned package tarball, check it against the pinned integrity, unpack it."""
    filename = run("npm", "pack", f"{name}@{pin['version']}", "--json", cwd=build)
    tarball = build / json.loads(filename)[0]["filename"]
    algorithm, expected = pin["integrity"].split("-", 1)
    actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if actual != expected:
        sys.exit(f"{tarball.name}: integrity {algorithm}-{actual}, pinned {pin['integrity']}")
    unpacked = build / f"packed-{name}"
    with tarfile.open(tarball) as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked / "package"


def copy_redoc(build: Path, out: Path, pin: dict[str, str]) -> None:
    package = fetch_packed(build, "redoc", pin)
    out.mkdir()
    shutil.copyfile(package / "bundles" / "redoc.standalone.js", out / "redoc.standalone.js")
    shutil.copyfile(package / "LICENSE", out / "LICENSE")


def add_gzip_twins(out: Path) -> None:
    """`x.js.gz` beside `x.js`: compressed once here rather than on every request."""
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.suffix in COMPRESSED_SUFFIXES:
            twin = path.with_name(path.name + ".gz")
            twin.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def manifest(package: dict[str, Any], build: Path, out: Path) -> dict[str, Any]:
    versions: dict[str, dict[str, str]] = {}
    for name in sorted(package["dependencies"]):
        meta = read_json(build / "node_modules" / name / "package.json")
        versions[name] = {"version": meta["version"], "license": meta.get("license", "")}
    for name, pin in sorted(package.get("packedDependencies", {}).items()):
        meta = read_json(build / f"packed-{name}" / "package" / "package.json")
        versions[name] = {"version": pin["version"], "license": meta.get("license", "")}
    files = {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }
    return {
        "generated_by": "scripts/refresh_assets.py from scripts/assets/package.json",
        "packages": versions,
        "sha256": files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="move every pin to its latest")
    upgrade = parser.parse_args().upgrade

    with tempfile.TemporaryDirectory(prefix="task-api-assets-") as temporary:
        build = Path(temporary) / "build"
        out = Path(temporary) / "out"
        build.mkdir()
        out.mkdir()
        for name in SOURCE_FILES:
            if (SOURCE / name).exists():
                shutil.copyfile(SOURCE / name, build / name)
        install(build, upgrade)
        package = read_json(build / "package.json")

        build_graphiql(build, out / "graphiql")
        copy_swagger_ui(build, out / "swagger-ui")
        copy_redoc(build, out / "redoc", package["packedDependencies"]["redoc"])
        add_gzip_twins(out)
        versions = manifest(package, build, out)

        for name in VENDORED:
            shutil.rmtree(STATIC / name, ignore_errors=True)
            shutil.copytree(out / name, STATIC / name)
        write_json(MANIFEST, versions)

    for name, pin in versions["packages"].items():
        print(f"{name} {pin['version']}")
    print(f"{len(versions['sha256'])} files in {STATIC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
