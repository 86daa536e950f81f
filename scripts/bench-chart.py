#!/usr/bin/env python3
"""Draws the relay benchmark's results as an SVG chart, from the tables the benchmark prints.

    scripts/bench-chart.py BENCHMARK_OUTPUT [CHART.svg]     (default: docs/bench-relay.svg)

scripts/bench-relay.sh calls it with the output of its run, so the chart in the README is always
drawn from a run's own numbers. Two panels side by side: events per second draining a backlog,
and the p99 latency from commit to the record being readable in Kafka, per relay and per load.
Python's standard library only: the SVG is written as text.
"""
import html
import math
import re
import sys
from pathlib import Path

COLOURS = {"OutboxBridge": "#2b6cb0", "batch relay": "#dd6b20", "article relay": "#718096",
           "PostgreSQL only": "#38a169", "librdkafka only": "#805ad5"}


def number(cell):
    """`60,809` → 60809.0; `≥ 32,603` → (32603.0, True); `—` → None."""
    text = cell.strip()
    at_least = text.startswith("≥")
    match = re.search(r"[\d,]+(\.\d+)?", text)
    if not match:
        return None, at_least
    return float(match.group(0).replace(",", "")), at_least


def tables(text):
    """Every markdown table in the output, as (header cells, rows of cells)."""
    found, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if current is None:
                current = (cells, [])
                found.append(current)
            elif not all(set(cell) <= set("-: ") for cell in cells):
                current[1].append(cells)
        else:
            current = None
    return found


def colour(name):
    for prefix, value in COLOURS.items():
        if name.startswith(prefix):
            return value
    return "#a0aec0"


def short(name):
    """`batch relay (Python, `batch_relay.py`)` → `batch relay`."""
    return re.sub(r"\s*\(.*?\)", "", name).replace("`", "").strip()


def results(text):
    drains, latencies = [], {}
    for header, rows in tables(text):
        if header[0].startswith("relay (drain") and header[1] == "events/s":
            for row in rows:
                rate, _ = number(row[1])
                if rate is not None:
                    drains.append((short(row[0]), rate))
        elif header[:2] == ["relay", "DDL"]:
            for row in rows:
                if row[0].startswith("librdkafka only"):
                    continue
                p99 = row[3].split("/")[1] if row[3].count("/") == 2 else "—"
                value, at_least = number(p99)
                if value is not None:
                    load = "idle" if row[1].startswith("idle") else row[1].replace(" for ", ", ")
                    latencies.setdefault(load, []).append((short(row[0]), value, at_least))
    return drains, latencies


def bars(x, y, width, height, title, unit, groups, labels=True, decimals=2):
    """One panel on a log scale: groups of (label, value, at_least) bars, each with its value;
    bar labels under the bars (slanted), or none when a legend names the colours."""
    out = [f'<text x="{x + width / 2}" y="{y}" class="title">{html.escape(title)}</text>']
    values = [value for _, items in groups for _, value, _ in items] or [1]
    top = max(values)
    plot_top, plot_bottom = y + 30, y + height - (90 if labels else 40)

    def scale(value):
        return (math.log10(max(value, 0.1)) + 1) / (math.log10(top) + 1.1)

    count = sum(len(items) for _, items in groups) + len(groups) - 1
    slot = width / max(count, 1)
    position = x
    for group_index, (group, items) in enumerate(groups):
        start = position
        for label, value, at_least in items:
            bar_height = max(scale(value) * (plot_bottom - plot_top), 1)
            top_y = plot_bottom - bar_height
            centre = position + slot / 2
            out.append(f'<rect x="{position + slot * 0.1:.1f}" y="{top_y:.1f}" width="{slot * 0.8:.1f}" '
                       f'height="{bar_height:.1f}" fill="{colour(label)}"><title>{html.escape(label)}: '
                       f'{value:,.2f} {unit}</title></rect>')
            shown = f"{'≥' if at_least else ''}{value:,.0f}" if value >= 100 or decimals == 0 else f"{value:.{decimals}f}"
            out.append(f'<text x="{centre:.1f}" y="{top_y - 4:.1f}" class="value">{shown}</text>')
            if labels:
                out.append(f'<text x="{centre:.1f}" y="{plot_bottom + 12:.1f}" class="label" '
                           f'transform="rotate(-30 {centre:.1f} {plot_bottom + 12:.1f})">{html.escape(label)}</text>')
            position += slot
        if group:
            out.append(f'<text x="{(start + position) / 2:.1f}" y="{plot_bottom + 16:.1f}" class="group">'
                       f'{html.escape(group)}</text>')
        if group_index < len(groups) - 1:
            position += slot
    out.append(f'<line x1="{x}" y1="{plot_bottom}" x2="{x + width}" y2="{plot_bottom}" class="axis"/>')
    out.append(f'<text x="{x + width / 2}" y="{y + height}" class="note">{html.escape(unit)}, log scale</text>')
    return out


def legend(x, y, names):
    out = []
    for index, name in enumerate(names):
        out.append(f'<rect x="{x}" y="{y + index * 16}" width="10" height="10" fill="{colour(name)}"/>')
        out.append(f'<text x="{x + 14}" y="{y + index * 16 + 9}" class="legend">{html.escape(name)}</text>')
    return out


def chart(text):
    drains, latencies = results(text)
    if not drains:
        raise SystemExit("bench-chart: no drain table in the benchmark's output")
    machine = next((line[len("machine: "):] for line in text.splitlines() if line.startswith("machine: ")), "")
    panel_width, height, gap = 520, 340, 60
    width = panel_width * 2 + gap + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
           f'viewBox="0 0 {width} {height + 40}" font-family="sans-serif">',
           '<style>.title{font-size:15px;font-weight:bold;text-anchor:middle}.value{font-size:10px;text-anchor:middle}'
           '.label{font-size:10px;text-anchor:end}.legend{font-size:11px}.group{font-size:11px;text-anchor:middle;font-style:italic}'
           '.note{font-size:10px;text-anchor:middle;fill:#4a5568}.axis{stroke:#4a5568}</style>',
           f'<rect width="{width}" height="{height + 40}" fill="white"/>']
    out += bars(20, 24, panel_width, height, "Drain: events per second (higher is better)", "events/s",
                [("", [(label, rate, False) for label, rate in drains])], decimals=0)
    latency_groups = [(load, items) for load, items in latencies.items()]
    right = 20 + panel_width + gap
    out += bars(right, 24, panel_width, height,
                "Commit → in Kafka, p99 (lower is better)", "milliseconds", latency_groups, labels=False)
    relays = list(dict.fromkeys(label for _, items in latency_groups for label, _, _ in items))
    out += legend(right + 8, 44, relays)
    if machine:
        out.append(f'<text x="{width / 2}" y="{height + 32}" class="note">{html.escape(machine)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    text = Path(sys.argv[1]).read_text(encoding="utf-8")
    target = Path(sys.argv[2] if len(sys.argv) == 3 else "docs/bench-relay.svg")
    target.write_text(chart(text), encoding="utf-8")
    print(f"bench-chart: wrote {target}")


if __name__ == "__main__":
    main()
