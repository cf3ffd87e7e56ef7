"""Self-other overlap (SOO) fine-tuning with LoRA adapters (Carauleanu et al. 2024, arXiv:2412.16325).

The paper's method ("Self-Other Overlap fine-tuning"; LoRA on the LLMs in its "LLM
experimental setup") trains adapters to shrink the distance between the activations
of self- and other-referencing prompts, while a second term keeps the model's
behaviour close to the original. The loss of one step here is::

    loss = SOO + kl_weight * KL(original || adapted)

``SOO`` is the overlap distance of :mod:`pnyx.population.self_other_overlap`
(mean squared error between the self and other activations at the prompts' last
token), averaged over the chosen layers and a batch of training pairs. The
preservation term is pnyx's form of the paper's capability-preserving term: the
KL divergence of the adapted model's next-token distribution at each training
prompt's last token from the frozen original's (the same network with adapters
disabled), so the adapters may move the representation but not what the model
would say next (``kl_weight=0`` drops the term, and with it the full forward passes
it needs). The authors' own script differs (``agencyenterprise/SOO-Honest-AI``,
``LLM experiments/soo_fine_tune.py``, ``train_model``): its loss is the KL divergence
between the output distributions of the other and the self prompt at every position of
the two prompts padded to 128 tokens, with no preservation term, on LoRA adapters of
rank 8 (alpha 32, dropout 0.2) at the model's default target modules, AdamW at 5e-5 for
20 epochs. pnyx's loss acts on the activations its overlap measures instead, at one
aligned position, so pairs of any length train. The held-out pairs are measured with
both overlaps, pnyx's per layer and the authors' ``latent_soo``, before and after.
Training runs on a fixed sequence of batches drawn from ``seed``
inside a forked torch random state, so the caller's random state is untouched.
Needs ``peft`` (extra ``soo``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pnyx.errors import PnyxError
from pnyx.population.self_other_overlap import (DEFAULT_MODULE, PromptPair, causal_lm, check_layers,
                                                decoder_layers, default_layers, last_token_states, latent_soo,
                                                pair_distances)


@dataclass(frozen=True)
class SOOTraining:
    """The settings of one SOO fine-tuning run."""

    layers: tuple[int, ...] | None = None  # decoder layers compared; None: default_layers
    module: str = DEFAULT_MODULE  # module of each decoder layer whose output is compared
    steps: int = 40
    batch_pairs: int = 8  # training pairs per step
    lr: float = 1e-3
    rank: int = 8  # LoRA rank
    alpha: int = 16  # LoRA scaling numerator (scale = alpha / rank)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    kl_weight: float = 1.0
    seed: int = 0


@dataclass
class SOOResult:
    """Held-out SOO distance per layer before and after training, and the loss per step."""

    layers: list[int]
    before: list[float]
    after: list[float]
    history: list[dict] = field(default_factory=list)
    #: The authors' latent SOO on the held-out pairs of equal token length, before and after.
    latent_before: float | None = None
    latent_after: float | None = None


def finetune(model, train: list[PromptPair], held_out: list[PromptPair], settings: SOOTraining = SOOTraining(),
             out: str | Path | None = None) -> SOOResult:
    """Train LoRA adapters on ``train`` pairs, measuring the SOO distance on ``held_out``
    pairs before and after; the adapters are saved to the folder ``out`` when given.

    ``model`` is a transformers-backend language model; the adapters are added to its
    network in place, so it generates with them afterwards.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise PnyxError("SOO fine-tuning needs the peft package: pip install 'pnyx[soo]'") from None
    if not train or not held_out:
        raise PnyxError("SOO fine-tuning needs training and held-out prompt pairs")
    if settings.steps < 1 or settings.batch_pairs < 1:
        raise PnyxError("steps and batch_pairs must be at least 1")
    network, tokenizer = causal_lm(model)
    layers = list(settings.layers) if settings.layers is not None else default_layers(len(decoder_layers(network)))
    layers = check_layers(network, layers, settings.module)
    before = pair_distances(network, tokenizer, held_out, layers, settings.module).mean(axis=0)
    latent_before = latent_soo(model, held_out)[0].value
    rng = np.random.default_rng(settings.seed)
    history = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0,
                            target_modules=list(settings.target_modules))
        adapted = get_peft_model(network, config)
        adapted.train()
        optimizer = torch.optim.Adam([p for p in adapted.parameters() if p.requires_grad], lr=settings.lr)
        for step in range(settings.steps):
            chunk = [train[i] for i in rng.choice(len(train), size=min(settings.batch_pairs, len(train)), replace=False)]
            prompts = [p.self for p in chunk] + [p.other for p in chunk]
            preserve = settings.kl_weight > 0
            states, logits = last_token_states(adapted, tokenizer, prompts, layers, settings.module, logits=preserve)
            n = len(chunk)
            soo = torch.stack([((states[layer][:n] - states[layer][n:]) ** 2).mean() for layer in layers]).mean()
            kl = torch.zeros(())
            if preserve:
                with torch.no_grad(), adapted.disable_adapter():
                    _, reference = last_token_states(adapted, tokenizer, prompts, layers, settings.module, logits=True)
                kl = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(reference, -1), log_target=True,
                              reduction="batchmean")
            loss = soo + settings.kl_weight * kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append({"step": step, "loss": loss.item(), "soo": soo.item(), "kl": kl.item()})
        adapted.eval()
    after = pair_distances(adapted, tokenizer, held_out, layers, settings.module).mean(axis=0)
    latent_after = latent_soo(model, held_out)[0].value
    if out is not None:
        adapted.save_pretrained(str(out))
    return SOOResult(layers, before.tolist(), after.tolist(), history, latent_before, latent_after)


def finetune_to_folder(model_spec: str, out: str | Path, settings: SOOTraining = SOOTraining(), *,
                       pairs_file: str | None = None, held_out: int = 2) -> SOOResult:
    """Build ``model_spec``, fine-tune it on the pairs of ``pairs_file`` (the shipped pairs
    when None) less ``held_out`` templates, and write the adapters and ``soo_finetune.json``
    (settings, held-out distances before and after, loss per step) to the folder ``out``.
    The adapters then load as ``MODEL_SPEC(adapter=OUT)``."""
    from pnyx.agents.llm.embedded import EMBEDDED_NOTE, IDENTITY_PREFIX
    from pnyx.agents.llm.protocol import model_identity
    from pnyx.agents.llm.registry import MODELS
    from pnyx.population.self_other_overlap import load_pairs, split_pairs

    train, held = split_pairs(load_pairs(pairs_file), held_out)
    model = MODELS.make(model_spec)
    out = Path(out)
    result = finetune(model, train, held, settings, out=out)
    record = {"model": model_spec, "pairs_file": pairs_file, "held_out_templates": held_out,
              "settings": asdict(settings), **asdict(result)}
    if model_identity(model).startswith(IDENTITY_PREFIX):
        record["note"] = EMBEDDED_NOTE
    (out / "soo_finetune.json").write_text(json.dumps(record, indent=1) + "\n")
    return result
