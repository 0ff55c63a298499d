"""`twogan train` for a person: progress lines, resume and extension, collapse detection, and the command line's hints."""
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import REPO, TINY_CHAIN, gan3_train_argv, history_epochs
from test_reliability import assert_one_line_error, finish, run_cli, twogan_process
from tf_twogan.callbacks import backup_epoch
from tf_twogan.cli import main
from tf_twogan.collapse import CollapseError, degeneracy


def network_weights(path):
    from tf_twogan.training import load_network

    return [w.numpy() for w in load_network(path).weights]


def epoch_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " epoch " in line and line.startswith("GAN ")]


# ----------------------------------------------------------------------------- extension


@pytest.mark.slow
def test_gan3_extended_with_a_larger_epochs_equals_the_longer_run_and_the_log_is_plain_text(
        tiny_run, mini_store, tmp_path, capsys):
    """Three trainings of GAN 3 alone (adopted first layer): 1 epoch, extended to 2, 2 straight; CI has the piped chain's."""
    from tf_twogan.training import train

    run, one, two = tmp_path / "run", TINY_CHAIN, TINY_CHAIN.replace(train={"epochs": 2})
    assert main(gan3_train_argv(mini_store, run, one.to_json(tmp_path / "one.json"), tiny_run)) == 0
    capsys.readouterr()
    argv = gan3_train_argv(mini_store, run, two.to_json(tmp_path / "two.json"), tiny_run)
    assert main([argument for argument in argv if argument != "--quiet"]) == 0
    output = capsys.readouterr().out  # captured: not a terminal, so plain text
    assert "\x1b" not in output and "\r" not in output
    assert "GAN 1 of 3: G1, infrared as input" in output and "GAN 2 of 3: G2, visible as input" in output
    assert "GAN 3 of 3: G3, I_IRV as input" in output and "extended from 1 to 2 epochs" in output
    assert [line.split(":")[0] for line in epoch_lines(output)] == ["GAN 3 epoch 2/2"]  # one line per epoch trained
    assert "chain 2/2 epochs" in epoch_lines(output)[0] and "left" in epoch_lines(output)[0]
    assert history_epochs(run / "history_gan3.csv") == [0, 1]

    straight = train(mini_store, tmp_path / "straight", two, verbose=0, first_layer_from=tiny_run).root
    for name in ("g3", "d3"):
        for extended, uninterrupted in zip(network_weights(run / f"{name}.keras"), network_weights(straight / f"{name}.keras")):
            np.testing.assert_array_equal(extended, uninterrupted, err_msg=name)


def test_a_piped_log_of_an_extended_chain_is_plain_text_naming_each_gan_and_every_history_gains_the_epoch(
        tiny_run, mini_store, tmp_path):
    """``twogan train --epochs 2`` on a finished 1-epoch chain, stdout and stderr piped as ``2>&1 | tee log`` would."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    argv = ["train", "--store", str(mini_store), "--out", str(run), "--config", str(TINY_CHAIN.to_json(tmp_path / "tiny.json")),
            "--epochs", "2"]
    code, output = finish(twogan_process(argv))
    assert code == 0, output
    assert "\x1b" not in output and "\r" not in output and "Traceback" not in output
    assert "GAN 1 of 3: G1, infrared as input, intensity from infrared, gradients from visible: extended from 1 to 2 epochs" in output
    assert "GAN 2 of 3: G2, visible as input, intensity from visible, gradients from infrared: extended from 1 to 2 epochs" in output
    assert "GAN 3 of 3: G3, I_IRV as input, intensity from I_IRV, gradients from I_VIR: 2 epochs" in output
    assert "the second-layer store is made again and GAN 3 trained again" in output
    lines = epoch_lines(output)  # one per epoch trained; the chain counts 6 epochs, 2 of them done before (GAN 3's are remade)
    assert [line.split(":")[0] for line in lines] == ["GAN 1 epoch 2/2", "GAN 2 epoch 2/2", "GAN 3 epoch 1/2", "GAN 3 epoch 2/2"]
    assert [line.split("; chain ")[1].split(",")[0] for line in lines] == ["3/6 epochs", "4/6 epochs", "5/6 epochs", "6/6 epochs"]
    assert all(re.search(r"g_loss [0-9.e+-]+, d_loss [0-9.e+-]+, [0-9.]+ s; .* \d:\d\d:\d\d elapsed, about \d:\d\d:\d\d left$", line)
               for line in lines), lines
    assert output.splitlines()[-1].startswith(f"{run}: finished")
    for stage in ("gan1", "gan2", "gan3"):
        assert history_epochs(run / f"history_{stage}.csv") == [0, 1], stage
        assert backup_epoch(run / "state" / stage) == 2, stage  # kept: a larger --epochs extends it again

    from tf_twogan.gan import GAN1
    from tf_twogan.training import configure_runtime, open_run_folder, train_pair

    configure_runtime(TINY_CHAIN.train.seed)  # GAN 1 of two epochs from the start: the extended one, bit for bit
    two = TINY_CHAIN.replace(train={"epochs": 2})
    straight = train_pair(open_run_folder(tmp_path / "straight", two), mini_store, two, GAN1, verbose=0)
    for network, name in ((straight.generator, "g1"), (straight.discriminator, "d1")):
        for uninterrupted, extended in zip(network.weights, network_weights(run / f"{name}.keras")):
            np.testing.assert_array_equal(extended, uninterrupted.numpy(), err_msg=uninterrupted.path)


@pytest.mark.slow
def test_a_finished_2_epoch_chain_extended_with_epochs_3_equals_the_3_epoch_chain_bit_for_bit(tiny_run, mini_store, tmp_path, capsys):
    """Nine GAN trainings: the 1-epoch chain extended to 2 then to 3 epochs (GAN 1, 2 continued,
    store and GAN 3 made again), and a straight 3-epoch chain."""
    from tf_twogan.training import train

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    argv = ["train", "--store", str(mini_store), "--out", str(run), "--config", str(TINY_CHAIN.to_json(tmp_path / "tiny.json"))]
    assert main([*argv, "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main([*argv, "--epochs", "3"]) == 0
    output = capsys.readouterr().out
    assert output.count("extended from 2 to 3 epochs") == 2
    assert "second-layer store is made again and GAN 3 trained again" in output
    assert [line.split(":")[0] for line in epoch_lines(output)] == [
        "GAN 1 epoch 3/3", "GAN 2 epoch 3/3", "GAN 3 epoch 1/3", "GAN 3 epoch 2/3", "GAN 3 epoch 3/3"]
    for stage in ("gan1", "gan2", "gan3"):
        assert history_epochs(run / f"history_{stage}.csv") == [0, 1, 2], stage
    assert not (run / "backup").exists()
    straight = train(mini_store, tmp_path / "straight", TINY_CHAIN.replace(train={"epochs": 3}), verbose=0).root
    for name in ("g1", "d1", "g2", "d2", "g3", "d3"):
        for extended, uninterrupted in zip(network_weights(run / f"{name}.keras"), network_weights(straight / f"{name}.keras")):
            np.testing.assert_array_equal(extended, uninterrupted, err_msg=name)


def test_only_a_larger_epochs_may_change_a_started_run_and_only_when_its_state_was_kept(tiny_run, tmp_path):
    from tf_twogan.config import ConfigError
    from tf_twogan.run_folder import RunFolder, check_config

    run = RunFolder(tmp_path / "run")
    shutil.copytree(tiny_run, run.root)
    assert check_config(run, TINY_CHAIN) is True
    assert check_config(run, TINY_CHAIN.replace(train={"epochs": 3}, second_layer={"epochs": 4})) is False  # replaced: extended
    with pytest.raises(ConfigError, match=r"differs in train.epochs, train.seed\)"):
        check_config(run, TINY_CHAIN.replace(train={"epochs": 2, "seed": 5}))
    TINY_CHAIN.replace(train={"epochs": 3}).to_json(run.config)
    with pytest.raises(ConfigError, match="trains 3 epochs .--epochs.; a rerun can extend a run, not shorten it .asked for 2."):
        check_config(run, TINY_CHAIN.replace(train={"epochs": 2}))
    shutil.rmtree(run.root / "state" / "gan2")  # as a run made before the state was kept
    with pytest.raises(ConfigError, match="g2.keras was trained without keeping its training state"):
        check_config(run, TINY_CHAIN.replace(train={"epochs": 4}))


# ----------------------------------------------------------------------------- interrupt and resume


def output_until(process: subprocess.Popen, fragment: str) -> str:
    """What a running ``twogan`` process printed up to its first line containing ``fragment`` (or to its end)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if fragment in line:
            break
    return "".join(lines)


def interrupt_during_training(argv: list[str], signal_number: int, trained_line: str) -> tuple[int, str]:
    """Start ``twogan argv`` with its output piped, send ``signal_number`` once it prints ``trained_line``; status and output."""
    with twogan_process(argv) as process:
        output = output_until(process, trained_line)
        process.send_signal(signal_number)
        output += process.stdout.read()  # through the same buffer: communicate() would skip what it holds
        return process.wait(timeout=60), output


def test_ctrl_c_and_sigterm_print_the_exact_command_to_rerun_and_the_rerun_says_where_it_resumes(mini_store, tiny_run, tmp_path):
    """GAN 3 alone, two processes: Ctrl-C (SIGINT) once it trained an epoch; the printed command, SIGTERM likewise."""
    config = TINY_CHAIN.replace(second_layer={"epochs": 10})
    run = tmp_path / "run"
    argv = [argument for argument in gan3_train_argv(mini_store, run, config.to_json(tmp_path / "gan3.json"), tiny_run)
            if argument != "--quiet"]
    rerun = f"twogan train: the finished epochs are saved; to resume, run: {shlex.join(['twogan', *argv])}"

    code, output = interrupt_during_training(argv, signal.SIGINT, "GAN 3 epoch 1/10")
    assert code == 130, output
    assert output.splitlines()[-2:] == ["twogan train: interrupted", rerun]
    assert "\x1b" not in output and "\r" not in output and "Traceback" not in output
    assert "GAN 1 of 3: G1, infrared as input" in output and "GAN 2 of 3: G2, visible as input" in output
    assert "GAN 3 of 3: G3, I_IRV as input" in output
    done = backup_epoch(run / "backup" / "gan3")
    assert 1 <= done < 10 and not (run / "g3.keras").exists(), "the signal should land while GAN 3 trains"

    command = shlex.split(rerun.split("to resume, run: ")[1])
    assert command[0] == "twogan"
    code, output = interrupt_during_training(command[1:], signal.SIGTERM, f"GAN 3 epoch {done + 1}/10")
    assert code == 130, output
    assert f"GAN 3 resumes at epoch {done + 1} of 10" in output
    assert output.splitlines()[-2:] == ["twogan train: interrupted", rerun]
    assert "\x1b" not in output and "Traceback" not in output
    backed_up, logged = backup_epoch(run / "backup" / "gan3"), history_epochs(run / "history_gan3.csv")
    assert done < backed_up < 10
    assert logged == list(range(len(logged))) and len(logged) - backed_up in (0, 1)  # a stop between an epoch's row and its backup


def test_train_in_this_process_gives_sigterm_back_its_handler(tmp_path, capsys):
    """``main`` called from Python (a notebook, a test worker) keeps the caller's SIGTERM handler once it returns."""
    before = signal.getsignal(signal.SIGTERM)
    code, err = run_cli(["train", "--store", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "missing.h5" in err
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_sigterm_prints_the_command_to_rerun_and_the_rerun_says_where_it_resumes(mini_store, tiny_run, tmp_path):
    """Two `twogan train` processes of GAN 3 alone (about 20 s of CPU), output piped: plain text."""
    from tf_twogan.training import backup_epoch

    config = TINY_CHAIN.replace(second_layer={"epochs": 6})
    run = tmp_path / "run"
    argv = [argument for argument in gan3_train_argv(mini_store, run, config.to_json(tmp_path / "gan3.json"), tiny_run)
            if argument != "--quiet"]
    process = twogan_process(argv)
    deadline = time.monotonic() + 300
    while not backup_epoch(run / "backup" / "gan3") and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    code, output = finish(process)
    assert code == 130, output
    assert "twogan train: the finished epochs are saved; to resume, run: twogan train --store" in output
    assert "Traceback" not in output
    code, output = finish(twogan_process(argv))
    assert code == 0, output
    assert "\x1b" not in output
    assert "GAN 3 resumes at epoch" in output and "of 6" in output
    assert history_epochs(run / "history_gan3.csv") == list(range(6))


# ----------------------------------------------------------------------------- collapse


def test_degeneracy_names_nan_and_a_single_grey_level_but_not_a_varied_patch():
    varied = np.linspace(-1, 1, 2 * 8 * 8).reshape(2, 8, 8, 1)
    grey_126 = np.full((2, 8, 8, 1), 126 / 127.5 - 1)
    assert degeneracy(varied, varied) is None
    assert degeneracy(grey_126, varied) == "its fused sample is constant (grey value 126 everywhere)"
    assert degeneracy(grey_126, grey_126) is None  # flat inputs may give a flat output
    assert degeneracy(np.where(varied > 0, np.nan, varied), varied) == "its fused sample is not a number (NaN or infinite)"


def test_a_diverging_gan_stops_with_one_line_naming_it_and_keeps_the_last_good_backup(mini_store, tmp_path):
    import keras

    from tf_twogan.callbacks import backup_epoch
    from tf_twogan.gan import GAN1
    from tf_twogan.training import configure_runtime, open_run_folder, train_pair

    class Diverge(keras.callbacks.Callback):
        """Sets G's first kernel to NaN after epoch 1's backup: epoch 2 diverges."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                kernel = self.model.generator.weights[0]
                kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))

    config = TINY_CHAIN.replace(train={"epochs": 3})
    configure_runtime(config.train.seed)
    run = open_run_folder(tmp_path / "run", config)
    with pytest.raises(CollapseError, match=r"^GAN 1 collapsed at epoch 2: .* not a number.*; the backup of epoch 1 is kept\. Try"):
        train_pair(run, mini_store, config, GAN1, verbose=0, callbacks=[Diverge()])
    assert backup_epoch(run.backup(GAN1)) == 1 and history_epochs(run.history(GAN1)) == [0]
    assert not run.network(GAN1, "g").exists()


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--store", "s.h5", "--ouput", "run"], "unknown option --ouput (did you mean --out?)"),
    (["evaluate", "--ir", "a", "--vis", "b", "--fused", "c", "--out", "d", "--metrcs", "EN"], "unknown option --metrcs (did you mean --metrics?)"),
    (["--debugg", "train"], "unknown option --debugg (did you mean --debug?)"),
])
def test_an_unknown_option_is_named_with_the_closest_valid_one(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--store", "s.h5", "--ouput", "run"], "unknown option --ouput (did you mean --out?)"),
    (["train", "--store", "s.h5"], "the following arguments are required: --out"),
    (["train", "--store", "s.h5", "--out", "run", "--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
])
def test_a_usage_error_is_answered_before_tensorflow_is_imported(argv, message):
    """The command as the ``twogan`` script runs it, under ``-X importtime``: Python's own list of the modules it imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tf_twogan.cli", *argv],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2 and message in result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "tf_twogan.config" in imported  # the list is complete: it names the package's own modules
    assert not {name for name in imported if name.split(".")[0] in ("tensorflow", "keras")}


def test_evaluate_names_methods_by_name_or_dir_equals_name(tmp_path, capsys):
    from tf_twogan.images import write_image

    rng = np.random.default_rng(0)
    for folder in ("ir", "vis", "fused_a", "fused_b"):
        write_image(tmp_path / folder / "p.png", rng.integers(0, 256, (24, 24)).astype(np.uint8))
    base = ["evaluate", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"), "--metrics", "EN", "--quiet"]
    assert main([*base, "--fused", f"{tmp_path / 'fused_a'}=Ours", "--fused", str(tmp_path / "fused_b"), "--out", str(tmp_path / "o1")]) == 0
    table = capsys.readouterr().out
    assert "| Ours |" in table and "| fused_b |" in table
    assert main([*base, "--fused", str(tmp_path / "fused_a"), "--name", "A", "--fused", str(tmp_path / "fused_b"), "--name", "B",
                 "--out", str(tmp_path / "o2")]) == 0
    table = capsys.readouterr().out
    assert "| A |" in table and "| B |" in table
    code, err = run_cli([*base, "--fused", str(tmp_path / "fused_a"), "--name", "A", "--name", "B", "--out", str(tmp_path / "o3")], capsys)
    assert_one_line_error(code, err, "evaluate", "--name given 2 time(s) for 1 --fused folder(s)")
