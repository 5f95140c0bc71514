"""Run every benchmark module (benchmarks/bench_*.py) and print and save the figures."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import time
from pathlib import Path

import benchmarks

RESULTS = Path(__file__).resolve().parent.parent / "bench-results"


def discover() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                  if m.name.startswith("bench_"))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", action="append", help="run only these modules (bench_api, ...)")
    modules = {name: importlib.import_module(f"benchmarks.{name}") for name in discover()}
    for module in modules.values():
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    args = parser.parse_args()
    report = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": {}}
    for name, module in modules.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        report["results"][name] = module.run(args)
        print(json.dumps(report["results"][name], indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{int(time.time())}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"report written to {out}")


if __name__ == "__main__":
    main()
