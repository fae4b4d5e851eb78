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
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                grad = p.grad if group["weight_decay"] == 0 else p.grad.add(p, alpha=group["weight_decay"])
                self._update(p, grad, state, group["lr"])

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], lr: float) -> None:
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

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], lr: float) -> None:
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.clone(grad).detach()
            else:
                state["momentum_buffer"].mul_(self.momentum).add_(grad)
            grad = state["momentum_buffer"]
        p.add_(grad, alpha=-lr)


class Adam(Optimizer):
    """``torch.optim.Adam(betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)`` (L2 added to the gradient)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], lr: float) -> None:
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        state["step"] += 1
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad.conj(), value=1 - beta2)
        step_size = lr / (1 - beta1 ** state["step"])
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2 ** state["step"])).add_(self.eps)
        p.addcdiv_(state["exp_avg"], denom, value=-step_size)
