"""Resumable training state: safetensors for tensors plus a JSON state file, never pickle.

Layout (inside the output folder, hidden until the bundle is written)::

    .checkpoint/state.json            epoch done, best epoch, history, config hash, ...
    .checkpoint/epoch-NNN.safetensors  model (model.*) and optimizer (opt.*) tensors of the
                                       last epoch, and of the best epoch so far when older

Each file is written to a temporary name and renamed; state.json is written last and
names the files it belongs to, so an interruption at any moment leaves the previous
consistent state (older files are removed only after the new state.json is in place).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pvdesk import heavy
from pvdesk.export.atomic import atomic_write
from training.errors import TrainingError

FOLDER = ".checkpoint"
STATE = "state.json"


def _save(tensors: dict, path: Path) -> None:
    save_file = heavy.safetensors_torch().save_file

    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def optimizer_tensors(opt) -> tuple[dict, dict]:
    """(tensors, JSON-able rest) of an optimizer's state_dict."""
    torch = heavy.torch()

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt, tensors: dict, rest: dict) -> None:
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for key, v in rest.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    groups = []
    for g in rest["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})


class Checkpoints:
    def __init__(self, out: Path):
        self.folder = Path(out) / FOLDER

    @property
    def state_file(self) -> Path:
        return self.folder / STATE

    def exists(self) -> bool:
        return self.state_file.is_file()

    def read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingError(f"{self.state_file}: cannot read the checkpoint state ({exc}); "
                                "pass --fresh to start over") from None

    def save(self, state: dict, tensors: dict, improved: bool) -> dict:
        """Write the epoch's tensors, then state.json; returns the state written.

        The best epoch's model is read from its epoch file (``model.*`` tensors), so an
        improving epoch costs one file, and the best epoch's file is kept until a better one.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        epoch = state["epoch"]
        state = dict(state)
        state["last_file"] = f"epoch-{epoch:03d}.safetensors"
        _save(tensors, self.folder / state["last_file"])
        if improved:
            state["best_file"] = state["last_file"]
        with atomic_write(self.state_file) as fh:
            json.dump(state, fh, indent=1)
        keep = {state["last_file"], state.get("best_file"), STATE}
        for f in self.folder.iterdir():
            if f.name not in keep and not f.name.startswith("."):
                f.unlink(missing_ok=True)
        return state

    def load(self, name: str) -> dict:
        load_file = heavy.safetensors_torch().load_file

        path = self.folder / name
        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any damage means the same to the user
            raise TrainingError(f"{path}: damaged checkpoint ({exc}); pass --fresh to start "
                                "over") from None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
