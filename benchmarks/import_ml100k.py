"""Time `import_movielens` on the real MovieLens 100K into a fresh SQLite database, several runs, median.

.venv/bin/python benchmarks/import_ml100k.py [PATH_TO_ML_100K] [--runs 5]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default=os.environ.get("MOVIELENS_PATH"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.path:
        parser.error("no MovieLens data: pass its folder or set MOVIELENS_PATH")
    seconds = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3", "DJANGO_DEBUG": "true"}
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            # Time the import itself in-process, as the command reports it (interpreter start-up excluded).
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "manage.py", "import_movielens", args.path],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            wall = time.perf_counter() - started
            reported = float(out.strip().splitlines()[-1].split()[1])
            seconds.append({"import_s": reported, "command_wall_s": round(wall, 2)})
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": seconds,
        "median_import_s": statistics.median(r["import_s"] for r in seconds),
        "median_command_wall_s": statistics.median(r["command_wall_s"] for r in seconds),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
