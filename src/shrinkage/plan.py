"""The plan: which parameter gets which penalty, resolved once for any ``nn.Module``.

A plan is an ordered list of rules ``(selector, penalty)``. Selectors are

* a glob on qualified parameter names (``"*"``, ``"encoder.*.weight"``, ``"*.weight_hh*"``),
* a module type or tuple of types (``nn.Linear``, ``(nn.Conv1d, nn.Conv2d)``),
* a callable ``(name, parameter, module) -> bool``.

Later rules override earlier ones; a rule whose penalty is ``None`` excludes what it
selects. By default every weight matrix / conv kernel / embedding table (a parameter with
two or more dimensions outside a normalization layer) is eligible; biases, other 1-D
parameters and normalization-layer parameters are left alone unless a rule *names* them:
a glob whose last dotted part has no wildcard (``"*.bias"``, ``"norm.weight"``), a
callable, or a normalization-layer type. ``include_biases=True`` makes biases eligible
for every rule.

For recurrent layers, input kernels (``weight_ih_l*``) and recurrent kernels
(``weight_hh_l*``) are separate parameters, so Keras's ``kernel_regularizer`` and
``recurrent_regularizer`` are two rules: ``{"*.weight_ih*": L2(a), "*.weight_hh*": L2(b)}``.

Activity rules select *modules* (glob on module names, or types) and penalize their
output, Keras-style: ``penalty(output) / batch_size``.

Constraint rules (``constraints={selector: MaxNorm(3)}``) select parameters exactly like
penalty rules, in a table of their own, so one weight can have both a penalty and a
constraint (Keras's ``kernel_regularizer`` and ``kernel_constraint``); the regularizer
projects the constrained weights after every optimizer step.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from shrinkage import constraints as C
from shrinkage import penalties as P
from shrinkage.display import Table
from shrinkage.errors import ShrinkageError, did_you_mean
from shrinkage.penalties import Penalty

__all__ = ["Plan", "Rule", "Assignment", "Selector", "NORM_TYPES", "unwrap_model"]

Selector = str | type | tuple | Callable[[str, Tensor, nn.Module], bool]

NORM_TYPES: tuple[type[nn.Module], ...] = tuple(
    t
    for t in (
        getattr(nn.modules.batchnorm, "_NormBase", None),
        nn.LayerNorm,
        nn.GroupNorm,
        nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),
    )
    if t is not None
)

_WILDCARDS = set("*?[")


class _Valued:
    """``penalty`` and ``constraint`` views of a ``value`` that may be either."""

    value: Penalty | C.Constraint | None

    @property
    def penalty(self) -> Penalty | None:
        """The penalty (a penalty or activity table), or ``None``."""
        return self.value if isinstance(self.value, Penalty) else None

    @property
    def constraint(self) -> C.Constraint | None:
        """The constraint (the constraint table), or ``None``."""
        return self.value if isinstance(self.value, C.Constraint) else None


@dataclass(frozen=True)
class Rule(_Valued):
    """One line of a plan's table: a selector and what it assigns.

    ``value`` is a :class:`~shrinkage.Penalty` in the penalty and activity tables, a
    :class:`~shrinkage.constraints.Constraint` in the constraint table, or ``None``, which
    excludes what the selector picks.
    """

    select: Selector
    value: Penalty | C.Constraint | None


@dataclass
class Assignment(_Valued):
    """The resolved decision for one parameter: its penalty or constraint, and why."""

    name: str
    param: Tensor
    module: nn.Module
    value: Penalty | C.Constraint | None
    reason: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The parameter's shape."""
        return tuple(self.param.shape)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's module inside ``DataParallel`` / ``DistributedDataParallel`` and
    ``torch.compile``'s wrapper, whose parameter names gain ``module.`` / ``_orig_mod.``.

    The parameters are the same tensors, so a plan written for the user's module (``"0.weight"``)
    applies to the wrapped one unchanged.

    Args:
        model: a module, possibly wrapped (several times).

    Returns:
        The innermost module.
    """
    while True:
        if isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel):
            model = model.module
        elif type(model).__name__ == "OptimizedModule" and isinstance(
            getattr(model, "_orig_mod", None), nn.Module
        ):
            model = model._orig_mod  # torch.compile; not imported: torch._dynamo is slow to load
        else:
            return model


def _describe_selector(select: Selector) -> str:
    if isinstance(select, str):
        return repr(select)
    if isinstance(select, type):
        return select.__name__
    if isinstance(select, tuple):
        return "(" + ", ".join(t.__name__ for t in select) + ")"
    return getattr(select, "__name__", repr(select))


def _close(select: Selector, names: Iterable[str]) -> str:
    """A glob selector's near names (``"0.weigth"`` → ``'0.weight'``), or ``""``."""
    return did_you_mean(select, names) if isinstance(select, str) else ""


def _check_selector(select: object, where: str) -> Selector:
    if isinstance(select, str) or callable(select) and not isinstance(select, type):
        return select  # type: ignore[return-value]
    types = select if isinstance(select, tuple) else (select,)
    if types and all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
        return select  # type: ignore[return-value]
    raise ShrinkageError(
        f"A selector in {where} must be a glob string, an nn.Module type (or tuple of them) "
        f"or a callable. Got {select!r} instead."
    )


def _coerce_rules(rules: object, where: str, get: Callable = P.get) -> list[Rule]:
    if rules is None:
        return []
    if isinstance(rules, Penalty | C.Constraint | str):
        return [Rule("*", get(rules))]
    if isinstance(rules, Mapping):
        items: Iterable = rules.items()
    elif isinstance(rules, Iterable):
        items = rules
    else:
        raise ShrinkageError(
            f"The {where} must be a penalty, a dict {{selector: penalty}} or a list of rules. "
            f"Got {rules!r} instead."
        )
    out = []
    for item in items:
        if isinstance(item, Rule):
            select, value = item.select, item.value
        else:
            try:
                select, value = item
            except (TypeError, ValueError):
                raise ShrinkageError(
                    f"Each rule in the {where} must be (selector, penalty). Got {item!r} instead."
                ) from None
        out.append(Rule(_check_selector(select, where), get(value)))
    return out


class Plan:
    """Which parameters get which penalty.

    Args:
        rules: a penalty (applied to every eligible weight: ``{"*": penalty}``), a dict
            ``{selector: penalty}`` or a list of ``(selector, penalty)`` / :class:`Rule`.
            Later rules override earlier ones; ``None`` excludes.
        activity: activity rules ``{module selector: penalty}``: the penalty of the
            selected modules' outputs, divided by the batch size (Keras semantics).
        include_biases: make biases eligible for every rule.
        include_norms: make normalization-layer parameters eligible for every rule.
        constraints: constraint rules ``{selector: constraint}`` (a
            :class:`~shrinkage.constraints.Constraint` alone means ``{"*": constraint}``),
            resolved like the penalty rules (``Rule.constraint``, ``Assignment.constraint``).

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> plan = Plan({"*": P.L2(0.01), "0.weight": P.L1(0.001)})
        >>> [a.penalty for a in plan.resolve(model)]
        [L1(l1=0.001), None, L2(l2=0.01), None]
    """

    def __init__(
        self,
        rules: Any = None,
        *,
        activity: Any = None,
        include_biases: bool = False,
        include_norms: bool = False,
        constraints: Any = None,
    ) -> None:
        self.rules = _coerce_rules(rules, "plan")
        self.constraints = _coerce_rules(constraints, "constraints", C.get)
        self.activity = _coerce_rules(activity, "activity plan")
        for rule in self.activity:
            if not isinstance(rule.select, str | type | tuple):
                raise ShrinkageError(
                    "Activity selectors must be module-name globs or module types. "
                    f"Got {rule.select!r} instead."
                )
        self.include_biases = bool(include_biases)
        self.include_norms = bool(include_norms)

    @classmethod
    def coerce(cls, plan: Any) -> Plan:
        """A :class:`Plan` from a plan, a penalty, a dict or a list of rules."""
        return plan if isinstance(plan, Plan) else cls(plan)

    # -- resolution ----------------------------------------------------------------------

    def _eligible(self, name: str, param: Tensor, module: nn.Module) -> tuple[bool, str]:
        if isinstance(module, NORM_TYPES):
            return self.include_norms, "normalization layer (excluded by default)"
        if name.rsplit(".", 1)[-1].startswith("bias") or param.ndim < 2:
            kind = "bias" if "bias" in name.rsplit(".", 1)[-1] else "1-D parameter"
            return self.include_biases, f"{kind} (excluded by default)"
        return True, ""

    @staticmethod
    def _matches(rule: Rule, name: str, param: Tensor, module: nn.Module) -> tuple[bool, bool]:
        """(selected, named explicitly)."""
        select = rule.select
        if isinstance(select, str):
            hit = fnmatch.fnmatchcase(name, select)
            return hit, hit and not (_WILDCARDS & set(select.rsplit(".", 1)[-1]))
        if isinstance(select, type | tuple):
            hit = isinstance(module, select)
            return hit, hit and isinstance(module, NORM_TYPES)
        return bool(select(name, param, module)), True

    def resolve(self, model: nn.Module) -> list[Assignment]:
        """Decide, for every parameter of ``model``, its penalty and why.

        Raises:
            ShrinkageError: a rule that selects no parameter, listing the names.
        """
        return self._resolve(model, self.rules, "the plan")

    def resolve_constraints(self, model: nn.Module) -> list[Assignment]:
        """The constrained parameters, each with its constraint (``.constraint``).

        Selection and eligibility are those of :meth:`resolve`, applied to the constraint
        rules: biases and normalization parameters only when named or included.

        Raises:
            ShrinkageError: a constraint selector that matches no parameter.
        """
        if not self.constraints:
            return []
        return [
            a for a in self._resolve(model, self.constraints, "the plan") if a.value is not None
        ]

    def _resolve(self, model: nn.Module, rules: list[Rule], table: str) -> list[Assignment]:
        model = unwrap_model(model)
        owners = {}
        seen: set[int] = set()
        for module_name, module in model.named_modules():
            for local, param in module.named_parameters(recurse=False):
                # A tied parameter (shared embedding/decoder) is one weight: penalize it once,
                # under its first name, as model.named_parameters() does.
                if id(param) in seen:
                    continue
                seen.add(id(param))
                owners[f"{module_name}.{local}" if module_name else local] = (param, module)
        hits = [0] * len(rules)
        excluded: list[list[str]] = [[] for _ in rules]
        out = []
        for name, (param, module) in owners.items():
            eligible, why_not = self._eligible(name, param, module)
            value, reason = None, why_not or "no rule selects it"
            for index, rule in enumerate(rules):
                selected, named = self._matches(rule, name, param, module)
                if not selected:
                    continue
                hits[index] += 1
                if not (eligible or named):
                    excluded[index].append(f"{name} ({why_not.split(' (')[0]})")
                    continue
                value = rule.value
                label = f"rule {index} ({_describe_selector(rule.select)})"
                reason = label if value is not None else f"excluded by {label}"
            out.append(Assignment(name, param, module, value, reason))
        for index, count in enumerate(hits):
            if count == 0:
                raise ShrinkageError(
                    f"Selector {_describe_selector(rules[index].select)} in {table} "
                    f"matches no parameter of {type(model).__name__}; parameters are: "
                    f"{', '.join(owners) or '(none)'}.{_close(rules[index].select, list(owners))}"
                )
            if len(excluded[index]) == count and rules[index].value is not None:
                shown = ", ".join(excluded[index][:4])
                more = f" and {count - 4} more" if count > 4 else ""
                raise ShrinkageError(
                    f"Selector {_describe_selector(rules[index].select)} in {table} matches "
                    f"only parameters that are excluded by default: {shown}{more}. Name them "
                    "without a wildcard in the last part (e.g. '*.bias'), or pass "
                    "include_biases=True (normalization layers: include_norms=True)."
                )
        return out

    def resolve_activity(self, model: nn.Module) -> list[tuple[str, nn.Module, Penalty]]:
        """The modules whose outputs are penalized, with their penalty.

        Raises:
            ShrinkageError: a selector that matches no module, listing the module names.
        """
        model = unwrap_model(model)
        modules = [(name, m) for name, m in model.named_modules() if name]
        chosen: dict[str, tuple[nn.Module, Penalty | None]] = {}
        for rule in self.activity:
            matched = [
                (name, m)
                for name, m in modules
                if (
                    fnmatch.fnmatchcase(name, rule.select)
                    if isinstance(rule.select, str)
                    else isinstance(m, rule.select)
                )
            ]
            if not matched:
                raise ShrinkageError(
                    f"Activity selector {_describe_selector(rule.select)} matches no module of "
                    f"{type(model).__name__}; modules are: "
                    f"{', '.join(n for n, _ in modules) or '(none)'}."
                    f"{_close(rule.select, [n for n, _ in modules])}"
                )
            for name, m in matched:
                chosen[name] = (m, rule.value)
        return [(name, m, p) for name, (m, p) in chosen.items() if p is not None]

    def describe(self, model: nn.Module) -> Table:
        """A table of every parameter: name, shape, penalty, strength, or why excluded.

        The result is a ``str`` (the aligned text below) that notebooks display as an
        HTML table and ``rich.print`` as a rich table; ``.rows`` holds the cells.

        Example:
            >>> print(Plan(P.L2(0.01)).describe(nn.Linear(3, 2)))  # doctest: +NORMALIZE_WHITESPACE
            parameter  shape   penalty  strength  reason
            weight     (2, 3)  L2       l2=0.01   rule 0 ('*')
            bias       (2,)    -        -         bias (excluded by default)
        """
        rows = [("parameter", "shape", "penalty", "strength", "reason")]
        for a in self.resolve(model):
            if a.penalty is None:
                kind, strength = "-", "-"
            else:
                kind = type(a.penalty).__name__
                config = a.penalty.get_config()
                strength = ", ".join(
                    f"{k}={v:g}" for k, v in config.items() if isinstance(v, int | float)
                )
            rows.append((a.name, str(a.shape), kind, strength, a.reason))
        for name, module, penalty in self.resolve_activity(model):
            rows.append(
                (
                    f"{name} (output)",
                    "-",
                    type(penalty).__name__,
                    ", ".join(
                        f"{k}={v:g}"
                        for k, v in penalty.get_config().items()
                        if isinstance(v, int | float)
                    ),
                    f"activity of {type(module).__name__}, / batch size",
                )
            )
        for a in self.resolve_constraints(model):
            config = a.value.get_config()  # type: ignore[union-attr]
            bounds = ", ".join(f"{k}={v:g}" for k, v in config.items() if isinstance(v, float))
            kind = type(a.value).__name__
            rows.append((a.name, str(a.shape), kind, bounds or "-", f"constraint {a.reason}"))
        return Table(rows)

    # -- configuration -------------------------------------------------------------------

    @staticmethod
    def _selector_config(select: Selector) -> Any:
        if isinstance(select, str):
            return select
        types = select if isinstance(select, tuple) else (select,)
        if all(isinstance(t, type) for t in types):
            names = []
            for t in types:
                if getattr(nn, t.__name__, None) is not t:
                    raise ShrinkageError(
                        f"Only torch.nn module types can be saved in a plan; got {t.__qualname__}."
                        " Use a name glob instead."
                    )
                names.append(t.__name__)
            return {"module_types": names}
        raise ShrinkageError(
            f"A callable selector ({_describe_selector(select)}) cannot be saved; "
            "use a name glob or a module type."
        )

    @staticmethod
    def _selector_from_config(config: Any) -> Selector:
        if isinstance(config, str):
            return config
        if isinstance(config, dict) and isinstance(config.get("module_types"), list):
            types = []
            for name in config["module_types"]:
                t = getattr(nn, str(name), None)
                if not (isinstance(t, type) and issubclass(t, nn.Module)):
                    raise ShrinkageError(f"Unknown module type in a saved plan: {name!r}.")
                types.append(t)
            return types[0] if len(types) == 1 else tuple(types)
        raise ShrinkageError(f"Invalid selector in a saved plan: {config!r}.")

    def get_config(self) -> dict[str, Any]:
        """The plan as plain JSON values (callable selectors cannot be saved)."""
        return {
            "rules": [
                {"select": self._selector_config(r.select), "penalty": P.serialize(r.value)}
                for r in self.rules
            ],
            "activity": [
                {"select": self._selector_config(r.select), "penalty": P.serialize(r.value)}
                for r in self.activity
            ],
            "include_biases": self.include_biases,
            "include_norms": self.include_norms,
            "constraints": [
                {"select": self._selector_config(r.select), "constraint": C.serialize(r.value)}
                for r in self.constraints
            ],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Plan:
        """Inverse of :meth:`get_config`."""
        if not isinstance(config, dict):
            raise ShrinkageError(f"A saved plan must be a dict. Got {config!r}.")

        def rules(key: str) -> list[tuple[Selector, Penalty | None]]:
            return [
                (cls._selector_from_config(r["select"]), P.deserialize(r["penalty"]))
                for r in config.get(key, [])
            ]

        return cls(
            rules("rules"),
            activity=rules("activity"),
            include_biases=bool(config.get("include_biases", False)),
            include_norms=bool(config.get("include_norms", False)),
            constraints=[
                (cls._selector_from_config(r["select"]), C.deserialize(r["constraint"]))
                for r in config.get("constraints", [])
            ],
        )

    def __repr__(self) -> str:
        parts = [f"({_describe_selector(r.select)}, {r.penalty!r})" for r in self.rules]
        extra = f", activity={len(self.activity)} rules" if self.activity else ""
        if self.constraints:
            extra += f", constraints={len(self.constraints)} rules"
        return f"Plan([{', '.join(parts)}]{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Plan) and (
            self.rules,
            self.activity,
            self.include_biases,
            self.include_norms,
            self.constraints,
        ) == (
            other.rules,
            other.activity,
            other.include_biases,
            other.include_norms,
            other.constraints,
        )

    __hash__ = None  # type: ignore[assignment]
