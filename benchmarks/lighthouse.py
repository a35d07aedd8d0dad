"""Lighthouse (mobile) scores of the main pages, served as in production, with Debian's Chromium.

    .venv/bin/python benchmarks/lighthouse.py --lighthouse PATH/TO/lighthouse [--data ML100K_FOLDER] [--epochs N]
                                              [--workdir DIR --keep] [--json OUT]

Lighthouse is a Node tool: install it outside the project (`npm install --prefix ~/lighthouse lighthouse@12`, then
`--lighthouse ~/lighthouse/node_modules/.bin/lighthouse`); it drives the Chromium named by CHROME_PATH (default
/usr/bin/chromium) and downloads nothing. The site is set up as benchmarks/http_load.py does it (production
settings on plain HTTP, gunicorn, ML-100K imported, a VAE trained and activated, a logged-in session), then each
page is audited once with Lighthouse's default mobile emulation and simulated throttling:

- "home (guest)": `/`, the top-rated movies;
- "recommendations": `/` with the session cookie;
- "catalogue": `/movies/`;
- "movie page": the most rated movie's page, as a guest.

Reported per page: the four category scores (0-100) and the audits that lost points.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's packages must import

from benchmarks.http_load import (
    default_data,
    free_port,
    prepare_site,
    site_environment,
    start_gunicorn,
    stop,
    wait_until_serving,
)
from benchmarks.measure import print_results, work_folder

CATEGORIES = ("performance", "accessibility", "best-practices", "seo")


def audit(lighthouse: str, url: str, cookie: str | None, out: Path) -> dict:
    """One Lighthouse run; the category scores and the audits that lost points."""
    chrome = os.environ.get("CHROME_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    args = [
        lighthouse,
        url,
        "--quiet",
        "--output=json",
        f"--output-path={out}",
        f"--only-categories={','.join(CATEGORIES)}",
        "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
    ]
    if cookie:
        args.append(f"--extra-headers={json.dumps({'Cookie': cookie})}")
    for _attempt in range(3):  # Lighthouse sometimes loses the trace of a load (NO_NAVSTART): run it again
        done = subprocess.run(
            args, env={**os.environ, "CHROME_PATH": chrome}, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode == 0 and out.exists():
            break
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"lighthouse failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    report = json.loads(out.read_text())
    scores = {name: round(100 * (report["categories"][name]["score"] or 0)) for name in CATEGORIES}
    audits = report["audits"]
    lost = sorted(
        {
            ref["id"]
            for name in CATEGORIES
            for ref in report["categories"][name]["auditRefs"]
            if ref.get("weight", 0) > 0
            and (audits[ref["id"]].get("score") is not None)
            and audits[ref["id"]]["score"] < 1
        }
    )
    return {**scores, "lost_points": lost, "lighthouse": report.get("lighthouseVersion")}


def run(*, lighthouse: str, data: Path, workdir: Path, epochs: int | None, log=print) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        raise ValueError(f"{workdir} is not empty: the benchmark needs a fresh database")
    env = site_environment(workdir)
    site = prepare_site(data, epochs, env, log)
    pages = {
        "home (guest)": ("/", None),
        # Lighthouse's extra Cookie header replaces the browser's cookies: it carries a CSRF secret too, so the
        # page's own POST (the history of what it showed) passes the CSRF check as in a real browser.
        "recommendations": ("/", f"{site['cookie']}; csrftoken={secrets.token_hex(16)}"),
        "catalogue": ("/movies/", None),
        "movie page": (f"/movies/{site['movie_id']}/", None),
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_gunicorn(workdir, env, port)
    try:
        wait_until_serving(server, base, workdir)
        results = {}
        for index, (name, (path, cookie)) in enumerate(pages.items()):
            log(f"lighthouse: {name} ({path})")
            results[name] = {"path": path, **audit(lighthouse, base + path, cookie, workdir / f"report-{index}.json")}
    finally:
        stop(server)
    return {"pages": results, "form_factor": "mobile (Lighthouse default emulation, simulated throttling)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lighthouse", required=True, help="the lighthouse command (node_modules/.bin/lighthouse)")
    parser.add_argument("--data", type=Path, default=default_data(), help="MovieLens folder (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, help="empty or new folder for the site (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--epochs", type=int, help="train_vae --max-epochs (default: the preset's)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this file")
    args = parser.parse_args()
    log = functools.partial(print, file=sys.stderr)
    with work_folder(args.workdir, prefix="lighthouse_", keep=args.keep, log=log) as workdir:
        results = run(lighthouse=args.lighthouse, data=args.data, workdir=workdir, epochs=args.epochs, log=log)
    print_results(results, args.json)


if __name__ == "__main__":
    main()
