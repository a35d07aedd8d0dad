"""manage.py tune_vae: choose the VAE configuration on validation users inside each fold's training users."""

import json
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommender.management.presets import preset_names
from recommender.selectors import rating_snapshot


def parse_candidate(text: str, presets) -> tuple[str, object]:
    """NAME=PRESET[:key=value,key=value] (values read as JSON when they parse, else as text) -> (name, config)."""
    from recommender.ml import vae

    name, _, spec = text.partition("=")
    preset_name, _, overrides_text = spec.partition(":")
    if not name or not preset_name:
        raise CommandError(f"--candidate {text!r}: expected NAME=PRESET[:key=value,...]")
    if preset_name not in presets:
        raise CommandError(
            f"--candidate {text!r}: unknown preset {preset_name!r}; choose from {', '.join(sorted(presets))}"
        )
    overrides = {}
    for item in filter(None, overrides_text.split(",")):
        key, equals, raw = item.partition("=")
        if not equals:
            raise CommandError(f"--candidate {text!r}: {item!r} is not key=value")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    try:
        return name, vae.preset(preset_name, **overrides)
    except (TypeError, ValueError) as error:
        raise CommandError(f"--candidate {text!r}: {error}") from error


class Command(BaseCommand):
    help = (
        "Compare VAE configurations on validation users split off each fold's training users (never on the "
        "held-out users evaluate_model reports); each fold picks the best validation NDCG@100 within the taste "
        "limits (flip@10 <= 0.30, disliked@20 <= 0.08)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--presets",
            default="default,default-vae-alone,value-blind-2026-11",
            help="comma-separated presets to compare (default: %(default)s)",
        )
        parser.add_argument(
            "--candidate",
            action="append",
            default=[],
            metavar="NAME=PRESET[:key=value,...]",
            help="a preset with changed fields, e.g. composite=default:prior=composite (repeatable)",
        )
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--output", help="JSON file for the results (default: var/evaluations/tuning-<timestamp>.json)"
        )

    def handle(self, *args, presets, candidate, folds, max_folds, seed, output, verbosity=1, **options):
        from recommender.ml import tuning, vae

        if folds < 2:
            raise CommandError("--folds must be at least 2")
        names = preset_names(presets)
        candidates = {name: vae.preset(name, seed=seed) for name in names}
        for text in candidate:
            name, config = parse_candidate(text, vae.PRESETS)
            candidates[name] = config.replace(seed=seed)
        if not candidates:
            raise CommandError("nothing to compare: give --presets or --candidate")
        snapshot = rating_snapshot()
        if snapshot.matrix.shape[0] < folds * 2:
            raise CommandError(f"only {snapshot.matrix.shape[0]} users have ratings: too few for {folds} folds")

        results = tuning.tune(
            snapshot.matrix,
            candidates,
            n_folds=folds,
            seed=seed,
            max_folds=max_folds,
            log=self.stdout.write if verbosity else None,
        )
        results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "data": snapshot.stats(), **results}
        self.stdout.write("\n" + format_tuning(results))
        path = (
            Path(output)
            if output
            else Path(settings.VAR_DIR) / "evaluations" / f"tuning-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2))
        self.stdout.write(self.style.SUCCESS(f"\nResults written to {path}"))


def format_tuning(results) -> str:
    """Markdown: validation NDCG@100, flip@10, disliked@20 per candidate (mean over folds) and folds won."""
    from recommender.ml.tuning import SELECTION_METRIC, TASTE_LIMITS

    columns = (SELECTION_METRIC, *TASTE_LIMITS, "rmse")
    lines = [
        "| candidate | " + " | ".join(f"validation {c}" for c in columns) + " | folds won |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for name, wins in results["wins"].items():
        cells = []
        for column in columns:
            values = [fold["validation"][name].get(column) for fold in results["per_fold"]]
            values = [v for v in values if v is not None]
            cells.append(f"{sum(values) / len(values):.4f}" if values else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {wins} of {len(results['per_fold'])} |")
    verdict = "every fold" if results["unanimous"] else "most folds"
    return "\n".join(lines) + f"\n\nChosen: {results['chosen']} (won {verdict})."
