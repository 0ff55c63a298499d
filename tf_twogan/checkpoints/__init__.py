"""Shipped checkpoints, installed as the package ``tf_twogan.checkpoints``.

Each sub-folder holds the networks and the ``config.json`` that trained them: ``sharp/``
(the default: the ``sharp`` preset) and ``lite/`` (the paper's constants at the ``lite``
widths) ``g1.keras``, ``g2.keras``, ``g3.keras``; ``fusiongan_lite/`` the FusionGAN
baseline's ``g.keras``.  ``README.md`` is the model card.
"""
import json
from importlib.resources import files
from pathlib import Path

DEFAULT = "sharp"


def checkpoint_dir(name: str = DEFAULT) -> Path:
    """Folder of a shipped checkpoint (works for editable and plain installs)."""
    return Path(str(files(__name__) / name))


def default_preset() -> str:
    """The preset the default checkpoint was trained with (its ``config.json``): what ``twogan train`` trains by default."""
    return json.loads((checkpoint_dir() / "config.json").read_text(encoding="utf-8"))["preset"]
