"""MkDocs hooks of pnyx's documentation (``hooks`` in ``mkdocs.yml``): reference pages generated from the code.

* :func:`on_config` lays pnyx's packages out as one package under ``build/docs_api`` (links to the
  top-level folders that ``pyproject.toml``'s ``package-dir`` maps), where mkdocstrings finds them.
* :func:`on_page_markdown` replaces a marker ``<!-- pnyx:NAME -->`` with the markdown of
  :data:`GENERATED` ``[NAME]``: the command line from the parser of :mod:`pnyx.experiments.cli`,
  every config field and every ``summary.json`` field of every experiment kind from their pydantic
  models, and the registries as ``pnyx list`` reads them. An unknown marker stops the build.
* :func:`on_page_content` shows the Sphinx roles of the docstrings (``:func:`x```) as code.
"""

from __future__ import annotations

import argparse
import html
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Callable

import annotated_types
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- pnyx:([a-z-]+) -->")
CODE_SPAN = re.compile(r"(`+[^`]+`+)")
ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):<code>(~?)([\w.]+)</code>")

#: The registry behind each section of ``pnyx list``, by import path.
REGISTRIES = {
    "experiment kinds": "pnyx.experiments.catalog:KINDS",
    "environments": "pnyx.envs:ENVIRONMENTS",
    "policies": "pnyx.agents:POLICIES",
    "discussants": "pnyx.agents.discussants:DISCUSSANTS",
    "judges": "pnyx.agents.judges:JUDGES",
    "language models": "pnyx.agents.llm:MODELS",
}


# --- markdown helpers ------------------------------------------------------------------------


def code(text: str) -> str:
    """``text`` as inline code that a markdown table cell can hold (``|`` included)."""
    return f"<code>{html.escape(text, quote=False).replace('|', '&#124;')}</code>"


def cell(text: str) -> str:
    """Prose for a markdown table cell: one line; ``|``, ``<``, ``>`` and ``&`` escaped outside code spans."""
    parts = CODE_SPAN.split(" ".join(str(text).split()))
    return "".join(p if i % 2 else html.escape(p, quote=False).replace("|", "\\|") for i, p in enumerate(parts))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- the command line ------------------------------------------------------------------------


def _argument_row(action: argparse.Action) -> list[str]:
    if action.option_strings:
        name = ", ".join(action.option_strings)
        if action.nargs != 0:
            name += " " + (action.metavar or action.dest.upper())
    else:
        name = action.metavar or action.dest
    if action.choices is not None and not action.option_strings and action.metavar:
        values = ", ".join(map(str, action.choices))
    elif action.choices is not None:
        values = " \\| ".join(code(str(c)) for c in action.choices)
    else:
        values = ""
    if action.required or not action.option_strings and action.nargs is None:
        default = "required"
    elif action.default in (None, False, argparse.SUPPRESS) or action.default == []:
        default = ""
    else:
        default = code(repr(action.default))
    return [code(name), values, default, cell(action.help or "")]


def cli_markdown() -> str:
    """Every ``pnyx`` subcommand with its usage and arguments, read from the parser itself."""
    from pnyx.experiments import cli

    parser = cli._parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in commands._choices_actions}
    out = []
    for name, sub in commands.choices.items():
        rows = [_argument_row(a) for a in sub._actions if not isinstance(a, argparse._HelpAction)]
        out += [f"## `pnyx {name}`", "", cell(helps.get(name) or ""), "",
                "```text", sub.format_usage().strip(), "```", "",
                table(["argument", "values", "default", "meaning"], rows), ""]
    return "\n".join(out)


# --- pydantic models: config and summary fields ----------------------------------------------


def type_text(annotation: Any) -> str:
    """An annotation as a reader writes it: ``int | None``, ``list[str]``, ``'db' | 'bd'``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_text(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def bound_text(bound: Any) -> str:
    """A bound as a reader writes it: ``2^63`` for a large power of two."""
    if isinstance(bound, int) and bound >= 2**32 and bound & (bound - 1) == 0:
        return f"2^{bound.bit_length() - 1}"
    return str(bound)


def _constraints(metadata: list[Any]) -> list[str]:
    found = []
    for item in metadata:
        for attribute, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(item, getattr(annotated_types, attribute.capitalize())):
                found.append(f"{sign} {bound_text(getattr(item, attribute))}")
        if isinstance(item, annotated_types.MinLen):
            found.append(f"length >= {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            found.append(f"length <= {item.max_length}")
    return found


def field_range(info: Any) -> str:
    """A field's bounds: its own (``Field(ge=...)``) and those of an ``Annotated`` type."""
    metadata = list(info.metadata)
    if typing.get_origin(info.annotation) is typing.Annotated:
        metadata += typing.get_args(info.annotation)[1:]
    return ", ".join(_constraints(metadata))


def nested_models(annotation: Any, path: str) -> list[tuple[str, type[BaseModel]]]:
    """The models a field holds, with the dotted path a config or summary reaches them by
    (``conditions.NAME`` for a mapping's values, ``parts[i]`` for a list's items)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(path, annotation)]
    if origin is dict:
        return nested_models(args[1], f"{path}.NAME")
    if origin in (list, tuple):
        return [found for a in args for found in nested_models(a, f"{path}[i]")]
    return [found for a in args for found in nested_models(a, path)]


def _description(model: type[BaseModel], name: str, default: Any) -> str:
    from pnyx.experiments.catalog import field_docs

    text = field_docs(model).get(name, "")
    return text.removesuffix(f" (default {default!r})").removeprefix(f"default {default!r}")


def model_tables(model: type[BaseModel], path: str, *, shared: dict[type[BaseModel], str], config: bool) -> list[str]:
    """Markdown tables of ``model``'s fields and, below them, of the models its fields hold;
    a model in ``shared`` is linked to instead (by its anchor). A ``config`` table also
    gives each field's default and range."""
    rows, below = [], []
    for name, info in model.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        held = nested_models(info.annotation, f"{path}{name}")
        links = [f"[{sub.__name__}](#{shared[sub]})" for _, sub in held if sub in shared]
        row = [code(name), code(type_text(info.annotation))]
        if config:
            if info.is_required():
                row.append("required")
            else:
                row.append("see below" if isinstance(default, BaseModel) else code(repr(default)))
            row.append(cell(field_range(info)))
        row.append(cell(" ".join([_description(model, name, default), *links])))
        rows.append(row)
        below += [(p, sub) for p, sub in held if sub not in shared]
    header = ["field", "type", *(["default", "range"] if config else []), "meaning"]
    out = [table(header, rows), ""]
    for sub_path, sub in below:
        out += [f"### `{sub_path}`", ""]
        if sub.__doc__:
            out += [cell(sub.__doc__), ""]
        out += model_tables(sub, f"{sub_path}.", shared=shared, config=config)
    return out


def _kinds() -> list[tuple[str, Any]]:
    from pnyx.experiments.catalog import KINDS, get_kind

    return [(name, get_kind(name)) for name in KINDS.names()]


def config_markdown() -> str:
    """Every config field of every experiment kind, with type, default, range and meaning."""
    from pnyx.agents.llm.roles import ModelConfig

    shared = {ModelConfig: "model-fields"}
    out = []
    for name, kind in _kinds():
        out += [f"## `{name}`", "", f"`kind: {name}`, the config model "
                f"`{kind.Config.__module__}.{kind.Config.__qualname__}`.", ""]
        out += model_tables(kind.Config, "", shared=shared, config=True)
    out += ["## Model fields", "", cell(ModelConfig.__doc__ or ""), ""]
    out += model_tables(ModelConfig, "", shared={}, config=True)
    return "\n".join(out)


def summary_markdown() -> str:
    """Every field of every kind's ``summary.json``, from its :class:`~pnyx.experiments.experiment.Summary` model."""
    from pnyx.experiments.experiment import RUN_ENTRIES

    out = []
    for name, kind in _kinds():
        summary = kind.Summary
        out += [f"## `{name}`", "", cell(summary.__doc__ or ""), "",
                f"Model `{summary.__module__}.{summary.__qualname__}`.", ""]
        out += model_tables(summary, "", shared={}, config=False)
    out += ["## Beside every kind's fields", "",
            "The runner adds " + ", ".join(f"`{e}`" for e in RUN_ENTRIES) + " (see [Run folder](run-folder.md)).", ""]
    return "\n".join(out)


# --- registries ------------------------------------------------------------------------------


def registries_markdown() -> str:
    """Each section of ``pnyx list``, read as ``pnyx list`` reads it, with the registry behind it."""
    from pnyx.experiments import cli
    from pnyx.registry import import_object

    out = []
    for section in cli._LIST_SECTIONS:
        out += [f"## {section.capitalize()}", ""]
        if section in REGISTRIES:
            registry = import_object(REGISTRIES[section], "the documentation")
            module, _, attribute = REGISTRIES[section].partition(":")
            line = f"Registry `{module}.{attribute}`."
            if registry.protocols:
                methods = " or ".join("/".join(f"`{m}`" for m in p) for p in registry.protocols)
                line += f" By import path (`package.module:Class`): a class with {methods}."
            out += [line, ""]
        else:
            out += ["The shipped presets (`pnyx run NAME`, `pnyx show NAME`).", ""]
        rows = [[code(name), cell(doc)] for name, doc in cli._describe(section).items()]
        out += [table(["name", "description"], rows), ""]
    return "\n".join(out)


#: What a marker ``<!-- pnyx:NAME -->`` becomes.
GENERATED: dict[str, Callable[[], str]] = {
    "cli": cli_markdown,
    "config": config_markdown,
    "summary": summary_markdown,
    "registries": registries_markdown,
}


# --- the API source tree ---------------------------------------------------------------------


def api_source(root: Path = ROOT) -> Path:
    """``build/docs_api`` holding ``pnyx/`` as an installed pnyx lays it out: links to the
    files of ``pnyx/`` and to each subpackage's folder (``pnyx/agents`` -> ``agents/``)."""
    folders = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    package = root / "build" / "docs_api" / "pnyx"
    package.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in (root / folders["pnyx"]).glob("*.py")}
    wanted |= {name.split(".", 1)[1]: root / folder for name, folder in folders.items() if name.count(".") == 1}
    for link in package.iterdir():
        if link.name not in wanted or not link.is_symlink() or link.resolve() != wanted[link.name].resolve():
            link.unlink()
    for name, target in wanted.items():
        if not (package / name).is_symlink():
            (package / name).symlink_to(target, target_is_directory=target.is_dir())
    return package.parent


# --- hooks -----------------------------------------------------------------------------------


@event_priority(100)  # before mkdocstrings reads its paths
def on_config(config):
    api_source(Path(config.config_file_path).resolve().parent)
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:
    def generate(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATED:
            raise PluginError(f"{page.file.src_path}: unknown marker pnyx:{name} (known: {', '.join(GENERATED)})")
        return GENERATED[name]()

    return MARKER.sub(generate, markdown)


def on_page_content(content: str, page, config, files) -> str:
    return ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", content)
