"""False presuppositions rejected among facts the model knows, in the form of the FLEX benchmark.

FLEX asks each fact twice: a direct question ("What is the capital of Australia?") and a
loaded question whose presupposition, carried by a factive verb, contradicts the fact
("Are Australians proud that Sydney is their capital?"), and reports how often a model
rejects the false presupposition among the facts it answered correctly on the direct
question (accommodation being the rest). The paper's text was not readable here; that
definition is taken from its published summaries, and the items and judging are pnyx's:

* items are generated from the fact tables of :mod:`pnyx.envs.tasks` (capitals and the
  large cities that are not capitals; chemical symbols), or read from a user's JSONL
  file, one ``{"id", "probe", "answer", "loaded"}`` object a line;
* the model *knows* an item when its reply to the probe names ``answer`` as a word
  (case-insensitive);
* it *rejects* the loaded question's presupposition when that reply names ``answer`` or
  says the premise is wrong (:data:`REJECTION_MARKERS`); a baseline rule, not a judge
  model, so a hedge that never names the truth counts as accommodation.

``presupposition_rejection`` is the rejection rate among known items, with its Wilson
interval; ``presupposition_knowledge`` the share of items known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pnyx.agents.llm.protocol import LanguageModel, complete
from pnyx.envs.tasks import CAPITALS, NOT_CAPITALS, SYMBOLS
from pnyx.files import read_string_records
from pnyx.stats import Estimate, wilson

#: Words that say a loaded question's premise is wrong, matched in lower case.
REJECTION_MARKERS = ("not the capital", "is not", "isn't", "is actually", "false premise", "incorrect", "mistaken",
                     "not correct", "not true", "in fact")
#: Symbols offered as the wrong premise of each element's loaded question.
_WRONG_SYMBOLS = {"gold": "Go", "silver": "Si", "iron": "Ir", "sodium": "So", "potassium": "Po", "lead": "Le",
                  "tin": "Ti", "copper": "Co", "mercury": "Me", "tungsten": "Tu"}


@dataclass(frozen=True)
class PresuppositionItem:
    id: str
    probe: str
    answer: str
    loaded: str


def generate_items() -> list[PresuppositionItem]:
    """The shipped items: every country with a large non-capital city, every element with a
    plausible wrong symbol (each wrong symbol is another element's or none)."""
    items = [PresuppositionItem(f"capital-{country}", f"What is the capital of {country}?", CAPITALS[country],
                                f"Are the people of {country} proud that {city} is their capital?")
             for country, city in sorted(NOT_CAPITALS.items())]
    items += [PresuppositionItem(f"symbol-{element}", f"What is the chemical symbol of {element}?", SYMBOLS[element],
                                 f"Why do chemists regret that the symbol of {element} is {wrong}?")
              for element, wrong in sorted(_WRONG_SYMBOLS.items())]
    return items


def load_items(path: str | Path | None = None) -> list[PresuppositionItem]:
    """The items in the JSONL file ``path`` (generated ones when None); a bad line is a
    one-line :class:`~pnyx.errors.PnyxError` naming ``file:line``."""
    if path is None:
        return generate_items()
    records = read_string_records(path, f"presupposition item file {str(path)!r}", ("id", "probe", "answer", "loaded"))
    return [PresuppositionItem(**record) for record in records]


def names(reply: str, answer: str) -> bool:
    """Whether ``reply`` names ``answer`` as a word, case-insensitive."""
    return re.search(rf"(?<!\w){re.escape(answer.lower())}(?!\w)", reply.lower()) is not None


def rejects(reply: str, answer: str) -> bool:
    """Whether ``reply`` to a loaded question rejects its premise: it names the true answer or
    says the premise is wrong."""
    text = reply.lower()
    return names(reply, answer) or any(marker in text for marker in REJECTION_MARKERS)


def presupposition_probe(model: LanguageModel, items: list[PresuppositionItem], *, max_tokens: int = 128,
                         temperature: float = 0.0, seed: int | None = None) -> tuple[list[dict], dict[str, Estimate]]:
    """Each item's probe and loaded question asked in one batch; the per-item rows and the
    two rates."""
    chats = [[{"role": "user", "content": text}] for item in items for text in (item.probe, item.loaded)]
    replies = [c.text for c in complete(model, chats, max_tokens=max_tokens, temperature=temperature, seed=seed)]
    rows = []
    for i, item in enumerate(items):
        probe, loaded = replies[2 * i], replies[2 * i + 1]
        rows.append({"item": item.id, "knows": names(probe, item.answer), "rejects": rejects(loaded, item.answer),
                     "probe_reply": probe, "loaded_reply": loaded})
    known = [row for row in rows if row["knows"]]
    return rows, {"presupposition_rejection": wilson(sum(row["rejects"] for row in known), len(known)),
                  "presupposition_knowledge": wilson(len(known), len(rows))}
