"""tools/train_net.py with several processes on a CPU-only machine (detectron2's launch,
gloo): every model family trains under DistributedDataParallel and evaluates, on one
"machine" with --num-gpus 2 and on two "machines" on localhost.

DDP runs without find_unused_parameters, so a parameter that gets no gradient (a classic
failure of deformable branches) stops the second iteration with an error: the runs here
have 3 iterations so that it would. tests/test_engine.py shows that error happens."""
import socket
import subprocess

import pytest
import torch

from .train_net_helpers import REPO, cli_opts, run, train_net_command, train_net_env, write_config

pytestmark = pytest.mark.slow

ITERATIONS = 3  # DDP reports parameters without gradient at the start of the next iteration
FAMILIES = [
    "faster_rcnn_R_50_FPN_1x.yaml",
    "faster_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml",
    "faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml",
    "faster_rcnn_R_101_C4_1x.yaml",
    "faster_rcnn_R_101_C4_dconv_c5_dpool_1x.yaml",
    "rfcn_R_101_1x.yaml",
    "rfcn_R_101_dconv_c5_dpsroi_1x.yaml",
    "rfcn_R_101_mdconv_c3-c5_mdpsroi_1x.yaml",
]


def _assert_trained_and_evaluated(result, output_dir, world_size):
    assert result.returncode == 0, result.log[-5000:]
    assert f"World size: {world_size}" in result.log
    assert "Evaluation results for bbox" in result.log
    checkpoint = torch.load(output_dir / "model_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["iteration"] == ITERATIONS - 1
    return checkpoint


@pytest.mark.parametrize("base", FAMILIES)
def test_two_processes_train_each_family_with_ddp_and_evaluate(base, tmp_path, datasets_root):
    output_dir = tmp_path / "output"
    config = write_config(tmp_path, output_dir, base=base, iterations=ITERATIONS)
    # "auto": a free port; detectron2's default is one fixed port per user, which concurrent runs share.
    result = run(["--config-file", config, "--num-gpus", 2, "--dist-url", "auto", *cli_opts()], datasets_root)
    checkpoint = _assert_trained_and_evaluated(result, output_dir, world_size=2)
    # The checkpoint is the model's own state, not DDP's ("module." prefixes).
    assert not any(k.startswith("module.") for k in checkpoint["model"])
    if "dconv" in base or "mdconv" in base:
        assert any("conv2_offset" in k for k in checkpoint["model"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_on_localhost_train_together(tmp_path, datasets_root):
    output_dir = tmp_path / "output"
    config = write_config(tmp_path, output_dir, base=FAMILIES[2], iterations=ITERATIONS)
    url = f"tcp://127.0.0.1:{_free_port()}"
    machines = [
        subprocess.Popen(
            train_net_command(["--config-file", config, "--num-gpus", 1, "--num-machines", 2,
                               "--machine-rank", rank, "--dist-url", url, *cli_opts()]),
            cwd=REPO, env=train_net_env(datasets_root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in (0, 1)
    ]
    logs = []
    try:
        for machine in machines:
            logs.append(machine.communicate(timeout=300)[0])
    finally:
        for machine in machines:
            machine.kill()
    for machine, log in zip(machines, logs):
        assert machine.returncode == 0, log[-5000:]
    assert "Rank of current process: 0. World size: 2" in logs[0]
    # Other ranks log to a file only (detectron2's setup_logger).
    assert "Rank of current process: 1. World size: 2" in (output_dir / "log.txt.rank1").read_text()
    assert "Evaluation results for bbox" in logs[0]  # results are gathered on rank 0
    assert torch.load(output_dir / "model_final.pth", map_location="cpu", weights_only=False)["iteration"] == ITERATIONS - 1
