"""Derive the operator's Restate configuration schema from a real restate-server.

The operator must refuse a configuration that Restate would refuse, with Restate's own words,
but its image has no Restate binary and it never calls out. So the rules are data: for every
key that ``restate-server --dump-config`` prints, this module writes a handful of probe
values into a configuration file, runs ``--dump-config`` on it (inside a loopback-only
network namespace, like every Restate process here), and records which TOML value types
Restate accepts and the exact text of its error for the others. The result is written to
``restate_op/children/restate_schema_data.py`` and read by ``restate_op.children.restate_schema``.

    python -m e2e.restate_schema_probe            # regenerate the data module
    python -m e2e.restate_schema_probe --check    # fail if it is stale

Keys whose errors do not follow serde's plain ``invalid type`` / ``invalid value`` pattern
(untagged and tagged enums such as ``[metadata-client]`` or retry policies, replication
properties, ranges) are left out: the operator does not check what it cannot predict.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.restate_netns import LoopbackNetns, RestateBinaries

REPO = Path(__file__).resolve().parent.parent
DATA_MODULE = REPO / "restate_op" / "children" / "restate_schema_data.py"
ERROR_PREFIX = "configuration loading error: "

#: One probe value per TOML type the operator distinguishes (names match restate_schema).
PROBES: Mapping[str, str] = {
    "string": '"probe?"',
    "integer": "7",
    "zero": "0",
    "negative": "-1",
    "huge": "9223372036854775807",
    "float": "0.5",
    "boolean": "true",
    "array": "[]",
    "table": "{}",
}
#: Extra probes for keys whose default is an array: the type of the elements.
ITEM_PROBES: Mapping[str, str] = {"items-string": '["probe?"]', "items-integer": "[7]"}

_INVALID_TYPE = re.compile(r"^invalid type: found .+?, expected (?P<expected>.+)$", re.S)
_INVALID_VALUE = re.compile(r"^invalid value .+?, expected (?P<expected>.+)$", re.S)
_UNKNOWN_VARIANT = re.compile(r"^unknown variant: found `.*?`, expected `(?P<one_of>.+)`$", re.S)
BYTE_COUNT = "a human-readable byte count string"
_FOR_KEY = re.compile(r" for key \".*$", re.S)


@dataclass(frozen=True)
class DumpResult:
    """What ``restate-server --dump-config`` said about one configuration."""

    ok: bool
    stdout: str
    error: str  # Restate's message without the "[RT0002] configuration loading error: " prefix


def restate_error(stderr: str) -> str:
    """Restate's configuration error from its stderr, without the code prefix or key suffix."""
    for line in stderr.splitlines():
        if ERROR_PREFIX in line:
            start = stderr.index(line) + line.index(ERROR_PREFIX) + len(ERROR_PREFIX)
            return _FOR_KEY.sub("", stderr[start:].strip())
    return stderr.strip()


def dump_config(
    netns: LoopbackNetns,
    server: Path,
    config_text: str | None,
    work_dir: Path,
    env: Mapping[str, str] | None = None,
) -> DumpResult:
    """Run ``restate-server --dump-config`` inside ``netns`` on ``config_text`` (if any).

    The environment is exactly ``env`` (plus PATH): nothing from the caller leaks in.
    """
    argv = [str(server), "--dump-config"]
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        if config_text is not None:
            path = Path(tmp) / "config.toml"
            path.write_text(config_text)
            argv += ["--config-file", str(path)]
        result = netns.run(argv, env={"PATH": "/usr/bin:/bin", **(env or {})}, cwd=Path(tmp))
    if result.returncode == 0:
        return DumpResult(True, result.stdout, "")
    return DumpResult(False, result.stdout, restate_error(result.stderr))


def _leaves(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in doc.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            yield from _leaves(value, path)
        else:
            yield path


def _sections(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in doc.items():
        if isinstance(value, dict):
            path = (*prefix, key)
            yield path
            yield from _sections(value, path)


def _get(doc: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = doc
    for part in path:
        node = node[part]
    return node


def _polymorphic(doc: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """Inside a table with a ``type`` key (a tagged/untagged enum): fields depend on it."""
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
        if isinstance(node, dict) and "type" in node:
            return True
    return False


def _toml_key(path: Sequence[str]) -> str:
    return ".".join(json.dumps(p) if not re.fullmatch(r"[A-Za-z0-9_-]+", p) else p for p in path)


def _config_setting(path: Sequence[str], value: str) -> str:
    """A TOML document setting ``path`` to the TOML literal ``value`` (dotted keys)."""
    return f"{_toml_key(path)} = {value}\n"


def _classify(results: Mapping[str, DumpResult]) -> dict[str, str]:
    """A key's rules from its probe results: only what follows a plain serde pattern.

    ``<type>: "type:<expected>"`` - Restate rejects that TOML type (``invalid type``);
    ``string: "enum:<one of>"`` - strings must be one of these variants;
    ``string: "bytes:<expected>"`` - strings must be a byte count;
    ``zero`` / ``negative`` / ``huge``: ``<expected>`` - integers out of range
    (``invalid value``); ``items-string`` / ``items-integer``: the same for array elements.
    Anything else (untagged enums, ranges, durations' contents) stays unchecked.
    """
    rules: dict[str, str] = {}
    for name, result in results.items():
        if result.ok:
            continue
        invalid_type = _INVALID_TYPE.match(result.error)
        invalid_value = _INVALID_VALUE.match(result.error)
        variant = _UNKNOWN_VARIANT.match(result.error)
        if invalid_type:
            rules[name] = "type:" + invalid_type["expected"]
        elif name in ("string", "items-string") and variant:
            rules[name] = "enum:" + variant["one_of"]
        elif name == "string" and invalid_value and invalid_value["expected"] == BYTE_COUNT:
            rules[name] = "bytes:" + invalid_value["expected"]
        elif name in ("zero", "negative", "huge") and invalid_value:
            rules[name] = invalid_value["expected"]
    if "integer" in rules:  # integers are the wrong type: the range probes say nothing more
        for name in ("zero", "negative", "huge"):
            rules.pop(name, None)
    return rules


def probe_schema(netns: LoopbackNetns, server: Path, work_dir: Path) -> dict[str, Any]:
    """Probe every key of the default configuration; returns the data module's content."""
    defaults = dump_config(netns, server, None, work_dir)
    if not defaults.ok:
        raise RuntimeError(f"restate-server --dump-config failed: {defaults.error}")
    doc = tomllib.loads(defaults.stdout)
    version = netns.run([str(server), "--version"], env={"PATH": "/usr/bin:/bin"}).stdout.strip()

    jobs: dict[tuple[tuple[str, ...], str], str] = {}
    leaves = [p for p in _leaves(doc) if not _polymorphic(doc, p)]
    for path in leaves:
        probes = {**PROBES, **(ITEM_PROBES if isinstance(_get(doc, path), list) else {})}
        for name, literal in probes.items():
            jobs[(path, name)] = _config_setting(path, literal)
    sections = [p for p in _sections(doc) if not _polymorphic(doc, (*p, "x"))]
    for path in sections:
        jobs[(path, "section")] = _config_setting(path, "7")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            key: pool.submit(dump_config, netns, server, text, work_dir)
            for key, text in jobs.items()
        }
        results = {key: future.result() for key, future in futures.items()}

    keys: dict[str, dict[str, str]] = {}
    for path in leaves:
        rules = _classify({name: r for (p, name), r in results.items() if p == path})
        if rules:
            keys[".".join(path)] = rules
    section_types: dict[str, str] = {}
    for path in sections:
        match = _INVALID_TYPE.match(results[(path, "section")].error)
        if match:
            section_types[".".join(path)] = match["expected"]
    return {"version": version, "keys": keys, "sections": section_types}


def render(schema: Mapping[str, Any]) -> str:
    """The data module's source text."""
    lines = [
        "# ruff: noqa: E501",
        f'"""Restate configuration rules probed from {schema["version"]}. GENERATED, do not edit.',
        "",
        "Regenerate with ``python -m e2e.restate_schema_probe`` (runs restate-server",
        "--dump-config in a loopback-only network namespace). KEYS: dotted key -> rules",
        "(see e2e.restate_schema_probe._classify; rule names sharing a value are joined by",
        "commas). SECTIONS: table key -> what Restate expects there instead of a value.",
        '"""',
        "",
        "from typing import Final",
        "",
        f"RESTATE_VERSION: Final = {json.dumps(schema['version'])}",
        "",
        "KEYS: Final[dict[str, dict[str, str]]] = {",
    ]
    for key, rules in sorted(schema["keys"].items()):
        lines.append(f"    {json.dumps(key)}: {json.dumps(_grouped(rules))},")
    lines += ["}", "", "SECTIONS: Final[dict[str, str]] = {"]
    for key, expected in sorted(schema["sections"].items()):
        lines.append(f"    {json.dumps(key)}: {json.dumps(expected)},")
    lines += ["}", ""]
    return "\n".join(lines)


def _grouped(rules: Mapping[str, str]) -> dict[str, str]:
    """Rules with equal values share one entry, their names joined by commas."""
    names: dict[str, list[str]] = {}
    for name, value in sorted(rules.items()):
        names.setdefault(value, []).append(name)
    return {",".join(group): value for value, group in sorted(names.items(), key=lambda i: i[1])}


def _format(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--quiet", str(path)], check=False, cwd=REPO
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate (or --check) restate_op/children/restate_schema_data.py."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the module is stale")
    args = parser.parse_args(argv)
    binaries = RestateBinaries.locate()
    with tempfile.TemporaryDirectory() as tmp, LoopbackNetns() as netns:
        schema = probe_schema(netns, binaries.server, Path(tmp))
        candidate = Path(tmp) / "restate_schema_data.py"
        candidate.write_text(render(schema))
        _format(candidate)
        text = candidate.read_text()
    if args.check:
        if DATA_MODULE.read_text() != text:
            print(f"stale: {DATA_MODULE} (run python -m e2e.restate_schema_probe)")
            return 1
        return 0
    DATA_MODULE.write_text(text)
    print(f"wrote {DATA_MODULE}: {len(schema['keys'])} keys, {len(schema['sections'])} sections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
