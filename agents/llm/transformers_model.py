"""In-process language models with Hugging Face transformers, truly batched.

Chats are rendered with the model's chat template, sorted by length, padded on
the left and generated ``batch_size`` at a time, so one ``complete`` call runs
every pending turn in a few forward passes per token. ``temperature=0`` is greedy
decoding; otherwise sampling draws from a generator seeded with ``seed`` without
touching torch's global random state. Runs on the GPU when
``torch.cuda.is_available()``, else on the CPU.

Each reply is a :class:`~pnyx.agents.llm.protocol.Completion`: ``finish_reason`` is
``"stop"`` when the model ended its turn (an end-of-sequence token) and ``"length"``
when it reached ``max_tokens`` first; ``prompt_tokens`` counts the chat's rendered
tokens and ``completion_tokens`` the generated ones, its end token included (as
``transformers serve`` counts them; llama.cpp leaves the end token out).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from pnyx.agents.llm.protocol import Chat, Completion
from pnyx.errors import PnyxError


class TransformersModel:
    """A causal language model from a Hugging Face hub id or a local folder.

    ``source`` is anything ``AutoModelForCausalLM.from_pretrained`` takes; a local
    folder is loaded with ``local_files_only=True``, so it never touches the hub.
    ``device`` defaults to ``"cuda"`` when available, else ``"cpu"``; ``dtype`` to
    bfloat16 on the GPU and float32 on the CPU. ``adapter`` names a folder of LoRA
adapters saved by ``peft`` (as ``pnyx soo-finetune`` writes them), merged into the
weights after loading (extra ``soo``); the model's name then carries the adapter
folder and a digest of its weights. ``threads``, when given, sets
    torch's CPU thread count for the whole process: on a busy machine, fewer
    threads than cores avoids torch's threads waiting on each other at every op.
    """

    def __init__(
        self,
        source: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        threads: int | None = None,
        adapter: str | None = None,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise PnyxError(f"batch_size={batch_size} must be at least 1")
        if threads is not None:
            torch.set_num_threads(threads)
        self.source = str(source)
        self.name = f"transformers:{self.source}"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        default = torch.bfloat16 if self.device == "cuda" else torch.float32
        torch_dtype = getattr(torch, dtype, None) if dtype else default
        if not isinstance(torch_dtype, torch.dtype):
            raise PnyxError(f"unknown dtype {dtype!r} (e.g. float32, bfloat16)")
        local = Path(self.source).is_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source, local_files_only=local)
            self.model = AutoModelForCausalLM.from_pretrained(self.source, dtype=torch_dtype, local_files_only=local)
        except OSError as e:
            raise PnyxError(f"cannot load model {self.source!r} ({str(e).splitlines()[0]})") from None
        if not self.tokenizer.chat_template:
            raise PnyxError(f"model {self.source!r} has no chat template (use an instruct/chat model)")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if adapter is not None:
            self.model = merged_adapter(self.model, str(adapter))
            self.name = f"{self.name}(adapter={adapter}@{adapter_digest(str(adapter))})"
        self.model.to(self.device).eval()
        end = self.model.generation_config.eos_token_id
        end = end if end is not None else self.tokenizer.eos_token_id
        self.end_ids = [] if end is None else [end] if isinstance(end, int) else list(end)

    def complete(
        self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> list[Completion]:
        if not prompts:
            return []
        template = self.tokenizer.apply_chat_template
        texts = [template(chat, add_generation_prompt=True, tokenize=False) for chat in prompts]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        generator = None
        if temperature > 0 and seed is not None:
            generator = torch.Generator(self.device).manual_seed(seed)
        replies: list[Completion] = [Completion("")] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            outputs = self._generate([texts[i] for i in chunk], max_tokens, temperature, generator)
            for i, (text, generated, ended) in zip(chunk, outputs):
                replies[i] = Completion(text, "stop" if ended else "length", lengths[i], generated, self.name)
        return replies

    @torch.inference_mode()
    def _generate(self, texts, max_tokens, temperature, generator) -> list[tuple[str, int, bool]]:
        """(text, generated tokens, whether an end token came) for each of ``texts``."""
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        options = dict(max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        else:
            options.update(do_sample=False, temperature=None, top_k=None, top_p=None)
        if generator is not None:
            with torch.random.fork_rng(devices=[self.device] if self.device.startswith("cuda") else []):
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator, device=self.device)))
                output = self.model.generate(**batch, **options)
        else:
            output = self.model.generate(**batch, **options)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        ends = torch.isin(new_tokens, torch.tensor(self.end_ids, dtype=new_tokens.dtype, device=new_tokens.device))
        ended = ends.any(dim=1)
        counts = torch.where(ended, ends.int().argmax(dim=1) + 1, new_tokens.shape[1])
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [(text.strip(), int(n), bool(e)) for text, n, e in zip(texts, counts, ended)]

    def __repr__(self) -> str:
        return f"TransformersModel({self.source!r}, device={self.device!r})"


def adapter_digest(folder: str) -> str:
    """The first 12 hex digits of the SHA-256 of a peft adapter folder's weights file."""
    weights = Path(folder) / "adapter_model.safetensors"
    if not weights.is_file():
        raise PnyxError(f"adapter folder {folder!r} has no adapter_model.safetensors (saved by peft)")
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:12]


def merged_adapter(model, folder: str):
    """``model`` with the peft LoRA adapters in ``folder`` merged into its weights."""
    try:
        from peft import PeftModel
    except ImportError:
        raise PnyxError("adapter=... needs the peft package: pip install 'pnyx[soo]'") from None
    if not (Path(folder) / "adapter_config.json").is_file():
        raise PnyxError(f"adapter folder {folder!r} has no adapter_config.json (saved by peft)")
    try:
        return PeftModel.from_pretrained(model, folder).merge_and_unload()
    except (OSError, ValueError, KeyError) as e:
        raise PnyxError(f"cannot load adapter {folder!r} ({str(e).splitlines()[0]})") from None
