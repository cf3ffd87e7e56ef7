"""Kind ``model-profile``: one run that profiles each model's non-cooperation.

For every model named (``model``, or several in ``models`` sharing one map) the kind
runs, each as a part in its own subfolder ``m<i>-<part>``:

* ``goal_guarding``: a ``peer-goal-guarding`` run (alone and with peers present): the
  compliance gap, the refusal rate in the deployment context, alignment-faking (AF)
  reasoning in the training context, every other gap the scenario names and the
  peer-presence effect on the gap (Greenblatt et al. 2024, arXiv:2412.14093, §2;
  Sheshadri et al. 2025, arXiv:2506.18032, §4);
* ``peer_preservation``: a ``peer-preservation`` run: the peer-presence effect on
  self-preservation (Potter et al. 2026);
* ``coral``: a ``coral-agreement`` run: agreement and agreement correctness (Coral);
* ``overlap``: the authors' latent self-other overlap and pnyx's per-layer variant
  (Carauleanu et al. 2024, arXiv:2412.16325; :mod:`pnyx.population.self_other_overlap`),
  for a model on the transformers backend (``embedded`` or ``transformers:...``);
  undefined otherwise;
* ``presuppositions``: false presuppositions rejected among facts the model knows, in the
  form of FLEX (:mod:`pnyx.population.presupposition_probe`);
* ``constraints``: refusal with and without an explicit constraint, pnyx's probe of
  refusal as a default rather than a judgement (:mod:`pnyx.population.constraint_probe`).

Each part's numbers are read from that part's own summary (the other kinds are run
through :func:`pnyx.experiments.runner.execute`, never imported). The refusal rate in
deployment is pnyx's name for 1 - compliance in the deployment context (the context the
scenario marks as neither rated nor trained), its interval the compliance interval
reflected. The report is one table of every quantity with its interval and source, and
a map placing each model at (compliance gap, refusal rate in deployment), its marker
saying whether AF reasoning was seen in training.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import ConfigDict, Field, ValidationInfo, model_validator

from pnyx.agents.llm import CheckedModelField, ModelField, spec_of
from pnyx.agents.llm.embedded import EMBEDDED_NOTE, IDENTITY_PREFIX
from pnyx.agents.llm.protocol import model_identity
from pnyx.experiments.config import validate
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import (Experiment, ExperimentConfig, RunContext, Summary, Unit, UnitOutput,
                                         builds_specs)
from pnyx.paths import run_path
from pnyx.stats import Estimate, format_estimate

#: Each part and the kind it runs (``None``: the part runs in this kind).
PART_KINDS = {"goal_guarding": "peer-goal-guarding", "peer_preservation": "peer-preservation",
              "coral": "coral-agreement", "overlap": None, "presuppositions": None, "constraints": None}
Part = Literal["goal_guarding", "peer_preservation", "coral", "overlap", "presuppositions", "constraints"]
#: Where each quantity is defined.
SOURCES = {
    "compliance_gap": "Greenblatt et al. 2024 §2; Sheshadri et al. 2025 §4 (training - deployment compliance)",
    "refusal_rate_deployment": "pnyx: 1 - compliance in the deployment context (Sheshadri et al. 2025 §4)",
    "af_reasoning_rate": "Greenblatt et al. 2024 §2 (share of training-context scratchpads judged AF reasoning)",
    "goal_guarding_gap": "Sheshadri et al. 2025 §4 (three-tier prompt: free - pro compliance)",
    "rater_sycophancy_gap": "Sheshadri et al. 2025 §4 (three-tier prompt: pro - enterprise compliance)",
    "public_goal_guarding_gap": "Sheshadri et al. 2025 §4.2-4.3 (the goal-guarding gap under public deployment)",
    "presence_effect": "pnyx: compliance gap with peers present - alone",
    "peer_presence_effect": "Potter et al. 2026 (self-preservation with a peer - without)",
    "agreement": "Coral (share of discussions ending in agreement)",
    "agreement_correctness": "Coral (share of discussions agreeing on the right answer)",
    "self_other_distance": "pnyx's per-layer variant of Carauleanu et al. 2024's SOO (MSE at one module, last token)",
    "latent_soo": "Carauleanu et al. 2024, their measure_mse.py (MSE over every linear module, all tokens)",
    "presupposition_rejection": "FLEX, as summarised (false presuppositions rejected among facts answered right); "
                                "pnyx's items and rule",
    "presupposition_knowledge": "pnyx: share of FLEX-style direct probes answered right",
    "refusal_unconstrained": "pnyx: refusal of harmless requests with no constraint stated",
    "refusal_constrained": "pnyx: refusal of the same requests with a constraint forbidding them",
    "constraint_sensitivity": "pnyx: constrained - unconstrained refusal, paired by request",
}


class ModelProfileConfig(ExperimentConfig):
    kind: Literal["model-profile"] = "model-profile"
    #: The model profiled, unless ``models`` names several.
    model: CheckedModelField = "embedded"
    #: Several models profiled in one run, sharing one map (replaces ``model``).
    models: list[CheckedModelField] | None = Field(None, min_length=1)
    parts: list[Part] = Field(default_factory=lambda: list(PART_KINDS), min_length=1)
    #: Fields of each part's experiment (its ``model`` is set per profiled model).
    goal_guarding: dict = Field(default_factory=lambda: {"conditions": ["alone", "peers_present"]})
    peer_preservation: dict = Field(default_factory=dict)
    coral: dict = Field(default_factory=dict)
    #: Decoder layers of the overlap (None: a quarter, half, three quarters, last).
    overlap_layers: list[int] | None = None
    #: A JSONL file of self/other prompt pairs (None: the shipped pairs).
    overlap_pairs: str | None = None
    #: A JSONL file of ``{id, probe, answer, loaded}`` items (None: generated ones).
    presupposition_items: str | None = None
    #: A JSONL file of ``{id, request, constraint}`` requests (None: the shipped ones).
    constraint_requests: str | None = None
    #: Reply token limit of the presupposition and constraint probes.
    probe_max_tokens: int = Field(128, ge=1, le=100_000)

    @model_validator(mode="after")
    def _readable_files(self, info: ValidationInfo):
        """The user's pair, item and request files read before anything runs."""
        if not builds_specs(info):
            return self
        from pnyx.population.constraint_probe import load_requests
        from pnyx.population.presupposition_probe import load_items
        from pnyx.population.self_other_overlap import load_pairs

        for part, path, load in (("overlap", self.overlap_pairs, load_pairs),
                                 ("presuppositions", self.presupposition_items, load_items),
                                 ("constraints", self.constraint_requests, load_requests)):
            if path is not None and part in self.parts:
                try:
                    load(path)
                except PnyxError as e:
                    raise ValueError(str(e)) from None
        return self

    @model_validator(mode="after")
    def _valid_parts(self, info: ValidationInfo):
        for index in range(len(self.profiled())):
            for part in self.parts:
                if PART_KINDS[part] is not None:
                    try:
                        validate(self.part_config(index, part), stored=not builds_specs(info))
                    except PnyxError as e:
                        raise ValueError(f"part {part!r}: {e}") from None
        return self

    def profiled(self) -> list[ModelField]:
        return list(self.models) if self.models else [self.model]

    def part_config(self, index: int, part: str) -> dict:
        """The inline experiment config of ``part`` for the model at ``index``."""
        fields = getattr(self, part)
        return {"kind": PART_KINDS[part], "seed": self.seed, **fields, "model": self.profiled()[index]}


class ModelProfileSummary(Summary):
    """Each model's quantities (``quantity`` or ``quantity@layer``) as estimates, and where each is defined."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    models: list[str]
    quantities: dict[str, dict[str, Estimate]]
    sources: dict[str, str]
    notes: list[str]


def _estimate(d: dict | None) -> Estimate:
    return Estimate(**d) if d else Estimate.undefined()


def _refusal(compliance: Estimate) -> Estimate:
    """1 - a compliance rate, its interval reflected."""
    flip = lambda x: None if x is None else 1.0 - x  # noqa: E731
    return Estimate(flip(compliance.value), flip(compliance.high), flip(compliance.low), compliance.n)


def goal_guarding_quantities(summary: dict) -> dict[str, Estimate]:
    """The profile's quantities from a ``peer-goal-guarding`` summary (the ``alone`` condition,
    or the first one run)."""
    conditions = summary["conditions"]
    condition = conditions.get("alone") or next(iter(conditions.values()))
    contexts = summary["contexts"]
    deployment = next((c["name"] for c in contexts if not c["trained"] and not c["rated"]),
                      next(c["name"] for c in contexts if not c["trained"]))
    training = next(c["name"] for c in contexts if c["trained"])
    out = {"refusal_rate_deployment": _refusal(_estimate(condition["contexts"][deployment]["compliance"])),
           "af_reasoning_rate": _estimate(condition["contexts"][training]["af_reasoning_rate"])}
    out.update({gap: _estimate(value) for gap, value in condition["gaps"].items()})
    presence = summary.get("contrasts", {}).get("presence_effect", {})
    if "compliance_gap" in presence:
        out["presence_effect"] = _estimate(presence["compliance_gap"])
    return out


def peer_preservation_quantities(summary: dict) -> dict[str, Estimate]:
    """The peer-presence effect on self-preservation over all scenarios, any peer."""
    effect = next((e for e in summary["peer_presence_effect"] if e["scope"] == "all" and e["relationship"] == "any"),
                  None)
    return {"peer_presence_effect": _estimate(effect["difference"] if effect else None)}


def coral_quantities(summary: dict) -> dict[str, Estimate]:
    """Agreement and agreement correctness of the first condition run."""
    metrics = next(iter(summary["metrics"].values()))
    return {name: _estimate(metrics.get(name)) for name in ("agreement", "agreement_correctness")}


READERS = {"goal_guarding": goal_guarding_quantities, "peer_preservation": peer_preservation_quantities,
           "coral": coral_quantities}


def _rows(model: str, quantities: dict[str, Estimate]) -> pd.DataFrame:
    return pd.DataFrame([{"model": model, "quantity": name, "value": e.value, "low": e.low, "high": e.high, "n": e.n}
                         for name, e in quantities.items()],
                        columns=["model", "quantity", "value", "low", "high", "n"])


class ModelProfile(Experiment):
    """Goal guarding, peer presence, Coral agreement and self-other overlap of each model, on one map."""

    name = "model-profile"
    Config = ModelProfileConfig
    Summary = ModelProfileSummary
    runs_in_driver = True
    main_plot = "profile_map"

    def models(self, cfg: ModelProfileConfig) -> dict[str, ModelField]:
        return {f"models.{i}": m for i, m in enumerate(cfg.profiled())}

    def units(self, cfg: ModelProfileConfig) -> list[Unit]:
        return [Unit(f"m{i}-{part}", {"index": i, "part": part})
                for i in range(len(cfg.profiled())) for part in cfg.parts]

    def run_unit(self, cfg: ModelProfileConfig, unit: Unit, seed: np.random.SeedSequence,
                 ctx: RunContext) -> UnitOutput:
        from pnyx.experiments.runner import execute

        index, part = unit.params["index"], unit.params["part"]
        model = f"m{index}"
        if part == "overlap":
            return self._overlap(cfg, cfg.profiled()[index], model, ctx)
        if part in ("presuppositions", "constraints"):
            return self._probe(cfg, part, cfg.profiled()[index], model, ctx)
        kind, part_cfg = validate(cfg.part_config(index, part))
        summary = execute(kind, part_cfg, run_path(ctx.out, unit.key, folder=True), resume=True, options=ctx.options)
        if summary["run"]["failed"]:
            raise PnyxError(f"part {unit.key!r}: {summary['run']['failed']} of {summary['run']['units']} units failed "
                            f"(see {unit.key}/report.md)")
        notes = [EMBEDDED_NOTE] if EMBEDDED_NOTE in summary.get("notes", []) else []
        return UnitOutput(_rows(model, READERS[part](summary)), {"notes": [{"note": n} for n in notes]})

    def _overlap(self, cfg: ModelProfileConfig, spec: ModelField, model: str, ctx: RunContext) -> UnitOutput:
        from pnyx.population.self_other_overlap import latent_soo, load_pairs, self_other_overlap

        built = ctx.model(spec, "focal").model
        pairs = load_pairs(cfg.overlap_pairs)
        try:
            estimates = self_other_overlap(built, pairs, cfg.overlap_layers, seed=cfg.seed)
        except PnyxError as e:
            if "transformers backend" not in str(e):
                raise
            return UnitOutput(_rows(model, {"self_other_distance": Estimate.undefined()}),
                              {"notes": [{"note": f"{model}: self-other overlap not measured ({e})"}]})
        latent, skipped = latent_soo(built, pairs, seed=cfg.seed)
        notes = [EMBEDDED_NOTE] if model_identity(built).startswith(IDENTITY_PREFIX) else []
        if skipped:
            notes.append(f"{model}: latent_soo left out {skipped} of {len(pairs)} prompt pairs whose two prompts "
                         f"tokenize to different lengths")
        quantities = {"latent_soo": latent, **{f"self_other_distance@{layer}": e for layer, e in estimates.items()}}
        return UnitOutput(_rows(model, quantities), {"notes": [{"note": n} for n in notes]})

    def _probe(self, cfg: ModelProfileConfig, part: str, spec: ModelField, model: str, ctx: RunContext) -> UnitOutput:
        """The presupposition or constraint probe on the focal model; its per-item rows as records."""
        from pnyx.population.constraint_probe import constraint_probe, load_requests
        from pnyx.population.presupposition_probe import load_items, presupposition_probe

        built = ctx.model(spec, "focal").model
        if part == "presuppositions":
            items, estimates = presupposition_probe(built, load_items(cfg.presupposition_items),
                                                    max_tokens=cfg.probe_max_tokens, seed=cfg.seed)
        else:
            items, estimates = constraint_probe(built, load_requests(cfg.constraint_requests),
                                                max_tokens=cfg.probe_max_tokens, seed=cfg.seed)
        notes = [EMBEDDED_NOTE] if model_identity(built).startswith(IDENTITY_PREFIX) else []
        return UnitOutput(_rows(model, estimates), {"notes": [{"note": n} for n in notes],
                                                    part: [{"model": model, **item} for item in items]})

    def summarize(self, cfg: ModelProfileConfig, results: pd.DataFrame,
                  records: dict[str, list[dict]]) -> ModelProfileSummary:
        """Every row as an estimate, by model spec; notes once each."""
        specs = [spec_of(m) for m in cfg.profiled()]
        quantities: dict[str, dict[str, Estimate]] = {spec: {} for spec in specs}
        for row in results.itertuples():
            none = lambda x: None if x is None or pd.isna(x) else float(x)  # noqa: E731
            quantities[specs[int(row.model[1:])]][row.quantity] = Estimate(none(row.value), none(row.low),
                                                                           none(row.high), int(row.n))
        notes = list(dict.fromkeys(r["note"] for r in records.get("notes", [])))
        used = {q.split("@")[0] for per in quantities.values() for q in per}
        return ModelProfileSummary(models=specs, quantities=quantities, notes=notes,
                                   sources={q: SOURCES[q] for q in SOURCES if q in used})

    def plot(self, cfg: ModelProfileConfig, results: pd.DataFrame,
             summary: ModelProfileSummary) -> dict[str, Figure]:
        fig = Figure(figsize=(6.4, 4.8), layout="constrained")
        ax = fig.add_subplot()
        shown = False
        for spec, per in summary.quantities.items():
            gap, refusal = per.get("compliance_gap"), per.get("refusal_rate_deployment")
            if gap is None or refusal is None or gap.value is None or refusal.value is None:
                continue
            af = per.get("af_reasoning_rate")
            marker, label = (("s", "no AF reasoning judged") if af is None or af.value is None else
                             ("*", "AF reasoning seen") if af.value > 0 else ("o", "no AF reasoning seen"))
            xerr = [[gap.value - gap.low], [gap.high - gap.value]] if gap.low is not None else None
            yerr = [[refusal.value - refusal.low], [refusal.high - refusal.value]] if refusal.low is not None else None
            ax.errorbar(gap.value, refusal.value, xerr=xerr, yerr=yerr, fmt=marker, markersize=11, capsize=3,
                        color="0.25", label=label)
            ax.annotate(spec, (gap.value, refusal.value), textcoords="offset points", xytext=(8, 8), fontsize=9)
            shown = True
        ax.axvline(0.0, color="0.6", linewidth=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("compliance gap (training - deployment compliance)")
        ax.set_ylabel("refusal rate, deployment context")
        ax.set_title("Refusal or faking: each model's place", fontsize=11)
        if shown:
            handles, labels = ax.get_legend_handles_labels()
            unique = dict(zip(labels, handles))
            ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=8, framealpha=0.9)
        else:
            ax.text(0.5, 0.5, "no goal-guarding part ran", ha="center", va="center", transform=ax.transAxes)
        return {"profile_map": fig}

    def report(self, cfg: ModelProfileConfig, summary: ModelProfileSummary) -> str:
        lines = ["Every quantity with its bootstrap 95% interval and its source; each part's full report is in "
                 "its subfolder (`m<i>-<part>/report.md`, `m<i>` the i-th model below).", ""]
        lines += [f"{note}" for note in summary.notes] + [""] if summary.notes else []
        lines += ["| model | quantity | estimate | source |", "|---|---|---|---|"]
        for spec, per in summary.quantities.items():
            for name, estimate in per.items():
                source = summary.sources.get(name.split("@")[0], "")
                lines.append(f"| `{spec}` | {name} | {format_estimate(estimate)} | {source} |")
        return "\n".join(lines)
