"""One small registry, used for every kind of named thing: policies, discussants, models,
environments and experiment kinds.

A registry maps names to targets (an object, or a lazy ``"module:attr"`` / ``"module"``
import path, loaded on first use; registered with a description, a lazy target is not
loaded by ``pnyx list``) and resolves specs (:mod:`pnyx.specs`) to them. An import-path spec
``package.module:Class`` imports the module the user named and must name a class that
has the registry's protocol methods; that is checked before anything is called, so a
spec can never call an arbitrary function. What was registered from outside pnyx is
replayed in Ray workers and actors (:func:`pickled_registrations`, :func:`replay_pickled`).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any, Callable, Iterable

from pnyx.errors import PnyxError
from pnyx.specs import Spec, parse


def import_object(path: str, what: str) -> Any:
    """The object at ``package.module:attr`` (or the module ``package.module``)."""
    module_name, colon, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PnyxError(f"cannot import module {module_name!r} for {what} ({e})") from None
    if not colon:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PnyxError(f"module {module_name!r} has no attribute {attr!r} for {what}") from None


#: pnyx's registries by what they name, with the module each lives in.
_REGISTRIES: dict[str, tuple[str, "Registry"]] = {}


def registered(name: str) -> bool:
    """Whether ``name`` is registered in one of pnyx's registries loaded in this process."""
    return any(name in registry for _, registry in _REGISTRIES.values())


def registrations() -> list[tuple[str, str, tuple]]:
    """What was registered in pnyx's registries from outside pnyx in this process, in
    order, as ``(registry module, what, (name, target, description, argument))``, for
    :func:`replay` in another process (a Ray worker)."""
    return [(home, registry.what, entry) for home, registry in _REGISTRIES.values() for entry in registry._added]


def replay(home: str, what: str, entry: tuple) -> None:
    """Make one registration of :func:`registrations` here too."""
    if what not in _REGISTRIES:
        import_object(home, f"the {what} registry")
    name, target, description, argument = entry
    _REGISTRIES[what][1].register(name, target, description=description, argument=argument)


def pickled_registrations() -> tuple:
    """:func:`registrations`, each pickled on its own (by Ray's cloudpickle) so that one
    another process cannot load spoils no other, as ``(home, what, name, bytes)``; a
    target's module travels by value, so the other process need not be able to import
    it. ``bytes`` is empty for a target that cannot be pickled."""
    import ray.cloudpickle

    shipped = []
    for home, what, entry in registrations():
        module = sys.modules.get(getattr(entry[1], "__module__", None) or "")
        by_value = (module is not None and module.__name__ != "__main__" and not module.__name__.startswith("pnyx.")
                    and module.__name__ not in ray.cloudpickle.list_registry_pickle_by_value())
        try:
            if by_value:
                ray.cloudpickle.register_pickle_by_value(module)
            shipped.append((home, what, entry[0], ray.cloudpickle.dumps(entry)))
        except Exception:  # noqa: BLE001 - a target that cannot travel; replay_pickled names it
            shipped.append((home, what, entry[0], b""))
        finally:
            if by_value:
                ray.cloudpickle.unregister_pickle_by_value(module)
    return tuple(shipped)


def replay_pickled(shipped: tuple) -> list[str]:
    """Replays :func:`pickled_registrations` of another process (the driver) here, in a Ray
    worker or actor; one line for each that does not load."""
    if not shipped:
        return []
    import ray.cloudpickle

    failed = []
    for home, what, name, data in shipped:
        try:
            if not data:
                raise PnyxError("it cannot be pickled")
            replay(home, what, ray.cloudpickle.loads(data))
        except Exception as e:  # noqa: BLE001 - reported by the caller when the run needs it
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            failed.append(f"{what} {name!r} registered in this process does not load in a Ray worker ({reason})")
    return failed


def first_line(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring, on one line."""
    return " ".join((inspect.getdoc(obj) or "").split("\n\n")[0].split())


class Registry:
    """Named targets of one kind.

    ``protocols`` lists alternative sets of method names; a class named by import path
    must have every method of at least one set (``[("act", "reset"), ("act_batch",
    "reset_batch")]`` for policies). Without protocols, import paths are not accepted.
    """

    def __init__(self, what: str, protocols: Iterable[Iterable[str]] = ()):
        self.what = what
        self.protocols = [tuple(p) for p in protocols]
        self._targets: dict[str, Any] = {}
        self._descriptions: dict[str, str | None] = {}
        self._argument: dict[str, str | None] = {}
        self._added: list[tuple[str, Any, str | None, str | None]] = []
        home = sys._getframe(1).f_globals.get("__name__", "")
        if home.startswith("pnyx."):
            _REGISTRIES[what] = (home, self)

    def register(self, name: str, target: Any, *, description: str | None = None,
                 argument: str | None = None) -> None:
        """Register ``target`` under ``name``. With ``argument`` (its label in messages) the
        spec is ``name:<argument>`` and the target is called with the text after the colon first."""
        if "(" in name or ":" in name or parse(name, f"{self.what} name").head != name:
            raise PnyxError(f"{self.what} name {name!r} must be a plain name")
        self._targets[name] = target
        self._descriptions[name] = description
        self._argument[name] = argument
        if not sys._getframe(1).f_globals.get("__name__", "").startswith("pnyx."):
            self._added.append((name, target, description, argument))

    def names(self) -> list[str]:
        return sorted(self._targets)

    def __contains__(self, name: str) -> bool:
        return name in self._targets

    def describe(self) -> dict[str, str]:
        """Every name with its one-line description (for ``pnyx list``)."""
        out = {}
        for name in self.names():
            description = self._descriptions[name]
            out[name] = first_line(self.get(name)) if description is None else description
        return out

    def get(self, name: str) -> Any:
        """The target registered as ``name``, loaded if it was registered lazily."""
        if name not in self._targets:
            raise PnyxError(f"unknown {self.what} {name!r} (known: {', '.join(self.names())})")
        target = self._targets[name]
        if isinstance(target, str):
            target = self._targets[name] = import_object(target, f"{self.what} {name!r}")
        return target

    def resolve(self, text: str) -> tuple[Callable[..., Any], Spec]:
        """The callable ``text`` names and its parsed spec, without calling anything."""
        spec = parse(text, self.what)
        if spec.name in self._targets:
            argument = self._argument[spec.name]
            if argument and not spec.target:
                raise PnyxError(f"{self.what} {text!r} needs an argument: {spec.name}:<{argument}>")
            if not argument and spec.target is not None:
                raise PnyxError(f"{self.what} {spec.name!r} takes no argument after ':', got {text!r}")
            return self.get(spec.name), spec
        if not spec.target or not self.protocols:
            known = ", ".join(self.names())
            hint = "; or package.module:Class" if self.protocols else ""
            raise PnyxError(f"unknown {self.what} {spec.name!r} (known: {known}{hint})")
        target = import_object(spec.head, f"{self.what} {text!r}")
        if not inspect.isclass(target):
            raise PnyxError(f"{self.what} {text!r} must name a class, not a {type(target).__name__}")
        if not any(all(callable(getattr(target, m, None)) for m in p) for p in self.protocols):
            needed = " or ".join("/".join(p) for p in self.protocols)
            raise PnyxError(f"{self.what} {text!r}: class {target.__name__} lacks the {self.what} methods ({needed})")
        return target, spec

    def factory(self, text: str, **options: Any) -> Callable[[], Any]:
        """A no-argument factory of fresh objects for ``text``, tried once so bad arguments fail here."""
        build = self._builder(text, options)
        self._call(build, text)
        return build

    def make(self, text: str, **options: Any) -> Any:
        """One object built from ``text`` (and backend ``options``)."""
        return self._call(self._builder(text, options), text)

    def _builder(self, text: str, options: dict[str, Any]) -> Callable[[], Any]:
        target, spec = self.resolve(text)
        args = ((spec.target,) if spec.target is not None and spec.name in self._targets else ()) + spec.args
        kwargs = {**spec.kwargs, **options}
        return lambda: target(*args, **kwargs)

    def _call(self, build: Callable[[], Any], text: str) -> Any:
        try:
            return build()
        except PnyxError as e:
            raise PnyxError(f"{self.what} {text!r}: {e}") from None
        except TypeError as e:
            raise PnyxError(f"{self.what} {text!r}: bad arguments ({e})") from None
