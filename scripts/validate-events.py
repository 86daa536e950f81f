#!/usr/bin/env python3
"""Validates captured events against sql/event.schema.json (JSON Schema draft 2020-12).

usage: validate-events.py BASE_URL DB[:SCHEMA] ...

Reads every event_data of <SCHEMA>.schema_changes (default schema: platform) in each database
through psql and validates it. Exits 1 on any invalid event or when no event was found at all.
"""
import json
import pathlib
import subprocess
import sys

import jsonschema

root = pathlib.Path(__file__).resolve().parent.parent
schema = json.loads((root / "sql" / "event.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

base_url, targets = sys.argv[1], sys.argv[2:]
total = bad = 0
kinds = {}
for target in targets:
    db, _, pg_schema = target.partition(":")
    pg_schema = pg_schema or "platform"
    quoted = '"' + pg_schema.replace('"', '""') + '"'
    out = subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", f"{base_url}/{db}",
         "-c", f"SELECT event_data FROM {quoted}.schema_changes ORDER BY id"],
        check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        total += 1
        key = f"{event.get('kind')}:{event.get('command')}:{event.get('object_type')}"
        kinds[key] = kinds.get(key, 0) + 1
        errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
        if errors:
            bad += 1
            print(f"INVALID event in {db}: {json.dumps(event)[:300]}")
            for err in errors[:5]:
                print(f"    at {'/'.join(map(str, err.path)) or '<root>'}: {err.message[:200]}")

print(f"json-schema: {total - bad}/{total} events valid across {len(targets)} databases")
for key in sorted(kinds):
    print(f"    {kinds[key]:4d}  {key}")
sys.exit(1 if bad or total == 0 else 0)
