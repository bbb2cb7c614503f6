"""dcn_det.engine.create_ddp_model: DistributedDataParallel for CPU models (gloo), and the
reason the multi-process train_net tests mean something: a parameter that receives no
gradient stops training with an error. Two real processes, gloo, on this machine."""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from dcn_det.engine import create_ddp_model


class _Model(nn.Module):
    def __init__(self, with_unused_branch):
        super().__init__()
        self.used = nn.Linear(4, 1)
        # Like an offset branch that the forward pass forgot to use.
        self.unused = nn.Linear(4, 8) if with_unused_branch else None

    def forward(self, x):
        return self.used(x)


def _train_two_steps(rank, world_size, directory, with_unused_branch):
    dist.init_process_group("gloo", init_method=f"file://{directory}/init", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
        model = create_ddp_model(_Model(with_unused_branch))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            loss = model(torch.full((2, 4), float(rank + 1))).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        weights = model.module.used.weight.detach().clone()
        torch.save(("ok", weights), f"{directory}/rank{rank}.pt")
    except RuntimeError as e:
        torch.save((str(e), None), f"{directory}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _run(tmp_path, with_unused_branch):
    mp.spawn(_train_two_steps, args=(2, str(tmp_path), with_unused_branch), nprocs=2)
    return {rank: torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)}


def test_cpu_models_train_in_sync_across_processes(tmp_path):
    results = _run(tmp_path, with_unused_branch=False)
    assert [results[r][0] for r in (0, 1)] == ["ok", "ok"]
    # Different data per rank, averaged gradients, rank 0's initial weights: identical weights.
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=0)


def test_a_parameter_without_gradient_stops_training(tmp_path):
    results = _run(tmp_path, with_unused_branch=True)
    for rank in (0, 1):
        status = results[rank][0]
        assert status != "ok"
        assert "did not receive grad" in status or "unused parameters" in status, status
