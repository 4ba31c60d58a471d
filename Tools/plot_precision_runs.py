#!/usr/bin/env python3
"""Draws the fp32 and bf16 training runs of one recipe in one chart (SVG): the training loss and
the validation accuracy of every run against the epoch, fp32 in blue and bf16 in orange, and prints
the final accuracies with their means and spreads.

Usage: python3 Tools/plot_precision_runs.py --fp32 RUN RUN RUN --bf16 RUN RUN RUN --output chart.svg
Each RUN is a run folder of `envnet train` (its log.jsonl is read). Render with
`rsvg-convert -o chart.png chart.svg`.
"""
import argparse
import json
import os
import statistics

WIDTH, HEIGHT, MARGIN = 900, 380, 60
COLORS = {"fp32": "#1f5fa8", "bf16": "#d9731a"}


def read(folder):
    with open(os.path.join(folder, "log.jsonl")) as file:
        return [json.loads(line) for line in file if line.strip()]


def polyline(points, color, dash=""):
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.6" stroke-opacity="0.85"{extra} points="{path}"/>'


def panel(x0, title, runs, key, low, high, epochs, label):
    width = (WIDTH - 3 * MARGIN) / 2
    top, bottom = MARGIN, HEIGHT - MARGIN
    parts = [f'<text x="{x0 + width / 2}" y="{top - 20}" text-anchor="middle" font-size="15">{title}</text>',
             f'<rect x="{x0}" y="{top}" width="{width}" height="{bottom - top}" fill="none" stroke="#888"/>']
    for step in range(5):
        value = low + (high - low) * step / 4
        y = bottom - (bottom - top) * step / 4
        parts.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" font-size="11">{label(value)}</text>')
    for epoch in range(0, epochs + 1, 30):
        x = x0 + width * epoch / epochs
        parts.append(f'<text x="{x}" y="{bottom + 16}" text-anchor="middle" font-size="11">{epoch}</text>')
    parts.append(f'<text x="{x0 + width / 2}" y="{bottom + 34}" text-anchor="middle" font-size="12">epoch</text>')
    for precision, records in runs:
        points = [(x0 + width * r["epoch"] / epochs,
                   bottom - (bottom - top) * (min(max(r[key], low), high) - low) / (high - low))
                  for r in records if key in r]
        parts.append(polyline(points, COLORS[precision]))
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", nargs="+", required=True)
    parser.add_argument("--bf16", nargs="+", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--title", default="ESC-10 fold 5, seed recipe, fc 1536: fp32 (blue) and bf16 (orange)")
    args = parser.parse_args()
    runs = [("fp32", read(f)) for f in args.fp32] + [("bf16", read(f)) for f in args.bf16]
    epochs = max(r["epoch"] for _, records in runs for r in records)
    top_loss = max(r["loss"] for _, records in runs for r in records)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 30}" font-family="sans-serif">',
             f'<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="16">{args.title}</text>']
    parts += panel(MARGIN, "training loss", runs, "loss", 0, top_loss, epochs, lambda v: f"{v:.1f}")
    parts += panel(2 * MARGIN + (WIDTH - 3 * MARGIN) / 2, "fold-5 clip accuracy (voting)", runs, "validationAccuracy", 0.4, 1.0,
                   epochs, lambda v: f"{100 * v:.0f} %")
    parts.append("</svg>")
    with open(args.output, "w") as file:
        file.write("\n".join(parts) + "\n")
    for precision in ("fp32", "bf16"):
        finals = [100 * records[-1]["validationAccuracy"] for p, records in runs if p == precision and "validationAccuracy" in records[-1]]
        spread = statistics.stdev(finals) if len(finals) > 1 else 0
        print(f"{precision}: final accuracies {', '.join(f'{a:.2f} %' for a in finals)}; mean {statistics.mean(finals):.2f} %, "
              f"standard deviation {spread:.2f}, range {min(finals):.2f}-{max(finals):.2f} %")


if __name__ == "__main__":
    main()
