"""One error base class, caught by the CLI; anything else is a bug that shows its traceback. One atomic-write helper."""
from __future__ import annotations

import pytest

from tf_twogan import cli
from tf_twogan.atomic import atomic_write
from tf_twogan.errors import CheckpointError, TwoGanError


def test_every_user_error_derives_from_the_base_class_and_from_value_error():
    from tf_twogan.config import ConfigError
    from tf_twogan.export import ExportError
    from tf_twogan.fusiongan import CheckpointError as FusionGanCheckpointError
    from tf_twogan.images import ImageError
    from tf_twogan.inference import InferenceError
    from tf_twogan.networks_io import CheckpointError as NetworkCheckpointError
    from tf_twogan.store import StoreError

    for error in (ConfigError, ExportError, ImageError, InferenceError, StoreError, CheckpointError):
        assert issubclass(error, TwoGanError) and issubclass(error, ValueError), error
    assert FusionGanCheckpointError is NetworkCheckpointError is CheckpointError


def failing_demo(error: Exception):
    def handler(args):
        raise error
    return handler


def test_the_cli_prints_one_line_for_a_user_error(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_demo", failing_demo(CheckpointError("x.keras: truncated")))
    assert cli.main(["demo", "--out", "unused"]) == 2
    assert capsys.readouterr().err.strip() == "twogan demo: error: x.keras: truncated"


@pytest.mark.parametrize("bug", [ValueError("internal"), TypeError("internal"), KeyError("internal")])
def test_the_cli_lets_an_internal_error_through_with_its_traceback(monkeypatch, bug):
    monkeypatch.setattr(cli, "_demo", failing_demo(bug))
    with pytest.raises(type(bug)):
        cli.main(["demo", "--out", "unused"])


def test_atomic_write_replaces_the_target_on_success_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "table.md"
    with atomic_write(target) as temporary:
        assert temporary.parent == target.parent and temporary.name.startswith(".twogan-tmp.") and temporary.name.endswith(".table.md")
        temporary.write_text("new")
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_write(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "new"
    assert [path.name for path in target.parent.iterdir()] == ["table.md"]
    with atomic_write(tmp_path / "epoch3.weights.h5", suffix=".weights.h5") as temporary:
        assert temporary.name.endswith(".weights.h5")
