"""`python -m benchmarks run [--suite quick] [--out DIR]`: run the suite and write its report."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import asdict
from pathlib import Path

from . import throughput

SUITES = {
    # Repeats and sizes of the throughput section; the learning sections arrive with issue 5.
    "quick": {"repeats": 5, "single_steps": 100_000, "vector_steps": 200, "sync_steps": 20},
    "full": {"repeats": 15, "single_steps": 300_000, "vector_steps": 600, "sync_steps": 60},
}


def run(suite: str, out: Path) -> str:
    """Runs a suite, writes `throughput.json` and `report.md` under `out`, returns the report."""
    import tokengym

    results = throughput.measure(**SUITES[suite])
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "suite": suite,
        "tokengym": tokengym.__version__,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "results": [asdict(r) for r in results.values()],
    }
    (out / "throughput.json").write_text(json.dumps(record, indent=2) + "\n")
    report = f"# tokengym benchmark report ({suite})\n\n## Environment throughput\n\n"
    report += throughput.table(results) + "\n"
    (out / "report.md").write_text(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a suite and write its report")
    run_parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    run_parser.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    args = parser.parse_args(argv)
    print(run(args.suite, args.out))
    print(f"results and report written to {args.out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
