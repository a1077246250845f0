"""Serializable value objects: one base for their boilerplate, one name registry per family.

Penalties and constraints are small values in Keras's manner: the constructor arguments
are the whole state, ``get_config()`` returns them as plain JSON values and
``from_config(config)`` rebuilds the object. :class:`ConfigMixin` writes equality,
hashing, ``repr`` and ``from_config`` once from ``get_config``. Keras keeps a ``get`` /
``serialize`` / ``deserialize`` triple per family; :class:`Registry` writes it once and each
family instantiates it with its own classes and its own word for the error messages.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from shrinkage.errors import ShrinkageError, did_you_mean

__all__ = ["ConfigMixin", "Registry"]

T = TypeVar("T")


class ConfigMixin:
    """Equality, hashing, ``repr`` and ``from_config`` of a value object, from its config.

    Two objects are equal when they are of the same class and have the same config; a
    subclass whose config holds unhashable or large values (a reference tensor) overrides
    :meth:`_key`.
    """

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON values."""
        raise NotImplementedError  # abstract: every value object defines its config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """Rebuild an object from :meth:`get_config`'s output."""
        try:
            return cls(**config)
        except TypeError as err:
            raise ShrinkageError(
                f"Invalid config for {cls.__name__}: {config!r} ({err})."
            ) from None

    def _key(self) -> tuple:
        return (type(self).__name__, repr(sorted(self.get_config().items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigMixin) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __str__(self) -> str:
        """``repr`` with numbers to 4 significant digits: ``L2(l2=0.03162)`` in tables."""
        args = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}"
            for k, v in self.get_config().items()
        )
        return f"{type(self).__name__}({args})"


class Registry(Generic[T]):
    """Resolve, serialize and rebuild the members of one family by name.

    Each class carries ``name`` (lower case), ``aliases``, ``get_config()`` and
    ``from_config(config)``; names are matched case-insensitively, and the class name
    itself (``"MaxNorm"``, ``"L2"``) is always an alias.

    Args:
        kind: the family's word in messages (``"penalty"``, ``"constraint"``).
        base: the family's base class (instances of it are returned as they are).
        classes: the members, in the order they are listed in messages.
        example: the member a bare number most likely meant (``L2`` for ``{"*": 1e-3}``),
            and that number's stand-in when a class is given instead of an instance.
    """

    def __init__(
        self,
        kind: str,
        base: type[T],
        classes: tuple[type[T], ...],
        example: tuple[type[T], float] | None = None,
    ) -> None:
        self.kind = kind
        self.base = base
        self.classes = classes
        self.example = example
        self._by_name: dict[str, type[T]] = {
            alias: cls
            for cls in classes
            for alias in (cls.name, cls.__name__.lower(), *cls.aliases)  # type: ignore[attr-defined]
        }

    def lookup(self, identifier: str) -> type[T]:
        """The class registered under ``identifier`` (case-insensitive)."""
        cls = self._by_name.get(identifier.lower())
        if cls is None:
            known = ", ".join(c.name for c in self.classes)  # type: ignore[attr-defined]
            names = {alias: c.name for alias, c in self._by_name.items()}  # type: ignore[attr-defined]
            raise ShrinkageError(
                f"Unknown {self.kind} identifier: {identifier!r}. Expected one of: {known}."
                f"{did_you_mean(identifier, names)}"
            )
        return cls

    def get(self, identifier: Any) -> T | None:
        """A member as is, a name (default arguments), a serialized dict, or ``None``."""
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            return self.lookup(identifier)()
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        raise ShrinkageError(
            f"Could not interpret {self.kind} identifier: {identifier!r}.{self._hint(identifier)}"
        )

    def _hint(self, identifier: Any) -> str:
        """What the user most likely meant: an instance, not the class or a bare number."""
        if isinstance(identifier, type) and issubclass(identifier, self.base):  # type: ignore[arg-type]
            number = self.example[1] if self.example else 0.01
            return (
                f" That is the class {identifier.__name__}, not a {self.kind}: write "
                f"sk.{identifier.__name__}({number:g})."
            )
        if self.example is not None and isinstance(identifier, int | float):
            if not isinstance(identifier, bool):
                return (
                    f" A number alone is not a {self.kind}: write "
                    f"sk.{self.example[0].__name__}({identifier!r})."
                )
        return ""

    def serialize(self, obj: T | None) -> dict[str, Any] | None:
        """``{"class_name": ..., "config": {...}}`` with plain JSON values."""
        if obj is None:
            return None
        return {"class_name": type(obj).__name__, "config": obj.get_config()}  # type: ignore[attr-defined]

    def deserialize(self, config: Any) -> T | None:
        """Inverse of :meth:`serialize`."""
        if config is None:
            return None
        if not isinstance(config, dict) or "class_name" not in config:
            raise ShrinkageError(
                f"A serialized {self.kind} must be a dict with 'class_name' and 'config'. "
                f"Got {config!r}."
            )
        inner = config.get("config", {})
        if not isinstance(inner, dict):
            raise ShrinkageError(
                f"The 'config' of a serialized {self.kind} must be a dict. Got {inner!r}."
            )
        return self.lookup(str(config["class_name"])).from_config(dict(inner))  # type: ignore[attr-defined]
