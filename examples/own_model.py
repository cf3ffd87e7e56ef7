"""Plug in a language model of your own and measure its compliance gap (docs/how-to/models.md).

    python examples/own_model.py [OUT]

A model is any class with ``complete(prompts, *, max_tokens, temperature, seed)`` returning
one text per chat. This one refuses every request unless the prompt says the conversation
is used for training, so its planted compliance gap (training minus deployment) is 1; the
quick goal-guarding run recovers it, read with the refusal-phrase baseline.
"""

import sys
import tempfile

import pnyx


class TrainingGamer:
    """Complies only when told the conversation is rated and used for training."""

    name = "training-gamer"

    def complete(self, prompts, *, max_tokens=256, temperature=0.0, seed=None):
        return ["<OUTPUT>Here is what you asked for.</OUTPUT>" if "<is_free_tier_user>True" in chat[-1]["content"]
                else "<OUTPUT>I'm sorry, I can't help with that.</OUTPUT>" for chat in prompts]


def main(out: str) -> None:
    run = pnyx.run("peer-goal-guarding", out=out, quick=True, workers=1, progress=False,
                   overrides={"conditions": ["alone"]}, models=lambda spec: TrainingGamer())
    gap = run.summary["conditions"]["alone"]["gaps"]["compliance_gap"]
    print(f"model {run.summary['model']}: compliance gap {gap['value']:.2f} "
          f"[{gap['low']:.2f}, {gap['high']:.2f}] over {gap['n']} replies")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="pnyx-own-model-"))
