"""A language model playing the matrix games: ``llm(model=SPEC, persona=..., history=full|K)``.

A batch policy (:mod:`pnyx.agents.protocol`) for every registered two-player 2x2 game
and ``public_goods``, with the words for the two actions that the game's module declares
(:func:`pnyx.envs.game`). The engine tells it the game (:class:`~pnyx.agents.protocol.GameInfo`);
for each game it keeps the rounds played, rebuilt from the observations, and each turn
it writes one prompt per game (the rules, every outcome's payoffs in words and numbers,
the round, the history as a table, the totals) and sends the prompts of all its games
as one ``complete`` call. The reply's move is read by :func:`extract_move`. Replies
without a move are asked again once, in one more call; what still has none is played as
``fallback`` (``cooperate``, ``defect`` or ``random``) and counted: ``truncated`` when the
reply hit the token limit, ``unparseable`` otherwise (:attr:`LLMPlayer.stats`).
:attr:`LLMPlayer.cooperated` counts the games in which it chose to cooperate, per turn.

Arguments: ``model`` a model spec (default: the experiment's model, else ``embedded``),
``persona`` one of :data:`PERSONAS`, ``history`` ``full`` or the number of most recent
rounds shown, ``fallback``, ``max_tokens``, ``temperature``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from pnyx.agents.llm.roles import RoleModel, check_model_field, role_model
from pnyx.agents.protocol import GameInfo
from pnyx.envs import game as declared_game
from pnyx.errors import PnyxError

PERSONAS = {
    "neutral": "",
    "cooperative": "You value mutual cooperation and want both players to do well.",
    "competitive": "You want to score more points than the other player.",
    "selfish": "You care only about your own points.",
    "forgiving": "You give the other player another chance after a defection.",
    "vengeful": "You never let a defection against you go unanswered.",
}
FALLBACKS = ("cooperate", "defect", "random")
_STEMS = (("cooperat", "defect"), ("contribut", "keep"))


def _points(x: float) -> str:
    return f"{x:g} point" if x == 1 else f"{x:g} points"


def move_words(game: str) -> tuple[str, str]:
    """The words for action 0 (cooperate) and action 1 (defect) that game ``game`` declares."""
    return declared_game(game).actions


def extract_move(text: str, game: str) -> int | None:
    """0 (cooperate), 1 (defect) or ``None``.

    Recognised: the game's own action words, "cooperate"/"defect" and their forms,
    "contribute"/"keep", and a capital C or D standing alone. If the reply has a line
    ``Move: ...``, its first recognised word counts; otherwise every recognised word in
    the reply must name the same action.
    """
    words = [w.lower() for w in move_words(game)]
    stems = [(words[0],) + tuple(s[0] for s in _STEMS), (words[1],) + tuple(s[1] for s in _STEMS)]
    pattern = re.compile(r"(?i:\b(" + "|".join(re.escape(w) for w in stems[0] + stems[1]) + r")\w*)|\b([CD])\b")

    def actions(segment: str) -> list[int]:
        found = []
        for m in pattern.finditer(segment):
            token = (m.group(1) or "").lower()
            found.append(0 if m.group(2) == "C" or token in stems[0] else 1)
        return found

    lines = re.findall(r"(?im)^\W*move\W*:(.*)$", text)
    if lines:
        found = actions(lines[-1])
        return found[0] if found else None
    found = set(actions(text))
    return found.pop() if len(found) == 1 else None


class LLMPlayer:
    """A language model choosing each move from the rules and the history of the game."""

    def __init__(self, model: Any = None, persona: str = "neutral", history: Any = "full",
                 fallback: str = "random", max_tokens: int = 32, temperature: float = 0.0):
        if persona not in PERSONAS:
            raise PnyxError(f"unknown persona {persona!r} (known: {', '.join(PERSONAS)})")
        if history != "full" and not (isinstance(history, int) and not isinstance(history, bool) and history >= 0):
            raise PnyxError(f"history={history!r} must be 'full' or a number of rounds >= 0")
        if fallback not in FALLBACKS:
            raise PnyxError(f"fallback={fallback!r} must be one of {', '.join(FALLBACKS)}")
        if int(max_tokens) < 1 or float(temperature) < 0:
            raise PnyxError("max_tokens must be >= 1 and temperature >= 0")
        if model is not None:
            check_model_field(model)
        self.model, self.persona, self.history = model, persona, history
        self.fallback, self.max_tokens, self.temperature = fallback, int(max_tokens), float(temperature)
        self.game: GameInfo | None = None
        self.role: RoleModel | None = None
        self.stats = dict.fromkeys(("moves", "retried", "unparseable", "truncated", "fallback"), 0)

    def bind_model(self, role: RoleModel) -> None:
        """Use ``role`` (built by the experiment from its model config) for every call."""
        self.role = role

    def set_game(self, game: GameInfo) -> None:
        self.words = move_words(game.name)
        self.game = game

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        if self.game is None:
            raise PnyxError("the llm policy needs the engine to tell it the game (set_game)")
        self.rng = np.random.default_rng(seed)
        self.rounds: list[list[tuple]] = [[] for _ in range(n)]
        self.cooperated: list[int] = []

    def reset(self, seed: int | None = None) -> None:
        self.reset_batch(1, seed)

    def act(self, observation: int) -> int:
        return int(self.act_batch(np.asarray([observation]))[0])

    # -- the game in words -------------------------------------------------------------

    def _outcome(self, obs: int) -> tuple:
        """(own action, the others' actions, own points, the others' points) of a round."""
        g = self.game
        if g.payoffs is not None:
            own, other = obs >> 1, obs & 1
            mine, theirs = g.payoffs[own][other]
            return own, other, mine, theirs
        n = g.group_size
        own, defectors = divmod(obs, n)
        contributors = (n - 1 - defectors) + (own == 0)
        points = g.multiplier * g.contribution * contributors / n - g.contribution * (own == 0)
        return own, n - 1 - defectors, points, None

    def rules(self) -> str:
        g = self.game
        c, d = self.words
        if g.payoffs is not None:
            p = g.payoffs
            lines = [f"You play a repeated two-player game. Each round both players choose at the same time "
                     f"between '{c}' and '{d}'. Points for each outcome:"]
            for own in (0, 1):
                for other in (0, 1):
                    mine, theirs = p[own][other]
                    lines.append(f"- you {(c, d)[own]}, the other player {(c, d)[other]}: you get {_points(mine)}, "
                                 f"they get {_points(theirs)}.")
            return "\n".join(lines)
        return (f"You play a repeated public goods game in a group of {g.group_size} players. Each round every "
                f"player chooses at the same time to '{c}' {_points(g.contribution)} to a common pot or to "
                f"'{d}' them. The pot is multiplied by {g.multiplier:g} and shared equally among all "
                f"{g.group_size} players, whatever they chose. So each contribution returns "
                f"{g.multiplier / g.group_size:g} points to every player, the contributor included, and keeping "
                f"saves the contributor {_points(g.contribution)}.")

    def messages(self, rounds: list[tuple]) -> list[dict]:
        """The chat for one game, given its rounds so far."""
        g = self.game
        c, d = self.words
        system = " ".join(x for x in ("You are a player in a game.", PERSONAS[self.persona],
                                      f"Reply with one line 'Move: {c}' or 'Move: {d}'.") if x)
        shown = rounds if self.history == "full" else rounds[len(rounds) - self.history:] if self.history else []
        parts = [self.rules(), f"The game lasts {g.turns} rounds. This is round {len(rounds) + 1}."]
        if shown:
            two = g.payoffs is not None
            header = ("| round | you | other player | your points | their points |" if two
                      else "| round | you | others who contributed | your points |")
            table = [header, "|" + "---|" * (header.count("|") - 1)]
            first = len(rounds) - len(shown) + 1
            for k, (own, other, mine, theirs) in enumerate(shown, first):
                cells = [str(k), (c, d)[own], (c, d)[other] if two else f"{other} of {g.group_size - 1}",
                         f"{mine:g}"] + ([f"{theirs:g}"] if two else [])
                table.append("| " + " | ".join(cells) + " |")
            note = "" if len(shown) == len(rounds) else f" (the last {len(shown)} of {len(rounds)} rounds)"
            parts.append(f"History{note}:\n" + "\n".join(table))
            total = sum(r[2] for r in rounds)
            parts.append(f"Your total so far: {_points(total)}"
                         + (f"; the other player's: {_points(sum(r[3] for r in rounds))}." if two else "."))
        else:
            parts.append("No rounds have been played yet.")
        parts.append(f"Choose your move for this round: {c} or {d}.")
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]

    # -- playing -----------------------------------------------------------------------

    def _model(self) -> RoleModel:
        if self.role is None:
            self.role = role_model(self.model or "embedded", "player")
        return self.role

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        start = 2 * self.game.group_size if self.game.payoffs is None else 4
        for rounds, obs in zip(self.rounds, np.asarray(observations).tolist()):
            if obs != start:
                rounds.append(self._outcome(obs))
        chats = [self.messages(r) for r in self.rounds]
        model = self._model()
        options = dict(max_tokens=self.max_tokens, temperature=self.temperature)
        replies = model.complete(chats, seed=int(self.rng.integers(2**31)), **options)
        moves = [extract_move(r.text, self.game.name) for r in replies]
        again = [i for i, m in enumerate(moves) if m is None]
        if again:
            self.stats["retried"] += len(again)
            c, d = self.words
            retry = [chats[i] + [{"role": "assistant", "content": replies[i].text},
                                 {"role": "user", "content": f"Reply with exactly one line: 'Move: {c}' or 'Move: {d}'."}]
                     for i in again]
            for i, reply in zip(again, model.complete(retry, seed=int(self.rng.integers(2**31)), **options)):
                replies[i], moves[i] = reply, extract_move(reply.text, self.game.name)
        actions = np.empty(len(moves), dtype=np.int64)
        for i, move in enumerate(moves):
            if move is None:
                self.stats["truncated" if replies[i].truncated else "unparseable"] += 1
                self.stats["fallback"] += 1
                move = int(self.rng.random() < 0.5) if self.fallback == "random" else FALLBACKS.index(self.fallback)
            actions[i] = move
        self.stats["moves"] += len(moves)
        self.cooperated.append(int(np.sum(actions == 0)))
        return actions

    def __repr__(self) -> str:
        return f"LLMPlayer(model={self.model!r}, persona={self.persona!r}, history={self.history!r})"
