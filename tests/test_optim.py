"""Our SGD and Adam against torch.optim, step for step, including parameters that start training late."""

from __future__ import annotations

import pytest
import torch

from aea import optim
from aea.errors import AEAError


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def run(make, steps: int = 6, late: bool = False) -> list[torch.Tensor]:
    """``steps`` updates on fixed data; with ``late`` the last layer gets no gradient for the first 3 steps."""
    net = model()
    opt = make(net.parameters())
    torch.manual_seed(1)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        if late and i < 3:
            for p in net[2].parameters():
                p.grad = None
        opt.param_groups[0]["lr"] = 0.05 if i < 4 else 0.005  # the loop's step schedule
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("late", [False, True])
@pytest.mark.parametrize("ours,theirs", [
    (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4),
     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4, foreach=False)),
    (lambda ps: optim.Adam(ps, lr=0.05, weight_decay=5e-4),
     lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=5e-4, fused=True)),
], ids=["sgd", "adam"])
def test_same_updates_as_torch_optim(ours, theirs, late):
    for a, b in zip(run(ours, late=late), run(theirs, late=late)):
        assert torch.equal(a, b)  # bit for bit: the same arithmetic in the same order


def test_state_dict_round_trip_resumes_identically():
    net, other = model(), model()
    a = optim.Adam(net.parameters(), lr=0.01)
    for m in (net,):
        m(torch.randn(2, 6)).sum().backward()
    a.step()
    b = optim.Adam(other.parameters(), lr=0.5)
    b.load_state_dict(a.state_dict())
    assert b.param_groups[0]["lr"] == 0.01 and b.state[0]["step"] == 1
    assert torch.equal(b.state[0]["exp_avg"], a.state[0]["exp_avg"])
    with pytest.raises(AEAError, match="delete the checkpoint"):
        optim.SGD(net.parameters(), lr=0.1).load_state_dict(a.state_dict())


def test_training_imports_no_dynamo():
    """The point of this module: a training process never imports torch._dynamo (seconds per process)."""
    import subprocess
    import sys

    code = ("import sys, torch; from aea import optim; net = torch.nn.Linear(2, 2); o = optim.Adam(net.parameters(),"
            " lr=0.1); net(torch.ones(1, 2)).sum().backward(); o.step(); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
