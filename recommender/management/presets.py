"""What the commands that take VAE preset names share."""

from django.core.management.base import CommandError


def preset_names(text: str) -> list[str]:
    """Comma-separated preset names ('' for none), each checked against vae.PRESETS (TensorFlow loads here)."""
    from recommender.ml import vae

    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in vae.PRESETS]
    if unknown:
        raise CommandError(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(sorted(vae.PRESETS))}")
    return names
