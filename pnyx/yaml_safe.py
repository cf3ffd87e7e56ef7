"""Loading YAML that someone else wrote: plain data only, bounded, and one-line errors.

:func:`load` builds only plain data (``yaml.SafeLoader``: no tags that run code) and
refuses documents whose aliases would expand them far beyond their text ("billion
laughs"): at most :data:`MAX_ALIASES` aliases, which together may stand for at most
:data:`MAX_ALIASED_NODES` nodes, and no alias inside the node it names. Collections nest
at most :data:`MAX_DEPTH` levels deep. A key given twice in one mapping is an error (YAML
would keep the last silently). Every problem, undecodable bytes included, is a
:class:`PnyxError` of one line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import CollectionNode, MappingNode, ScalarNode

from pnyx.errors import PnyxError

MAX_ALIASES = 100
MAX_ALIASED_NODES = 10_000
MAX_DEPTH = 100


class _Loader(yaml.SafeLoader):
    """A safe loader that weighs every node (its size once aliases are expanded) and
    charges each alias the weight of the node it names."""

    def __init__(self, stream: str, source: str):
        super().__init__(stream)
        self.source = source
        self.aliases = 0
        self.aliased_nodes = 0
        self.weights: dict[int, int] = {}
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            node = self.anchors.get(self.peek_event().anchor)
            if node is not None:
                self._charge(node)
            return super().compose_node(parent, index)
        if self.depth >= MAX_DEPTH:
            raise PnyxError(f"{self.source}: YAML nested too deeply (limit {MAX_DEPTH} levels)")
        self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, CollectionNode):
            children = node.value
        else:
            children = []
        self.weights[id(node)] = 1 + sum(self.weights[id(n)] for n in children)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                    continue  # keys a merge brings may be overridden, as YAML intends
                key = self.construct_object(key_node)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    line = key_node.start_mark.line + 1
                    raise PnyxError(f"{self.source}: key {key!r} appears twice in one mapping (line {line})")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def _charge(self, node) -> None:
        weight = self.weights.get(id(node))
        if weight is None:
            raise PnyxError(f"{self.source}: a YAML alias refers to the node that contains it")
        self.aliases += 1
        self.aliased_nodes += weight
        if self.aliases > MAX_ALIASES:
            raise PnyxError(f"{self.source}: too many YAML aliases (limit {MAX_ALIASES})")
        if self.aliased_nodes > MAX_ALIASED_NODES:
            raise PnyxError(f"{self.source}: YAML aliases expand to too many nodes (limit {MAX_ALIASED_NODES})")


def load(data: str | bytes, source: str) -> Any:
    """The plain data in the YAML document ``data`` (UTF-8 if bytes); ``source`` names it in
    error messages verbatim (a path, or a phrase such as ``"scenario 'x.yaml'"``)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise PnyxError(f"{source} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line})") from None
    loader = None
    try:
        loader = _Loader(data, source)
        return loader.get_single_data()
    except yaml.reader.ReaderError as e:
        line = data[: e.position].count("\n") + 1
        raise PnyxError(f"{source} is not valid YAML (line {line}: character #x{e.character:04x} is not allowed)") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = ", ".join(str(p) for p in (e.context, e.problem) if p)
        raise PnyxError(f"{source} is not valid YAML ({where}{' '.join(problem.split())})") from None
    except yaml.YAMLError as e:
        raise PnyxError(f"{source} is not valid YAML ({' '.join(str(e).split())})") from None
    finally:
        if loader is not None:
            loader.dispose()
