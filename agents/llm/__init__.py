"""Language-model backends: the batched protocol, naming models by spec, and a completion cache."""

from pnyx.agents.llm.cache import CachedModel
from pnyx.agents.llm.protocol import LanguageModel, model_identity
from pnyx.agents.llm.registry import check_model_spec, make_model, model_names, register_model, shared_model
from pnyx.agents.llm.scripted import ScriptedModel

__all__ = [
    "CachedModel",
    "LanguageModel",
    "ScriptedModel",
    "check_model_spec",
    "make_model",
    "model_identity",
    "model_names",
    "register_model",
    "shared_model",
]
