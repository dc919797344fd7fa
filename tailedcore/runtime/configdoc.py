"""``config/README.md``, generated from the config schema so that it cannot drift from it.

    python -m tailedcore.runtime.configdoc > config/README.md

A test checks that the file equals what this module renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _resolve(node: dict, schema: dict) -> dict:
    if "$ref" in node:
        target = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _allowed(node: dict, schema: dict) -> str:
    node = _resolve(node, schema)
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(_allowed(option, schema) for option in node[key])
    kind = node.get("type", "object" if "properties" in node else "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    bounds = []
    for word, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if word in node:
            bounds.append(f"{sign} {node[word]}")
    if kind == "array" and "items" in node:
        kind = f"list of {_allowed(node['items'], schema)}"
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _default(node: dict, schema: dict) -> str:
    node = _resolve(node, schema)
    return f"`{json.dumps(node['default'])}`" if "default" in node else ""


def _text(node: dict, schema: dict) -> str:
    return " ".join(str(_resolve(node, schema).get("description", "")).split())


def _rows(properties: dict, schema: dict, prefix: str) -> list[str]:
    rows = []
    for name, node in properties.items():
        node = _resolve(node, schema)
        key = f"{prefix}{name}"
        if "properties" in node and node.get("type", "object") == "object":
            rows.append(f"| `{key}` | object | | {_text(node, schema)} |")
            rows += _rows(node["properties"], schema, f"{key}.")
        else:
            rows.append(f"| `{key}` | {_allowed(node, schema)} | {_default(node, schema)} | {_text(node, schema)} |")
            items = node.get("items", {})
            if node.get("type") == "array" and "properties" in items:  # a list of blocks: each block's keys
                rows += _rows(items["properties"], schema, f"{key}[].")
    return rows


def render(schema_path: str | Path = SCHEMA) -> str:
    schema = yaml.safe_load(Path(schema_path).read_text())
    lines = [
        "# Configuration",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` by",
        "`python -m tailedcore.runtime.configdoc > config/README.md`; a test checks that the two agree.",
        "Unknown keys are errors. A `--configfile` replaces `config/config.yaml`.",
        "",
        _text(schema, schema),
        "",
        "Configs here: `config.yaml` (the paper run), `quickstart.yaml` (synthetic, offline, 2 CPU cores),",
        "`elpv.yaml` (real solar-cell images, offline), `custom.yaml` (a template for your own images),",
        "`noise_sweep.yaml` (an overlay: the noise-ratio sweep).",
        "",
    ]
    for section, node in schema["properties"].items():
        node = _resolve(node, schema)
        lines += [f"## `{section}`", ""]
        if _text(node, schema):
            lines += [_text(node, schema), ""]
        lines += ["| key | allowed | default | what |", "|---|---|---|---|"]
        if section == "datasets":
            lines += _rows(node["additionalProperties"]["properties"], schema, "datasets.<name>.")
        elif "properties" in node:
            lines += _rows(node["properties"], schema, f"{section}.")
        else:
            lines.append(f"| `{section}` | {_allowed(node, schema)} | {_default(node, schema)} | |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
