"""tools/train_net.py when things go wrong: a run killed with SIGKILL after a checkpoint
resumes from that checkpoint's iteration and finishes; bad configs, weights and override
lists stop it with one "error:" line before any process starts or any data is read."""
import signal
import subprocess
import time

import pytest
import torch

from .train_net_helpers import REPO, cli_opts, run, train_net_command, train_net_env, write_config

pytestmark = pytest.mark.slow

KILLED_RUN_ITERATIONS = 60
CHECKPOINT_PERIOD = 3


def _wait_for(path, process, timeout=240.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "training ended before it wrote a checkpoint"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.02)


def test_a_killed_run_resumes_from_its_last_checkpoint_and_finishes(tmp_path, datasets_root):
    output_dir = tmp_path / "output"
    config = write_config(tmp_path, output_dir, iterations=KILLED_RUN_ITERATIONS, checkpoint_period=CHECKPOINT_PERIOD)
    args = ["--config-file", config]
    process = subprocess.Popen(train_net_command([*args, *cli_opts()]), cwd=REPO, env=train_net_env(datasets_root),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(output_dir / "last_checkpoint", process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    # Whatever the kill interrupted, the tag names a complete checkpoint.
    tagged = (output_dir / "last_checkpoint").read_text()
    killed_at = torch.load(output_dir / tagged, map_location="cpu", weights_only=False)["iteration"]
    assert tagged == f"model_{killed_at:07d}.pth"
    assert killed_at < KILLED_RUN_ITERATIONS - 1, "the run finished before it was killed: raise KILLED_RUN_ITERATIONS"
    assert not (output_dir / "model_final.pth").exists()

    result = run([*args, "--resume", *cli_opts()], datasets_root)
    assert result.returncode == 0, result.log[-5000:]
    assert f"Starting training from iteration {killed_at + 1}" in result.log
    assert "Evaluation results for bbox" in result.log
    final = torch.load(output_dir / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["iteration"] == KILLED_RUN_ITERATIONS - 1
    assert not list(output_dir.glob(".*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize(
    "opts, message",
    [
        (["MODEL.DCN.POOL", "roialign"], 'error: MODEL.DCN.POOL must be "", "dpool" or "mdpool", got \'roialign\''),
        (["MODEL.WEIGHTS", "/no/such/model.pth"], "error: MODEL.WEIGHTS: no such file: /no/such/model.pth"),
        (["MODEL.DCN.NO_SUCH_KEY", "1"], "Non-existent key: MODEL.DCN.NO_SUCH_KEY"),
        (["MODEL.RFCN.MODULATED"], "Override list has odd length"),
    ],
    ids=["unknown pool", "missing weights", "unknown key", "odd override list"],
)
def test_a_bad_config_is_one_error_line_before_anything_starts(opts, message, tmp_path, datasets_root):
    output_dir = tmp_path / "output"
    config = write_config(tmp_path, output_dir)
    result = run(["--config-file", config, *cli_opts(), *opts], datasets_root, timeout=120)
    assert result.returncode == 2, result.log[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.log
    assert "Command Line Args" not in result.stdout  # nothing was launched
    assert not output_dir.exists()
