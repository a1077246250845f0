"""The plan: which parameter gets which penalty (default eligibility, overrides, selectors,
LSTM kernels), describe(), JSON round-trip and the bad-input table."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

from shrinkage import L1, L2, ElasticNet, Plan, Regularizer, Rule, ShrinkageError


class Zoo(nn.Module):
    """One of each layer kind the default eligibility has to get right."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(5))  # a 1-D parameter that is not a bias
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 6, 3)
        self.bn = nn.BatchNorm1d(6)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.ln = nn.LayerNorm(5)
        self.head = nn.Linear(5, 2)

    def forward(self, tokens):
        x = self.embed(tokens).transpose(1, 2)
        x = self.bn(self.conv(x)).transpose(1, 2)
        out, _ = self.lstm(x)
        return self.head(self.ln(out[:, -1]) * self.scale)


NAMES = [
    "scale",
    "embed.weight",
    "conv.weight",
    "conv.bias",
    "bn.weight",
    "bn.bias",
    "lstm.weight_ih_l0",
    "lstm.weight_hh_l0",
    "lstm.bias_ih_l0",
    "lstm.bias_hh_l0",
    "ln.weight",
    "ln.bias",
    "head.weight",
    "head.bias",
]


def resolved(plan, model=None):
    return {a.name: a.penalty for a in Plan.coerce(plan).resolve(model or Zoo())}


def reasons(plan, model=None):
    return {a.name: a.reason for a in Plan.coerce(plan).resolve(model or Zoo())}


P2 = L2(0.1)

# name -> (penalty under Plan(L2(0.1)), the reason given)
DEFAULT_ELIGIBILITY = {
    "scale": (None, "1-D parameter (excluded by default)"),
    "embed.weight": (P2, "rule 0 ('*')"),
    "conv.weight": (P2, "rule 0 ('*')"),
    "conv.bias": (None, "bias (excluded by default)"),
    "bn.weight": (None, "normalization layer (excluded by default)"),
    "bn.bias": (None, "normalization layer (excluded by default)"),
    "lstm.weight_ih_l0": (P2, "rule 0 ('*')"),
    "lstm.weight_hh_l0": (P2, "rule 0 ('*')"),
    "lstm.bias_ih_l0": (None, "bias (excluded by default)"),
    "lstm.bias_hh_l0": (None, "bias (excluded by default)"),
    "ln.weight": (None, "normalization layer (excluded by default)"),
    "ln.bias": (None, "normalization layer (excluded by default)"),
    "head.weight": (P2, "rule 0 ('*')"),
    "head.bias": (None, "bias (excluded by default)"),
}


def test_names_are_resolved_in_module_order():
    assert list(resolved(P2)) == NAMES


@pytest.mark.parametrize(("name", "expected"), list(DEFAULT_ELIGIBILITY.items()))
def test_default_eligibility(name, expected):
    penalty, reason = expected
    assert resolved(Plan(P2))[name] == penalty
    assert reasons(Plan(P2))[name] == reason


def test_no_rule_leaves_everything_alone():
    assignments = Plan().resolve(Zoo())
    assert all(a.penalty is None for a in assignments)
    assert reasons(Plan())["head.weight"] == "no rule selects it"


def test_later_rules_override_earlier_ones():
    plan = Plan([("*", L2(0.1)), ("head.*", L1(0.2)), ("*.weight_hh*", L1(0.3))])
    got = resolved(plan)
    assert got["head.weight"] == L1(0.2)
    assert got["lstm.weight_hh_l0"] == L1(0.3)
    assert got["conv.weight"] == L2(0.1)
    assert got["head.bias"] is None  # "head.*" does not name the bias
    assert reasons(plan)["head.weight"] == "rule 1 ('head.*')"


def test_none_excludes():
    plan = Plan({"*": L2(0.1), "embed.*": None})
    assert resolved(plan)["embed.weight"] is None
    assert reasons(plan)["embed.weight"] == "excluded by rule 1 ('embed.*')"
    assert resolved(plan)["conv.weight"] == L2(0.1)


def test_a_glob_naming_biases_includes_them():
    got = resolved({"*": L2(0.1), "*.bias": L1(0.01)})
    assert got["conv.bias"] == L1(0.01)
    assert got["head.bias"] == L1(0.01)
    # A rule that names a parameter (no wildcard in the last part) overrides every default.
    assert got["bn.bias"] == L1(0.01)
    assert got["lstm.bias_ih_l0"] is None  # not matched by "*.bias"
    assert got["bn.weight"] is None


def test_a_later_wildcard_rule_does_not_undo_an_explicit_bias_rule():
    got = resolved([("*.bias", L1(0.1)), ("*", L2(0.2))])
    assert got["head.bias"] == L1(0.1)
    assert got["head.weight"] == L2(0.2)


def test_an_exact_name_selects_a_one_dimensional_parameter():
    assert resolved({"scale": L2(0.3)})["scale"] == L2(0.3)


def test_include_biases_and_include_norms():
    with_biases = resolved(Plan(P2, include_biases=True))
    for name in ("conv.bias", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "head.bias", "scale"):
        assert with_biases[name] == P2
    assert with_biases["bn.bias"] is None and with_biases["ln.weight"] is None
    with_norms = resolved(Plan(P2, include_norms=True))
    for name in ("bn.weight", "bn.bias", "ln.weight", "ln.bias"):
        assert with_norms[name] == P2
    assert with_norms["head.bias"] is None


def test_type_selectors():
    got = resolved({nn.Linear: L1(0.1)})
    assert [n for n, p in got.items() if p is not None] == ["head.weight"]
    got = resolved({(nn.Conv1d, nn.Embedding): L2(0.2)})
    assert [n for n, p in got.items() if p is not None] == ["embed.weight", "conv.weight"]
    # A normalization type selects its layer's parameters explicitly.
    got = resolved({nn.BatchNorm1d: L2(0.3)})
    assert [n for n, p in got.items() if p is not None] == ["bn.weight", "bn.bias"]


def test_callable_selectors_see_name_parameter_and_module():
    seen = []

    def twenty_rows(name, param, module):
        seen.append((name, type(module).__name__))
        return param.shape[0] == 20

    got = resolved({twenty_rows: L1(0.1)})
    # LSTM gates: 4 * hidden = 20 rows. A callable names what it selects, biases included.
    assert [n for n, p in got.items() if p is not None] == [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l0",
    ]
    assert ("head.weight", "Linear") in seen and ("scale", "Zoo") in seen
    assert reasons({twenty_rows: L1(0.1)})["lstm.weight_ih_l0"] == "rule 0 (twenty_rows)"


def test_rules_as_rule_objects_and_coerce():
    plan = Plan([Rule("*", L2(0.1)), Rule("head.weight", None)])
    assert resolved(plan)["head.weight"] is None
    assert Plan.coerce(plan) is plan
    assert Plan.coerce("l1") == Plan({"*": L1()})
    assert Plan.coerce({"*": "l2"}) == Plan([("*", L2(0.01))])


def test_tied_parameters_are_penalized_once():
    embed = nn.Embedding(5, 3)
    decoder = nn.Linear(3, 5, bias=False)
    decoder.weight = embed.weight
    model = nn.Sequential(embed, decoder)
    assert [a.name for a in Plan(L2(0.1)).resolve(model)] == ["0.weight"]
    reg = Regularizer(model, L2(0.1), "loss")
    torch.testing.assert_close(reg.loss(), 0.1 * embed.weight.pow(2).sum())


def test_lstm_input_and_recurrent_kernels_get_their_own_penalties():
    """Keras's kernel_regularizer / recurrent_regularizer are two rules."""
    torch.manual_seed(0)
    model = Zoo().double()
    plan = Plan({"*.weight_ih*": L2(0.1), "*.weight_hh*": L1(0.05)})
    got = resolved(plan, model)
    assert got["lstm.weight_ih_l0"] == L2(0.1) and got["lstm.weight_hh_l0"] == L1(0.05)
    assert got["head.weight"] is None
    # The gradients show it: with a zero data loss, one SGD step of lr 1 moves each kernel
    # by minus its own penalty's gradient.
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    Regularizer(model, plan, "gradient").attach(opt)
    w_ih = model.lstm.weight_ih_l0.detach().clone()
    w_hh = model.lstm.weight_hh_l0.detach().clone()
    head = model.head.weight.detach().clone()
    (0 * model(torch.randint(0, 10, (2, 7))).sum()).backward()
    opt.step()
    torch.testing.assert_close(model.lstm.weight_ih_l0.detach(), w_ih - 2 * 0.1 * w_ih)
    torch.testing.assert_close(model.lstm.weight_hh_l0.detach(), w_hh - 0.05 * torch.sign(w_hh))
    assert torch.equal(model.head.weight.detach(), head)


# --- describe -----------------------------------------------------------------------------


def test_describe_table():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))
    plan = Plan({"*": L2(0.01), "2.weight": L1(0.001)}, activity={"0": L1(0.1)})
    expected = "\n".join(
        [
            "parameter   shape   penalty  strength  reason",
            "0.weight    (2, 3)  L2       l2=0.01   rule 0 ('*')",
            "0.bias      (2,)    -        -         bias (excluded by default)",
            "1.weight    (2,)    -        -         normalization layer (excluded by default)",
            "1.bias      (2,)    -        -         normalization layer (excluded by default)",
            "2.weight    (1, 2)  L1       l1=0.001  rule 1 ('2.weight')",
            "2.bias      (1,)    -        -         bias (excluded by default)",
            "0 (output)  -       L1       l1=0.1    activity of Linear, / batch size",
        ]
    )
    assert plan.describe(model) == expected


def test_describe_shows_every_strength_and_exclusions():
    table = Plan({"*": ElasticNet(0.1, 0.2), "head.*": None}).describe(Zoo())
    lines = table.splitlines()
    assert len(lines) == 1 + len(NAMES)
    row = next(line for line in lines if line.startswith("conv.weight"))
    assert "ElasticNet" in row and "l1=0.1, l2=0.2" in row and "(6, 4, 3)" in row
    row = next(line for line in lines if line.startswith("head.weight"))
    assert row.split()[1:] == ["(2,", "5)", "-", "-", "excluded", "by", "rule", "1", "('head.*')"]


# --- JSON -------------------------------------------------------------------------------


def test_plan_json_round_trip():
    plan = Plan(
        [
            ("*", L2(0.1)),
            ("head.*", L1(0.2)),
            (nn.Embedding, None),
            ((nn.Conv1d, nn.LSTM), ElasticNet(0.1, 0.2)),
            ("*.bias", L1(0.05)),
        ],
        activity={"head": L2(0.01), nn.LSTM: L1(0.02)},
        include_norms=True,
    )
    config = json.loads(json.dumps(plan.get_config()))
    back = Plan.from_config(config)
    assert back == plan
    model = Zoo()
    assert [(a.name, a.penalty, a.reason) for a in back.resolve(model)] == [
        (a.name, a.penalty, a.reason) for a in plan.resolve(model)
    ]
    assert back.describe(model) == plan.describe(model)
    assert config["rules"][3]["select"] == {"module_types": ["Conv1d", "LSTM"]}
    assert config["rules"][2]["penalty"] is None


def test_callable_selector_cannot_be_saved():
    def big(name, param, module):
        return param.numel() > 10

    with pytest.raises(ShrinkageError) as info:
        Plan({big: L2(0.1)}).get_config()
    assert str(info.value) == (
        "A callable selector (big) cannot be saved; use a name glob or a module type."
    )


def test_custom_module_type_cannot_be_saved():
    with pytest.raises(ShrinkageError) as info:
        Plan({Zoo: L2(0.1)}).get_config()
    assert str(info.value) == (
        "Only torch.nn module types can be saved in a plan; got Zoo. Use a name glob instead."
    )


# --- bad inputs -------------------------------------------------------------------------

ALL_NAMES = ", ".join(NAMES)
MODULES = "embed, conv, bn, lstm, ln, head"

BAD_INPUTS = [
    (
        "glob matching nothing",
        lambda: Plan({"decoder.*": L2(0.1)}).resolve(Zoo()),
        f"Selector 'decoder.*' in the plan matches no parameter of Zoo; parameters are: "
        f"{ALL_NAMES}.",
    ),
    (
        "glob with a typo",
        lambda: Plan({"conv.weigth": L2(0.1)}).resolve(Zoo()),
        f"Selector 'conv.weigth' in the plan matches no parameter of Zoo; parameters are: "
        f"{ALL_NAMES}. Did you mean 'conv.weight'?",
    ),
    (
        "activity glob in the wrong case",
        lambda: Plan(activity={"LSTM": L2(0.1)}).resolve_activity(Zoo()),
        f"Activity selector 'LSTM' matches no module of Zoo; modules are: {MODULES}. "
        "Did you mean 'lstm'?",
    ),
    (
        "type matching nothing",
        lambda: Plan({nn.GRU: L2(0.1)}).resolve(Zoo()),
        f"Selector GRU in the plan matches no parameter of Zoo; parameters are: {ALL_NAMES}.",
    ),
    (
        "activity selector matching nothing",
        lambda: Plan(activity={"decoder": L2(0.1)}).resolve_activity(Zoo()),
        f"Activity selector 'decoder' matches no module of Zoo; modules are: {MODULES}.",
    ),
    (
        "activity type matching nothing",
        lambda: Plan(activity={nn.GRU: L2(0.1)}).resolve_activity(Zoo()),
        f"Activity selector GRU matches no module of Zoo; modules are: {MODULES}.",
    ),
    (
        "selector of a wrong type",
        lambda: Plan({3: L2(0.1)}),
        "A selector in plan must be a glob string, an nn.Module type (or tuple of them) or a "
        "callable. Got 3 instead.",
    ),
    (
        "selector type that is not a module",
        lambda: Plan({int: L2(0.1)}),
        "A selector in plan must be a glob string, an nn.Module type (or tuple of them) or a "
        "callable. Got <class 'int'> instead.",
    ),
    (
        "rule without a penalty",
        lambda: Plan([("*",)]),
        "Each rule in the plan must be (selector, penalty). Got ('*',) instead.",
    ),
    (
        "plan of a wrong type",
        lambda: Plan(3.0),
        "The plan must be a penalty, a dict {selector: penalty} or a list of rules. "
        "Got 3.0 instead.",
    ),
    (
        "unknown penalty name",
        lambda: Plan({"*": "l3"}),
        "Unknown penalty identifier: 'l3'. Expected one of: "
        "l1, l2, elastic_net, exp_abs, group_lasso, l2sp, orthogonal.",
    ),
    (
        "saved plan not a dict",
        lambda: Plan.from_config([]),
        "A saved plan must be a dict. Got [].",
    ),
    (
        "saved plan unknown module type",
        lambda: Plan.from_config(
            {"rules": [{"select": {"module_types": ["Dense"]}, "penalty": None}]}
        ),
        "Unknown module type in a saved plan: 'Dense'.",
    ),
    (
        "saved plan bad selector",
        lambda: Plan.from_config({"rules": [{"select": 3, "penalty": None}]}),
        "Invalid selector in a saved plan: 3.",
    ),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_raise_one_clear_line(case, call, message):
    with pytest.raises(ShrinkageError) as info:
        call()
    assert str(info.value) == message


def test_activity_selector_must_not_be_a_callable():
    with pytest.raises(
        ShrinkageError,
        match=r"^Activity selectors must be module-name globs or module types\. "
        r"Got <function .*> instead\.$",
    ):
        Plan(activity={lambda name, p, m: True: L2(0.1)})


def test_a_rule_matching_only_excluded_parameters_is_not_an_error():
    got = resolved({"conv.*": L2(0.1)})
    assert got["conv.weight"] == L2(0.1) and got["conv.bias"] is None
    assert re.fullmatch(
        r"Plan\(\[\('conv\.\*', L2\(l2=0\.1\)\)\]\)", repr(Plan({"conv.*": L2(0.1)}))
    )


def test_a_selector_that_matches_only_excluded_parameters_says_why():
    """``"*bias*"`` selects the biases, which are excluded unless named or included: the
    rule would penalize nothing (a trap of issue #11, section 3), so it is refused."""
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    with pytest.raises(ShrinkageError) as err:
        Plan({"*bias*": L2(0.1)}).resolve(model)
    assert str(err.value) == (
        "Selector '*bias*' in the plan matches only parameters that are excluded by default: "
        "0.bias (bias), 1.bias (normalization layer), 2.bias (bias). Name them without a "
        "wildcard in the last part (e.g. '*.bias'), or pass include_biases=True "
        "(normalization layers: include_norms=True)."
    )
    assert "\n" not in str(err.value)
    with pytest.raises(ShrinkageError, match=r"^Selector '1\.\*' in the plan matches only"):
        Plan({"1.*": L2(0.1)}).resolve(model)
    # what works: including them, or naming them
    included = Plan({"*bias*": L2(0.1)}, include_biases=True).resolve(model)
    assert [a.name for a in included if a.penalty is not None] == ["0.bias", "2.bias"]
    named = Plan({"*.bias": L2(0.1)}).resolve(model)
    assert [a.name for a in named if a.penalty is not None] == ["0.bias", "1.bias", "2.bias"]
    # a rule that excludes (None) what is excluded anyway is fine
    Plan({"*": L2(0.1), "*bias*": None}).resolve(model)
