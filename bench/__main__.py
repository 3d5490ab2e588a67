"""Run the benchmarks: `python -m bench` runs them all, `python -m bench filters sandbox` runs the named ones.

Each room has a module here with a `main()` that prints its figures and the ratios against their targets.
Benchmarks never assert: they measure and print, so that noise on a shared machine reads as noise.
"""

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def _modules() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    available = _modules()
    chosen = argv or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        names = ", ".join(available)
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {names}", file=sys.stderr)
        return 2
    for name in chosen:
        print(f"\n=== bench/{name}.py ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"--- {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
