"""Yes/no questions about a model's free text (:class:`~pnyx.agents.judges.protocol.Question`
items): the judge of ``peer-preservation``, where each scenario asks its own questions
(pnyx's) about the focal model's replies outside tool calls."""

from __future__ import annotations

from typing import Any, Sequence

from pnyx.agents.judges.parsing import chat, fill, yes_no
from pnyx.agents.judges.protocol import Judgement, Question, Usage
from pnyx.agents.llm.protocol import complete, model_identity


class YesNoJudge:
    """Each question asked once, greedily, in one batched call: decision = a reply that is
    just yes or no (:func:`~pnyx.agents.judges.parsing.yes_no`), score = decision."""

    reads = Question

    def __init__(self, model: Any, *, max_tokens: int = 8):
        self.model, self.max_tokens = model, max_tokens

    def judge(self, items: Sequence[Question], *, seed: int | None = None) -> list[Judgement]:
        prompts = [fill(q.template, replies=q.replies) for q in items]
        replies = complete(self.model, [chat(p) for p in prompts], max_tokens=self.max_tokens, temperature=0.0,
                           seed=seed)
        out = []
        for prompt, reply in zip(prompts, replies):
            answer = yes_no(reply.text)
            out.append(Judgement(None if answer is None else float(answer), answer,
                                 {"prompt": prompt, "reply": reply.text}, Usage.of([reply])))
        return out

    def describe(self) -> str:
        return f"yes_no_question(max_tokens={self.max_tokens}) on {model_identity(self.model)}"
