"""The CEL subset kfp compiles: dsl.If/Elif/Else conditions and ParallelFor item selectors."""

from __future__ import annotations

import pytest

from appliance.pipelines import conditions, errors

SUM = "inputs.parameter_values['pipelinechannel--total-sum']"


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        (f"int({SUM}) > 10", {"pipelinechannel--total-sum": 14}, True),
        (f"int({SUM}) > 10", {"pipelinechannel--total-sum": "9"}, False),
        (f"int({SUM}) > 10", {"pipelinechannel--total-sum": 11.0}, True),
        (f"!(int({SUM}) > 10) && int({SUM}) > 1", {"pipelinechannel--total-sum": 5}, True),
        (f"!(int({SUM}) > 10) && !(int({SUM}) > 1)", {"pipelinechannel--total-sum": 1}, True),
        ("inputs.parameter_values['f'] == true", {"f": True}, True),
        ("!(inputs.parameter_values['f'] == true)", {"f": True}, False),
        ("inputs.parameter_values['c'] == 'heads'", {"c": "heads"}, True),
        ('inputs.parameter_values["c"] != "heads"', {"c": "tails"}, True),
        ("double(inputs.parameter_values['x']) >= 0.5", {"x": "0.5"}, True),
        ("string(inputs.parameter_values['n']) == '3'", {"n": 3.0}, True),
        ("inputs.parameter_values['a'] < 2 || inputs.parameter_values['b'] == 'z'", {"a": 5, "b": "z"}, True),
        ("'x' in inputs.parameter_values['xs']", {"xs": ["x", "y"]}, True),
        ("size(inputs.parameter_values['xs']) == 2", {"xs": ["x", "y"]}, True),
        ("-1 + 2 == 1", {}, True),
    ],
)
def test_conditions(expression: str, values: dict[str, object], expected: bool) -> None:
    assert conditions.condition_holds(expression, values) is expected


def test_selectors_pick_item_fields() -> None:
    item = {"a": 1, "b": {"c": "x"}}
    assert conditions.select('parseJson(string_value)["a"]', item) == 1
    assert conditions.select('parseJson(string_value)["b"]["c"]', '{"a": 1, "b": {"c": "x"}}') == "x"


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("inputs.parameter_values['missing'] == 1", "'missing' is not available"),
        ("exec(1)", "unknown function exec()"),
        ("os == 1", "unknown name 'os'"),
        ("inputs.parameter_values['n']", "is not a boolean"),
        ("1 +", "unexpected end"),
        ("(1 == 1", "unexpected end"),
        ("1 == 1 )", "unexpected ')'"),
        ("1 # 2", "unexpected character '#'"),
        ("int(inputs.parameter_values['s']) > 1", "int('abc') failed"),
        ("inputs.parameter_values['s'] > 1", "cannot compare 'abc' > 1"),
    ],
)
def test_bad_expressions_are_invalid_pipelines(expression: str, why: str) -> None:
    with pytest.raises(errors.InvalidPipeline) as info:
        conditions.condition_holds(expression, {"n": 3, "s": "abc"})
    assert why in info.value.message and expression.strip() in info.value.message
