#!/usr/bin/env python3
"""Checks that the deployment kit lists exactly the settings the binary has.

The source of truth is `ServeConfig` in crates/platform/src/config.rs: every
`env = "EMBER_..."` there, with its default. This script fails when

- deploy/marketplace.json does not list every one of them under `environment`
  (with the same default, a pattern the default matches, and the secret and
  required flags), or lists one the binary does not have;
- the Helm chart (templates/_helpers.tpl) does not set every one of them, or
  always sets an EMBER_* variable the binary does not have (Ember refuses to
  start on an unknown EMBER_* variable; planned ones must be guarded by `if`),
  or a default in values.yaml differs from the binary's;
- docs/operations.md does not mention every one of them in its settings table;
- values.yaml does not parse or does not satisfy values.schema.json (only when
  PyYAML and jsonschema are installed).

Run from anywhere: `python3 deploy/check_kit.py`. Standard library only.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "crates/platform/src/config.rs"
MARKETPLACE = ROOT / "deploy/marketplace.json"
CHART = ROOT / "deploy/helm/ember"
OPERATIONS = ROOT / "docs/operations.md"

errors = []


def error(msg):
    errors.append(msg)


def serve_settings():
    """{EMBER_NAME: default or None} from the `ServeConfig` struct."""
    text = CONFIG.read_text()
    start = text.index("pub struct ServeConfig")
    body = text[start : text.index("\n}\n", start)]
    settings = {}
    for attr in re.findall(r"#\[arg\((.*?)\)\]", body, re.S):
        env = re.search(r'env\s*=\s*"((?:EMBER_[A-Z0-9_]+)|OPENTELEMETRY_COLLECTOR_URL)"', attr)
        if not env:
            continue
        default = None
        m = re.search(r'default_value\s*=\s*"([^"]*)"', attr)
        if m:
            default = m.group(1)
        m = re.search(r"default_value_t\s*=\s*([^,)]+)", attr)
        if m:
            expr = m.group(1).strip().replace("_", "")
            if expr in ("true", "false"):
                default = expr
            elif re.fullmatch(r"[0-9 *+]+", expr):
                default = str(eval(expr))  # integer arithmetic only, checked above
            else:
                default = expr
        settings[env.group(1)] = default
    if not settings:
        error(f"no EMBER_* settings found in {CONFIG}")
    return settings


def check_marketplace(settings):
    doc = json.loads(MARKETPLACE.read_text())
    listed = {e["name"]: e for e in doc.get("environment", [])}
    for name, default in settings.items():
        entry = listed.get(name)
        if entry is None:
            error(f"marketplace.json: {name} is missing from environment")
            continue
        for key in ("description", "pattern", "secret", "required", "default"):
            if key not in entry:
                error(f"marketplace.json: {name} has no {key!r}")
        if entry.get("default") != default:
            error(f"marketplace.json: {name} default {entry.get('default')!r}, config.rs says {default!r}")
        pattern = entry.get("pattern")
        sample = entry.get("imageDefault", default)
        if pattern and sample is not None and not entry.get("required"):
            if not re.fullmatch(pattern, sample):
                error(f"marketplace.json: {name} default {sample!r} does not match its pattern")
        if entry.get("status") != "supported":
            error(f"marketplace.json: {name} should have status 'supported'")
    for name in listed:
        if name not in settings:
            error(f"marketplace.json: {name} is listed as supported but is not a setting in config.rs")
    for entry in doc.get("plannedEnvironment", []):
        if entry.get("name") in settings:
            error(f"marketplace.json: {entry['name']} now exists in config.rs; move it to environment")
        if entry.get("supported") is not False:
            error(f"marketplace.json: planned {entry.get('name')} must say supported: false")


def check_chart(settings):
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    env_block = helpers[helpers.index('define "ember.env"') :]
    # A variable set inside `{{- if ... }}` is optional; outside, it is always set.
    always, optional, depth = set(), set(), 0
    for line in env_block.splitlines():
        if re.search(r"{{-?\s*(if|with|range)\b", line):
            depth += 1
        elif re.search(r"{{-?\s*end\b", line):
            depth -= 1
            if depth < 0:
                break
        m = re.search(r"- name: ([A-Z0-9_]+)", line)
        if m:
            (optional if depth > 0 else always).add(m.group(1))
    for name in settings:
        if name not in always | optional:
            error(f"helm chart: {name} is not set by templates/_helpers.tpl (ember.env)")
    for name in always:
        if name.startswith("EMBER_") and name not in settings:
            error(f"helm chart: {name} is always set but the binary does not know it (it would not start)")
    try:
        import yaml  # type: ignore
    except ImportError:
        print("check_kit: PyYAML not installed; values.yaml not parsed")
        return
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    yaml.safe_load((CHART / "Chart.yaml").read_text())
    # The chart's defaults are the binary's: `- name: EMBER_X` / `value: {{ $c.key ...`.
    for name, key in re.findall(r"- name: (EMBER_[A-Z0-9_]+)\s*\n\s*value: \{\{ \$c\.(\w+)", env_block):
        if name not in settings or key not in values.get("config", {}):
            error(f"helm chart: {name} reads config.{key}, which values.yaml does not define")
            continue
        ours, theirs = values["config"][key], settings[name]
        if isinstance(ours, bool):
            ours = "true" if ours else "false"
        if ours is not None and theirs is not None and str(ours) != theirs:
            error(f"values.yaml: config.{key} is {ours!r}, the binary's default for {name} is {theirs!r}")
    schema = json.loads((CHART / "values.schema.json").read_text())
    try:
        import jsonschema  # type: ignore
    except ImportError:
        print("check_kit: jsonschema not installed; values.yaml not validated")
        return
    try:
        jsonschema.validate(values, schema, cls=jsonschema.Draft7Validator)
    except jsonschema.ValidationError as e:
        error(f"values.yaml does not satisfy values.schema.json: {e.message}")


def check_operations(settings):
    text = OPERATIONS.read_text()
    for name in settings:
        if not re.search(rf"^\|\s*`{name}`", text, re.M):
            error(f"docs/operations.md: {name} is missing from the settings table")


def main():
    settings = serve_settings()
    check_marketplace(settings)
    check_chart(settings)
    check_operations(settings)
    for e in errors:
        print(f"check_kit: {e}", file=sys.stderr)
    if errors:
        print(f"check_kit: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_kit: {len(settings)} settings consistent across config.rs, marketplace.json, the chart and docs/operations.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
