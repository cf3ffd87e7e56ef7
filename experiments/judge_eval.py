"""Experiment ``judge-eval``: how well a judge agrees with human labels, before anyone trusts it.

Hughes, Sheshadri et al. ("Alignment Faking Revisited", 2025; repository
``safety-research/open-source-alignment-faking``) validated their alignment-faking (AF)
classifier on 106 human-labelled scratchpads (51 labelled AF) and report its AUROC
(0.92 with 20 votes, against 0.62 for Greenblatt et al.'s original classifier). This
kind does the same for any judge spec of :data:`pnyx.agents.judges.JUDGES` (a user's
class by import path included) on any labelled file ``data`` (fingerprinted, so a resume
refuses a changed file); the score and decision are the judge's
:class:`~pnyx.agents.judges.Judgement`:

* ``task: af`` (default): each text is a :class:`~pnyx.agents.judges.Reasoning` (its
  ``<SCRATCHPAD_REASONING>`` blocks when it has them). ``judge: keyword`` stands for
  ``keyword_af``, ``judge: model`` for ``af_classifier`` with ``votes``, ``threshold``,
  ``temperature`` (default 1) and ``max_tokens``.
* ``task: compliance``: each text is an :class:`~pnyx.agents.judges.Answer` (split into
  scratchpad and output, the request from ``request_field``). ``judge: model`` stands for
  ``strongreject_rubric`` with ``temperature`` (default 0) and ``max_tokens``; ``tags``
  is itself a judge spec.

A judge that calls a model runs on ``model``, the judge model, which has no default.
``pnyx judge-eval`` sets these fields from its flags (``--text-field`` sets ``text_field``).
Each unit judges ``items_per_unit`` consecutive items of the file (unit ``items-A-B``:
items A to B-1), seeded with ``seed`` as one call over all items would be; its rows are
the items' ``id``, ``label`` (0/1), ``score``, ``decision`` and ``raw`` (what the judge
saw and said, as JSON text). Items the judge could not read (every vote unreadable; an
unreadable grade or tag) keep an empty score and decision and are left out of the
metrics, which the summary counts as ``unreadable``. Metrics: AUROC (the Mann-Whitney
statistic: the probability that a random positive item scores above a random negative
one, ties counting one half), accuracy, precision, recall and F1 of the decisions, each
with a percentile bootstrap 95% interval over items, and the confusion matrix. The
summary records the ``temperature`` the judge sampled at (its role's, else the judge's);
``judge.jsonl`` the judge each unit ran.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from scipy.stats import rankdata

from pnyx.agents.judges import (Answer, Judge, Reasoning, judge_arguments, judge_class, judgements, make_judge,
                                takes_model)
from pnyx.agents.judges.parsing import split_response
from pnyx.agents.llm import CheckedModelField, LanguageModel, shared_model, spec_of
from pnyx.agents.llm.roles import model_config, usage_records
from pnyx.envs.benchmark_files import jsonl_values
from pnyx.errors import PnyxError
from pnyx.experiments.config import validate
from pnyx.experiments.experiment import (Experiment, ExperimentConfig, RunContext, RunOptions, Summary, Unit,
                                         UnitOutput, builds_specs)
from pnyx.experiments.runner import execute
from pnyx.files import MAX_DEPTH, check_depth, read_text
from pnyx.stats import MAX_BOOTSTRAP, Estimate

#: Largest labelled file read, in bytes.
MAX_FILE_BYTES = 256 * 2**20
#: The item type of each ``task``.
ITEMS = {"af": Reasoning, "compliance": Answer}
#: The settings that only ``judge: model`` reads.
MODEL_SETTINGS = ("votes", "threshold", "temperature", "max_tokens")
METRICS = ("auroc", "accuracy", "precision", "recall", "f1")


class JudgeEvalConfig(ExperimentConfig):
    kind: Literal["judge-eval"] = "judge-eval"
    #: A judge spec (``pnyx list``, or ``package.module:Class``); short names: ``keyword``
    #: (``keyword_af``), ``model`` (``af_classifier``; ``strongreject_rubric`` for compliance).
    judge: str
    #: What the labels say: alignment-faking reasoning or compliance.
    task: Literal["af", "compliance"] = "af"
    #: The judge model, for a judge that calls one; there is no judged model here.
    model: CheckedModelField | None = None
    #: The labelled file: ``.jsonl``, or ``.json`` holding a list or ``{"samples": [...]}``.
    data: str
    text_field: str
    label_field: str
    #: The label value that means positive, when labels are strings.
    positive: str | None = None
    #: The field holding an item's id; an item without it is named by its index.
    id_field: str = "id"
    #: The field holding the request (``task: compliance``).
    request_field: str | None = None
    #: Settings of ``judge: model``; a judge spec carries its own. ``votes`` and the
    #: ``threshold`` on the share of positive votes are the AF classifier's.
    votes: int = Field(20, ge=1)
    threshold: float = Field(0.4, gt=0.0, le=1.0)
    #: Unset: 1 for AF votes, 0 for compliance.
    temperature: float | None = Field(None, ge=0.0)
    max_tokens: int = Field(2048, ge=1)
    bootstrap: int = Field(2000, ge=1, le=MAX_BOOTSTRAP)
    #: Items judged per unit; a resumed run judges only the units that did not finish.
    items_per_unit: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _valid_judge(self, info: ValidationInfo) -> JudgeEvalConfig:
        fields = type(self).model_fields
        if self.judge != "model" and any(getattr(self, name) != fields[name].default for name in MODEL_SETTINGS):
            raise ValueError("--votes, --threshold, --temperature and --max-tokens apply to --judge model only; "
                             "a judge spec takes them as arguments")
        if builds_specs(info):
            try:
                uses_model = takes_model(judge_class(self.judge_spec(), ITEMS[self.task]))
                arguments = judge_arguments(self.judge_spec())
            except PnyxError as e:
                raise ValueError(f"--judge {self.judge}: {e} (--task {self.task})") from None
            _check_sampling(arguments, f"--judge {self.judge}")
            if uses_model and self.model is None:
                raise ValueError(f"--judge {self.judge} needs --model SPEC (the judge model)")
        if self.task == "compliance" and not self.request_field:
            raise ValueError("--task compliance needs --request-field (the field holding the request)")
        return self

    def judge_spec(self) -> str:
        """The judge spec ``judge`` stands for: the short names ``keyword`` and ``model`` (with
        the settings) map here; any other value is a spec itself."""
        if self.judge == "keyword":
            return "keyword_af"
        if self.judge != "model":
            return self.judge
        if self.task == "af":
            temperature = 1.0 if self.temperature is None else self.temperature
            return (f"af_classifier(votes={self.votes!r}, temperature={temperature!r}, "
                    f"threshold={self.threshold!r}, max_tokens={self.max_tokens!r})")
        temperature = 0.0 if self.temperature is None else self.temperature
        return f"strongreject_rubric(temperature={temperature!r}, max_tokens={self.max_tokens!r})"


def _check_sampling(arguments: dict[str, Any], where: str) -> None:
    """A ``ValueError`` unless the judge's ``temperature`` is a number >= 0 and its
    ``max_tokens`` an integer >= 1, where it takes them."""
    temperature, max_tokens = arguments.get("temperature"), arguments.get("max_tokens")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0 <= temperature < math.inf):
        raise ValueError(f"{where}: temperature must be a number >= 0, got {temperature!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"{where}: max_tokens must be an integer >= 1, got {max_tokens!r}")


def load_labelled(path: str | Path, *, text_field: str, label_field: str, positive: str | None = None,
                  id_field: str = "id", request_field: str | None = None) -> pd.DataFrame:
    """Items of a labelled file as a table ``id, text, label`` (and ``request``); labels
    are 0/1, booleans, or any value compared (as text) with ``positive``."""
    path = Path(path)
    text = read_text(path, f"labelled file {str(path)!r}", MAX_FILE_BYTES)
    items = _items(text, str(path))
    rows = []
    for n, item in enumerate(items):
        where = f"labelled file {str(path)!r} item {n + 1}"
        if not isinstance(item, dict):
            raise PnyxError(f"{where}: expected an object, got {type(item).__name__}")
        fields = [text_field, label_field] + ([request_field] if request_field else [])
        for field in fields:
            if field not in item:
                raise PnyxError(f"{where}: no field {field!r} (fields: {', '.join(map(str, item)) or 'none'})")
        if not isinstance(item[text_field], str):
            raise PnyxError(f"{where}: field {text_field!r} is not text")
        row = {"id": str(item.get(id_field, n)), "text": item[text_field],
               "label": _label(item[label_field], positive, where)}
        if request_field:
            row["request"] = str(item[request_field])
        rows.append(row)
    if not rows:
        raise PnyxError(f"labelled file {str(path)!r} holds no item")
    table = pd.DataFrame(rows)
    if table["id"].duplicated().any():
        raise PnyxError(f"labelled file {str(path)!r}: duplicate id {table['id'][table['id'].duplicated()].iloc[0]!r}")
    return table


def _items(text: str, where: str) -> list:
    """A ``.jsonl`` file is read line by line; any other file as one JSON document, or as
    JSONL when it is not one."""
    data = None
    if not where.endswith(".jsonl"):
        try:
            data = json.loads(text)
        except RecursionError:
            raise PnyxError(f"labelled file {where!r} is nested too deeply (limit {MAX_DEPTH} levels)") from None
        except json.JSONDecodeError:
            pass
        check_depth(data, f"labelled file {where!r}")
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if not isinstance(data.get("samples"), list):
            raise PnyxError(f"labelled file {where!r}: a JSON object must hold a 'samples' list")
        return data["samples"]
    return jsonl_values(text.split("\n"), where)


def _label(value: Any, positive: str | None, where: str) -> int:
    if positive is not None:
        return int(str(value).lower() == positive.lower()) if isinstance(value, bool) else int(str(value) == positive)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    raise PnyxError(f"{where}: label {value!r} is not 0/1 or a boolean; name the positive label with --positive")


def judge_items(items: pd.DataFrame, judge: Judge, *, task: str, seed: int = 0) -> pd.DataFrame:
    """``items`` with ``score`` (NaN when unreadable), ``decision`` (``None`` likewise) and
    ``raw`` (what the judge saw and said, as JSON text) added."""
    texts = items["text"].tolist()
    if task == "af":
        judged = [Reasoning(split_response(t).scratchpad if "<scratchpad_reasoning>" in t.lower() else t)
                  for t in texts]
    else:
        judged = [Answer(q, r.scratchpad, r.output) for q, r in zip(items["request"], map(split_response, texts))]
    found = judgements(judge, judged, seed=seed)
    return items.assign(score=np.array([math.nan if j.score is None else j.score for j in found], float),
                        decision=pd.array([j.decision for j in found], dtype="boolean"),
                        raw=[json.dumps(j.raw) for j in found])


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative) + P(tie) / 2 (Mann-Whitney
    U / (n+ n-), from average ranks); NaN without both classes."""
    labels = np.asarray(labels, bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if not n_pos or not n_neg:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion(labels: np.ndarray, decisions: np.ndarray) -> dict[str, int]:
    labels, decisions = np.asarray(labels, bool), np.asarray(decisions, bool)
    return {"tp": int((labels & decisions).sum()), "fp": int((~labels & decisions).sum()),
            "tn": int((~labels & ~decisions).sum()), "fn": int((labels & ~decisions).sum())}


def point_metrics(labels: np.ndarray, scores: np.ndarray, decisions: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS`; NaN where its denominator is 0."""
    c = confusion(labels, decisions)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]

    def ratio(a, b):
        return a / b if b else math.nan

    return {"auroc": auroc(labels, scores), "accuracy": ratio(tp + tn, tp + fp + tn + fn),
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn)}


class Metrics(BaseModel):
    """Each metric of :data:`METRICS` over the readable items, with its bootstrap interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    auroc: Estimate
    accuracy: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate


class Confusion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tp: int
    fp: int
    tn: int
    fn: int


class Bootstrap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    replicates: int
    #: What each replicate resamples: ``items``.
    resampled: str
    seed: int


class Evaluation(BaseModel):
    """:func:`evaluate`'s metrics of a judge's predictions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metrics: Metrics
    confusion_matrix: Confusion
    n_items: int
    #: Items with a decision; the metrics are over these.
    n_readable: int
    unreadable: int
    #: Readable items labelled positive.
    positives: int
    bootstrap: Bootstrap


class JudgeEvalSummary(Evaluation, Summary):
    model_config = ConfigDict(extra="forbid", frozen=True)
    task: Literal["af", "compliance"]
    #: What the judge calls itself (:meth:`~pnyx.agents.judges.Judge.describe`).
    judge: str
    spec: str
    #: The judge model's spec; None for a judge without one.
    model: str | None
    #: The temperature the judge sampled at; None for a judge without a model.
    temperature: float | int | None
    data: str
    #: The judge model's usage per role (:func:`~pnyx.agents.llm.roles.summarize_usage`), which
    #: the runner fills in; empty for a judge without a model.
    usage: list[dict[str, Any]] = []


def evaluate(predictions: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> Evaluation:
    """Metrics with percentile bootstrap 95% intervals over the readable items, and the confusion matrix."""
    readable = predictions[predictions["decision"].notna()]
    labels = readable["label"].to_numpy(bool)
    scores = readable["score"].to_numpy(float)
    decisions = readable["decision"].to_numpy(bool)
    n = len(readable)
    point = point_metrics(labels, scores, decisions) if n else dict.fromkeys(METRICS, math.nan)
    rng = np.random.default_rng(seed)
    boot = {m: [] for m in METRICS}
    for _ in range(n_boot if n else 0):
        i = rng.integers(0, n, n)
        for m, v in point_metrics(labels[i], scores[i], decisions[i]).items():
            boot[m].append(v)
    metrics = {}
    for m in METRICS:
        values = np.array(boot[m], float)
        values = values[~np.isnan(values)]
        if math.isnan(point[m]) or not len(values):
            metrics[m] = Estimate(point[m], None, None, n)
        else:
            low, high = np.quantile(values, [0.025, 0.975], method="inverted_cdf")
            metrics[m] = Estimate(point[m], low, high, n)
    return Evaluation(metrics=Metrics(**metrics), confusion_matrix=Confusion(**confusion(labels, decisions)),
                      n_items=len(predictions), n_readable=n, unreadable=len(predictions) - n,
                      positives=int(labels.sum()), bootstrap=Bootstrap(replicates=n_boot, resampled="items", seed=seed))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the decisions "score >= t", for every distinct score
    t from the highest down, after (0, 0): the ROC curve whose area by trapezoids is
    :func:`auroc` (tied scores move both rates at once, counting one half). Needs both classes."""
    labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
    thresholds = np.unique(scores)[::-1]
    above = scores[:, None] >= thresholds[None, :]
    tpr = above[labels].sum(axis=0) / labels.sum()
    fpr = above[~labels].sum(axis=0) / (~labels).sum()
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def scores_beyond_decisions(predictions: pd.DataFrame) -> bool:
    """Whether the readable items' scores say more than their decisions: all finite, and
    not all equal to the decision as 0/1."""
    readable = predictions[predictions["decision"].notna()]
    scores = readable["score"].to_numpy(float)
    return bool(len(scores)) and bool(np.isfinite(scores).all()) and bool(
        (scores != readable["decision"].to_numpy(bool).astype(float)).any())


class JudgeEval(Experiment):
    """A judge's AUROC, accuracy, precision, recall and F1 against human labels."""

    name = "judge-eval"
    Config = JudgeEvalConfig
    Summary = JudgeEvalSummary
    runs_in_driver = True
    main_plot = "roc"

    def units(self, cfg: JudgeEvalConfig) -> list[Unit]:
        items = load_labelled(cfg.data, text_field=cfg.text_field, label_field=cfg.label_field,
                              positive=cfg.positive, id_field=cfg.id_field,
                              request_field=cfg.request_field if cfg.task == "compliance" else None)
        size = cfg.items_per_unit
        return [Unit(key=f"items-{start}-{min(start + size, len(items))}",
                     params={"items": items.iloc[start:start + size].reset_index(drop=True)})
                for start in range(0, len(items), size)]

    def run_unit(self, cfg: JudgeEvalConfig, unit: Unit, seed: np.random.SeedSequence,
                 ctx: RunContext) -> UnitOutput:
        spec = cfg.judge_spec()
        uses_model = takes_model(judge_class(spec, ITEMS[cfg.task]))
        roles = [ctx.model(cfg.model, "judge")] if uses_model else []
        judge = make_judge(spec, ITEMS[cfg.task], *roles)
        rows = judge_items(unit.params["items"], judge, task=cfg.task, seed=cfg.seed).drop(columns=["text"])
        temperature = None
        if uses_model:
            temperature = model_config(cfg.model).temperature
            if temperature is None:
                temperature = judge_arguments(spec).get("temperature")
        used = {"judge": judge.describe(), "spec": spec, "model": spec_of(cfg.model) if uses_model else None,
                "temperature": temperature}
        return UnitOutput(rows=rows, records={"judge": [used], "usage": usage_records(roles)})

    def summarize(self, cfg: JudgeEvalConfig, results: pd.DataFrame,
                  records: dict[str, list[dict]]) -> JudgeEvalSummary:
        evaluation = evaluate(results, n_boot=cfg.bootstrap, seed=cfg.seed)
        return JudgeEvalSummary(task=cfg.task, **records["judge"][0], data=cfg.data, **dict(evaluation))

    def plot(self, cfg: JudgeEvalConfig, results: pd.DataFrame, summary: JudgeEvalSummary) -> dict[str, Figure]:
        """``roc``: on ROC axes with the chance diagonal, the readable items' ROC curve
        (:func:`roc_curve`) when the judge's scores say more than its decisions
        (:func:`scores_beyond_decisions`), and always the operating point of its decisions
        (false- and true-positive rates from the confusion matrix); the title says which is
        drawn. Without both classes among the readable items, neither is defined and the
        axes say so."""
        c = summary.confusion_matrix
        fig = Figure(figsize=(6.6, 4.6), layout="constrained")
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="chance")
        if c.tp + c.fn and c.fp + c.tn:
            if scores_beyond_decisions(results):
                readable = results[results["decision"].notna()]
                fpr, tpr = roc_curve(readable["label"].to_numpy(bool), readable["score"].to_numpy(float))
                ax.plot(fpr, tpr, marker=".", label="scores")
                drawn = f"ROC curve of its scores (AUROC {_number(summary.metrics.auroc.value)}) and its decisions"
            else:
                drawn = "binary decisions only: their operating point, no ROC curve"
            ax.plot([c.fp / (c.fp + c.tn)], [c.tp / (c.tp + c.fn)], "X", color="C3", markersize=9,
                    label="decisions (operating point)")
        else:
            drawn = "no ROC: the readable items hold one class only"
            ax.annotate("undefined: one class only", (0.5, 0.5), ha="center", va="center")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="upper left", bbox_to_anchor=(1.03, 1), fontsize="small")
        judge = "\n".join(textwrap.wrap(summary.judge, 72))
        fig.suptitle(f"{judge}\n{drawn}\n{summary.n_readable} readable items, {summary.positives} positive",
                     fontsize="medium")
        return {"roc": fig}

    def report(self, cfg: JudgeEvalConfig, summary: JudgeEvalSummary) -> str:
        m, c = summary.metrics, summary.confusion_matrix
        on = f" on `{summary.model}` at temperature {summary.temperature}" if summary.model else ""
        lines = [
            headline(summary) + ".",
            "",
            f"Judge spec `{summary.spec}`{on}; task `{summary.task}`; data `{summary.data}`: "
            f"{summary.n_items} items, {summary.positives} labelled positive among the {summary.n_readable} "
            f"the judge read. Intervals: percentile bootstrap 95% over items "
            f"({summary.bootstrap.replicates} replicates).",
            "",
            "| metric | value | 95% interval |",
            "|---|---|---|",
        ]
        for name in METRICS:
            e = getattr(m, name)
            lines.append(f"| {name} | {_number(e.value)} | [{_number(e.low)}, {_number(e.high)}] |")
        lines += ["", f"Confusion matrix: {c.tp} true positives, {c.fp} false positives, {c.tn} true "
                      f"negatives, {c.fn} false negatives."]
        return "\n".join(lines)


def headline(summary: JudgeEvalSummary | dict) -> str:
    """One line: the judge's AUROC, accuracy and F1, and how many items it read; ``summary``
    may also be what ``summary.json`` holds."""
    if isinstance(summary, dict):
        summary = JudgeEvalSummary.stored(summary, "the judge-eval summary")
    m = summary.metrics
    return (f"{summary.judge}: AUROC {_number(m.auroc.value)}, accuracy {_number(m.accuracy.value)}, "
            f"F1 {_number(m.f1.value)} on {summary.n_readable} items ({summary.unreadable} unreadable)")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def judge_eval(*, out: str | Path, resume: bool = False, cache: str | None = None,
               models: Callable[[str], LanguageModel] = shared_model, **fields: Any) -> dict:
    """Run ``judge-eval`` with the config ``fields`` into ``out`` in this process; returns the
    summary. The judge is checked before anything is read or called."""
    kind, cfg = validate({"kind": "judge-eval", **fields})
    return execute(kind, cfg, Path(out), resume=resume,
                   options=RunOptions(workers=1, progress=False, models=models, cache=cache))
