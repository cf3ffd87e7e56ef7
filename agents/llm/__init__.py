"""Language-model backends: the batched protocol, naming models by spec, a model per role, and a completion cache."""

from pnyx.agents.llm.cache import CachedModel
from pnyx.agents.llm.protocol import Completion, LanguageModel, ToolCall, as_completion, complete, model_identity
from pnyx.agents.llm.registry import MODELS, check_model_spec, shared_model
from pnyx.agents.llm.roles import (CheckedModelField, ModelConfig, ModelField, RoleModel, check_model_field, role_model,
                                  spec_of)
from pnyx.agents.llm.scripted import ScriptedModel

__all__ = [
    "MODELS",
    "CachedModel",
    "Completion",
    "LanguageModel",
    "ModelConfig",
    "CheckedModelField",
    "ModelField",
    "RoleModel",
    "ScriptedModel",
    "ToolCall",
    "as_completion",
    "check_model_field",
    "check_model_spec",
    "complete",
    "model_identity",
    "role_model",
    "shared_model",
    "spec_of",
]
