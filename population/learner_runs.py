"""What the kinds that train sequence-model learners share: the network, the fields of a
training config, and one training run of a unit (learner threads, TensorBoard, checkpoints).

``weis-ipd`` and ``weis-mechanism`` configs both take :class:`LearnerFields`; a unit hands
:func:`train` its :class:`~pnyx.population.diverse_partner_training.TrainingSpec`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from pnyx.errors import PnyxError
from pnyx.strict import Strict, checked_when_built

#: What every evaluation of a learner reports, each a rate in [0, 1].
METRICS = ("learner_vs_learner_cooperation", "vs_tft_cooperation", "vs_allc_defection", "vs_alld_defection")


def _resolve_device(device: str) -> None:
    """``cuda`` on a machine without CUDA is a one-line error."""
    from pnyx.population.diverse_partner_training import resolve_device

    resolve_device(device)


class ModelConfig(Strict):
    """The learner's network: a GRU (the paper's) or a small causal Transformer
    (:mod:`pnyx.agents.sequence`; ``embedding`` and ``swish`` apply to the GRU)."""

    kind: Literal["gru", "transformer"] = "gru"
    embed: int = Field(32, gt=0)
    hidden: int = Field(128, gt=0, description="GRU state size")
    embedding: Literal["shared", "concat"] = Field(
        "shared", description="GRU input: shared, the paper's (A.3.1): each input's own linear layer into one "
        "embed-wide space, summed; concat: pnyx's earlier input, three embeddings side by side (3 x embed wide)")
    swish: bool = Field(True, description="Swish on the GRU output before the heads (the paper's, A.3.1); "
                        "false: pnyx's earlier network")
    d_model: int = Field(64, gt=0, description="Transformer width")
    layers: int = Field(2, gt=0, description="Transformer layers")
    heads: int = Field(4, gt=0, description="Transformer attention heads")


class LearnerFields(Strict):
    """The fields of a config whose units train learners in the iterated prisoner's dilemma."""

    rounds: int = Field(100, gt=0)
    payoffs: tuple[float, float, float, float] = Field((1, -1, 2, 0), description="own payoff after CC, CD, DC, DD")
    seeds: int = Field(1, ge=1, le=1000, description="independent training runs: one unit per seed (and condition)")
    model: ModelConfig = ModelConfig()
    device: Annotated[Literal["cpu", "cuda", "auto"], checked_when_built(_resolve_device)] = Field(
        "cpu", description="where learners update and driver rollouts run; auto: CUDA when available")
    workers: int | None = Field(None, ge=0, description="Ray rollout actors; None: one per CPU of the Ray "
                                "cluster (at most shards); 0: roll out in the driver without Ray")
    shards: int = Field(16, gt=0, description="fixed slices of the batch, each seeded on its own")
    eval_every: int = Field(500, gt=0)
    eval_games: int = Field(256, gt=0)
    final_eval_games: int = Field(2048, gt=0)
    checkpoint_every: int = Field(500, gt=0)
    checkpoint_dir: str | None = Field(None, description="where units checkpoint and resume; None: the "
                                       "runner's work folder OUT/work, or no checkpoints outside the runner")
    tensorboard: bool = Field(False, description="also log curves to TensorBoard under the checkpoint folder "
                              "(needs pnyx[tensorboard])")
    learner_threads: int | None = Field(None, gt=0, description="torch threads of the learner update; None: "
                                        "torch's default (1 is fastest on a small, busy machine)")


class PPIEvalFields(Strict):
    """How many games evaluate PPI learners, apart from A2C's ``eval_games`` and
    ``final_eval_games``: an improved policy plans every move by rollouts in its model, so
    its games cost far more."""

    ppi_eval_games: int | None = Field(None, gt=0, description="PPI's evaluation games per phase and partner; "
                                       "None: eval_games")
    ppi_final_eval_games: int | None = Field(None, gt=0, description="PPI's games of the final evaluation (and "
                                             "of weis-mechanism's measures); None: final_eval_games")

    def ppi_games(self) -> tuple[int, int]:
        """PPI's evaluation games per phase and at the end."""
        return self.ppi_eval_games or self.eval_games, self.ppi_final_eval_games or self.final_eval_games


def model_spec(cfg: LearnerFields, opponent_id: bool, learner_flag: bool = False) -> dict:
    """The network spec of ``cfg.model``."""
    m = cfg.model
    spec = {"kind": m.kind, "payoffs": list(cfg.payoffs), "embed": m.embed}
    if m.kind == "gru":
        return spec | {"hidden": m.hidden, "opponent_id": opponent_id, "embedding": m.embedding, "swish": m.swish} | (
            {"learner_flag": True} if learner_flag else {})
    return spec | {"d_model": m.d_model, "layers": m.layers, "heads": m.heads}


def span(values) -> str:
    """``a`` or ``a-b``: the range of some integers, for a figure's scale line."""
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def scale_label(at_paper_scale: bool, device: str, detail: str) -> str:
    """The line each Weis et al. figure carries about the scale it ran at (``detail``): the
    paper's, or a smaller run labelled as not the paper's result (on the CPU: a quick run)."""
    if at_paper_scale:
        return f"at the paper's scale ({detail})"
    run = "CPU-scale quick run" if device == "cpu" else "reduced-scale run"
    return f"{run} ({detail}), not the paper's result"


def seed_band(values, rate: bool = True) -> dict:
    """Mean and mean +- one standard deviation across seeds (clipped to [0, 1] for a
    ``rate``), as the ``{value, low, high}`` that
    :func:`pnyx.experiments.figures.interval_line` shades; no band for one seed."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return {"value": mean, "low": None, "high": None}
    sd = float(x.std(ddof=1))
    low, high = mean - sd, mean + sd
    return {"value": mean, "low": max(low, 0.0) if rate else low, "high": min(high, 1.0) if rate else high}


def tensorboard_logger(folder: Path | None):
    """A curve-point callback writing every number to TensorBoard in ``folder``, and its
    writer; ``(None, None)`` without a folder."""
    if folder is None:
        return None, None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise PnyxError("tensorboard: true needs the tensorboard package (pip install 'pnyx[tensorboard]')") from None
    writer = SummaryWriter(str(folder))

    def log(point: dict) -> None:
        for k, v in point.items():
            if k not in ("iteration", "final") and isinstance(v, (int, float)):
                writer.add_scalar(k, v, point["iteration"])

    return log, writer


@contextmanager
def learner_session(cfg: LearnerFields, *folders: Path | None):
    """While one unit trains: torch on ``cfg.learner_threads`` threads and, with
    ``cfg.tensorboard``, a TensorBoard writer in each folder; yields one curve-point
    logger per folder (None without TensorBoard)."""
    import torch

    loggers = [tensorboard_logger(f / "tensorboard" if f and cfg.tensorboard else None) for f in folders]
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.learner_threads or threads)
    try:
        yield [log for log, _ in loggers]
    finally:
        torch.set_num_threads(threads)
        for _, writer in loggers:
            if writer is not None:
                writer.close()


def train(cfg: LearnerFields, spec, *, workers: int, progress: bool, folder: Path | None, init=None):
    """Run one :class:`~pnyx.population.diverse_partner_training.Trainer` to its end on
    ``workers`` rollout actors (0: in the driver), checkpointing in ``folder``."""
    from pnyx.population.diverse_partner_training import Trainer

    with learner_session(cfg, folder) as (log,):
        trainer = Trainer(spec, workers=workers, checkpoint_dir=folder, device=cfg.device, init=init, on_point=log)
        try:
            return trainer.run(progress=progress)
        finally:
            trainer.close()
