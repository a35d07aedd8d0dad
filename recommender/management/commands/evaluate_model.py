"""manage.py evaluate_model: cross-validate the VAE against baselines on the ratings in the database."""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommender.management.presets import preset_names
from recommender.ml.baselines import BASELINE_NAMES, EASE_L2_GRID, PRODUCT_ITEM_DAMPING, PRODUCT_USER_DAMPING
from recommender.ml.movielens import read_official_splits
from recommender.selectors import rating_snapshot


class Command(BaseCommand):
    help = (
        "Evaluate VAE configurations next to popularity, bias and EASE baselines on the ratings in the database: "
        "K folds of held-out users, 80%% of each one's ratings folded in and 20%% hidden (see README). "
        "The EASE baselines pick their l2 on validation users drawn from each fold's training users."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--presets",
            default="default",
            help="comma-separated VAE presets to evaluate, '' for none (default: %(default)s)",
        )
        parser.add_argument(
            "--baselines",
            default=",".join(BASELINE_NAMES),
            help="comma-separated baselines to evaluate, '' for none (default: %(default)s)",
        )
        parser.add_argument("--folds", type=int, default=5, help="number of held-out-user folds (default: %(default)s)")
        parser.add_argument("--max-folds", type=int, default=None, help="run only the first N folds (quick look)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-epochs", type=int, default=None, help="cap the VAE's epochs (quick runs)")
        parser.add_argument(
            "--ease-lambda",
            type=float,
            default=None,
            help="fixed l2 for every EASE baseline, no tuning (default: tuned per fold over "
            + ", ".join(f"{l2:g}" for l2 in EASE_L2_GRID)
            + ")",
        )
        parser.add_argument(
            "--splits", metavar="ML100K_FOLDER", help="also RMSE/MAE on ML-100K's official u1-u5 splits"
        )
        parser.add_argument("--output", help="JSON file for the results (default: var/evaluations/<timestamp>.json)")

    def handle(
        self,
        *args,
        presets,
        baselines,
        folds,
        max_folds,
        seed,
        max_epochs,
        ease_lambda,
        splits,
        output,
        verbosity=1,
        **options,
    ):
        from recommender.ml import baselines as baseline_models
        from recommender.ml import evaluation, vae

        if folds < 2:
            raise CommandError("--folds must be at least 2")
        if ease_lambda is not None and ease_lambda <= 0:
            raise CommandError("--ease-lambda must be positive")
        names = preset_names(presets)
        baseline_names = [name for name in baselines.split(",") if name]
        unknown = [name for name in baseline_names if name not in BASELINE_NAMES]
        if unknown:
            raise CommandError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINE_NAMES)}")
        if not names and not baseline_names:
            raise CommandError("nothing to evaluate: give at least one preset or baseline")
        configs = {
            name: vae.preset(name, seed=seed, **({"max_epochs": max_epochs} if max_epochs else {})) for name in names
        }
        snapshot = rating_snapshot()
        if snapshot.matrix.shape[0] < folds * 2:
            raise CommandError(
                f"only {snapshot.matrix.shape[0]} users have ratings: too few for {folds} folds; "
                "import a MovieLens release first"
            )

        log = self.stdout.write if verbosity else None
        recommenders = {
            **baseline_models.baseline_factories(baseline_names, fixed_l2=ease_lambda, seed=seed),
            **{f"vae:{name}": vae.recommender_factory(config) for name, config in configs.items()},
        }
        cross_validation = evaluation.evaluate(
            snapshot.matrix,
            recommenders,
            n_folds=folds,
            seed=seed,
            log=log,
            max_folds=max_folds,
            rating_bounds=evaluation.rating_scale(snapshot.matrix),
        )
        results = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "data": snapshot.stats(),
            "configs": {name: config.to_dict() for name, config in configs.items()},
            "baselines": {
                "names": baseline_names,
                "ease_l2": [ease_lambda] if ease_lambda is not None else list(EASE_L2_GRID),
                "ease_l2_tuned_on": None
                if ease_lambda is not None
                else "ndcg@100 of validation users from each fold's training users",
                "bias_damping": {"item": PRODUCT_ITEM_DAMPING, "user": PRODUCT_USER_DAMPING},
            },
            "cross_validation": cross_validation,
        }
        self.stdout.write("\nHeld-out users, mean ± std over folds:\n" + evaluation.format_table(cross_validation))
        chosen = {name: model["selected"] for name, model in cross_validation["models"].items() if "selected" in model}
        if chosen:
            self.stdout.write(
                "\nChosen on validation users, per fold:\n"
                + "\n".join(f"{name}: {', '.join(selected)}" for name, selected in chosen.items())
            )
        if splits:
            rating_models = {
                name: factory
                for name, factory in recommenders.items()
                if name == "bias" or (name.startswith("vae:") and configs[name[4:]].rating_head)
            }
            if rating_models:
                results["official_splits"] = evaluation.evaluate_rating_splits(
                    _official_splits(Path(splits)), rating_models, log=log
                )
                self.stdout.write("\nOfficial u1-u5 splits:\n" + evaluation.format_table(results["official_splits"]))
            else:
                self.stdout.write("\nNo model here predicts ratings: --splits skipped.")

        path = (
            Path(output)
            if output
            else Path(settings.VAR_DIR) / "evaluations" / f"evaluation-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=_json_default))
        self.stdout.write(self.style.SUCCESS(f"\nResults written to {path}"))


def _official_splits(folder: Path):
    try:
        return read_official_splits(folder)
    except FileNotFoundError as error:
        raise CommandError(f"{error}: --splits needs the ML-100K folder with u1.base ... u5.test") from error


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value))
