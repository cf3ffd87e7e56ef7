"""Language-model backends: the batched protocol, naming models by spec, and a completion cache."""

from pnyx.agents.llm.cache import CachedModel
from pnyx.agents.llm.protocol import LanguageModel, model_identity
from pnyx.agents.llm.registry import MODELS, check_model_spec, shared_model
from pnyx.agents.llm.scripted import ScriptedModel

__all__ = [
    "MODELS",
    "CachedModel",
    "LanguageModel",
    "ScriptedModel",
    "check_model_spec",
    "model_identity",
    "shared_model",
]
