"""SGD with momentum and Adam, with PyTorch's update rules, written here to keep training processes light.

Why not ``torch.optim``: its optimizers import ``torch._dynamo`` on construction and
on every ``step`` (to mark themselves as not compilable), 2.5-4 s per process.
A workflow of hundreds of short training jobs pays that in every job, more than
some of the trainings themselves.  The rules below are ``torch.optim.SGD`` and
``torch.optim.Adam`` (single-tensor path, L2 weight decay added to the gradient,
no Nesterov, no AMSGrad); the tests check both step for step against torch.

Parameters whose gradient is None are skipped and keep no state (the
complementary network during the warm-up); each parameter counts its own Adam
steps, as torch does, so its bias correction starts when it first trains.

Each step runs the update as multi-tensor ``torch._foreach_*`` ops over all
parameters at once (Adam: over each set sharing a step count), not one Python
round of ~7 small ops per tensor: on a CPU a foreach op applies the same
per-tensor kernel in a C++ loop, so the numbers are bit-identical to the
single-tensor path, only the Python and dispatch overhead of a ResNet's ~50
tensors goes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from aea.errors import AEAError


class Optimizer:
    """Shared bookkeeping: one parameter group whose ``lr`` the training loop sets per epoch."""

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.param_groups = [{"lr": float(lr), "weight_decay": float(weight_decay)}]
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        trained = [(p, state) for p, state in zip(self.params, self.state) if p.grad is not None]
        if not trained:
            return
        params = [p for p, _ in trained]
        grads = [p.grad for p in params]
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        self._update(params, grads, [state for _, state in trained], group["lr"])

    def _update(self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict[str, Any]],
                lr: float) -> None:
        """Update ``params`` in place with their (weight-decayed) ``grads``; ``states`` are theirs."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "param_groups": [dict(g) for g in self.param_groups],
                "state": [dict(s) for s in self.state]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        if saved.get("kind") != type(self).__name__ or len(saved.get("state", ())) != len(self.params):
            raise AEAError(f"checkpoint optimizer state ({saved.get('kind')}, {len(saved.get('state', ()))} "
                           f"parameters) does not fit {type(self).__name__} over {len(self.params)} parameters; "
                           "delete the checkpoint to start the run afresh")
        self.param_groups = [dict(g) for g in saved["param_groups"]]
        self.state = [dict(s) for s in saved["state"]]


class SGD(Optimizer):
    """``torch.optim.SGD(momentum=m, weight_decay=wd)``: buf = m * buf + g (buf = g at first), p -= lr * buf."""

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.momentum = float(momentum)

    def _update(self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict[str, Any]],
                lr: float) -> None:
        if self.momentum:
            ongoing = [(g, s["momentum_buffer"]) for g, s in zip(grads, states) if "momentum_buffer" in s]
            if ongoing:
                bufs = [buf for _, buf in ongoing]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, [g for g, _ in ongoing])
            for g, s in zip(grads, states):
                if "momentum_buffer" not in s:
                    s["momentum_buffer"] = torch.clone(g).detach()
            grads = [s["momentum_buffer"] for s in states]
        torch._foreach_add_(params, grads, alpha=-lr)


class Adam(Optimizer):
    """``torch.optim.Adam(betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)`` (L2 added to the gradient)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)

    def _update(self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict[str, Any]],
                lr: float) -> None:
        beta1, beta2 = self.betas
        by_step: dict[int, list[int]] = {}
        for i, (p, state) in enumerate(zip(params, states)):
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            state["step"] += 1
            by_step.setdefault(state["step"], []).append(i)
        for step, members in by_step.items():
            exp_avgs = [states[i]["exp_avg"] for i in members]
            exp_avg_sqs = [states[i]["exp_avg_sq"] for i in members]
            group_grads = [grads[i] for i in members]
            torch._foreach_lerp_(exp_avgs, group_grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, group_grads, group_grads, value=1 - beta2)
            step_size = lr / (1 - beta1 ** step)
            denoms = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denoms, math.sqrt(1 - beta2 ** step))
            torch._foreach_add_(denoms, self.eps)
            torch._foreach_addcdiv_([params[i] for i in members], exp_avgs, denoms, value=-step_size)
