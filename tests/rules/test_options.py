"""Tests for graphnet.rules.options.RuleOptions: validation, coercion and dict round trips."""
import dataclasses
import json

import pytest

from graphnet.rules import Activation, BackwardUpdate, Feedback, RuleOptions


def test_defaults_follow_the_paper():
    o = RuleOptions()
    assert o.activation is Activation.RELU_TANH and o.output_activation is Activation.TANH
    assert o.backward_update is BackwardUpdate.ADDITIVE and o.feedback is Feedback.TARGET
    assert o.derivative_states == () and o.backward_states is None
    assert not any((o.tied_backward, o.single_channel, o.normalize, o.synapse_normalization, o.oja,
                    o.forward_synapse_update))


def test_strings_are_coerced_to_enums():
    o = RuleOptions(activation="sigmoid", output_activation="identity", backward_update="multiplicative",
                    feedback="ce_gradient", derivative_states=[1], backward_states=[1, 0])
    assert o.activation is Activation.SIGMOID and o.output_activation is Activation.IDENTITY
    assert o.backward_update is BackwardUpdate.MULTIPLICATIVE and o.feedback is Feedback.CE_GRADIENT
    assert o.derivative_states == (1,) and o.backward_states == (1, 0)
    assert o == RuleOptions(activation=Activation.SIGMOID, output_activation=Activation.IDENTITY,
                            backward_update=BackwardUpdate.MULTIPLICATIVE, feedback=Feedback.CE_GRADIENT,
                            derivative_states=(1,), backward_states=(1, 0))
    assert RuleOptions(output_activation=None).output_activation is None


@pytest.mark.parametrize("field,valid", [
    ("activation", ["tanh", "sigmoid", "relu_tanh", "relu", "identity"]),
    ("output_activation", ["tanh", "sigmoid", "relu_tanh", "relu", "identity"]),
    ("backward_update", ["additive", "multiplicative"]),
    ("feedback", ["target", "mse_gradient", "ce_gradient"]),
])
def test_bad_enum_value_lists_valid_ones(field, valid):
    with pytest.raises(ValueError) as e:
        RuleOptions(**{field: "bogus"})
    msg = str(e.value)
    assert f"RuleOptions.{field}='bogus' is not one of" in msg
    for value in valid:
        assert repr(value) in msg


@pytest.mark.parametrize("feedback", ["mse_gradient", "ce_gradient"])
def test_gradient_feedback_needs_derivative_state_1(feedback):
    with pytest.raises(ValueError, match=r"add 1 to derivative_states"):
        RuleOptions(feedback=feedback)
    with pytest.raises(ValueError, match=r"add 1 to derivative_states"):
        RuleOptions(feedback=feedback, derivative_states=(0, 2))
    assert RuleOptions(feedback=feedback, derivative_states=(1,)).feedback is Feedback(feedback)
    assert RuleOptions(feedback="target").derivative_states == ()  # the learned-rule feedback needs none


@pytest.mark.parametrize("field", ["derivative_states", "backward_states"])
@pytest.mark.parametrize("states", [(-1,), (1, 1), (0, 2, 0)])
def test_state_indices_must_be_distinct_and_non_negative(field, states):
    with pytest.raises(ValueError, match=rf"RuleOptions.{field}=.*distinct and >= 0"):
        RuleOptions(**{field: states})


def test_check_states():
    with pytest.raises(ValueError, match=r"k >= 2 .*got k=1"):
        RuleOptions().check_states(1)
    with pytest.raises(ValueError, match=r"derivative_states names state\(s\) \[3\], but the genome has k=3"):
        RuleOptions(derivative_states=(1, 3)).check_states(3)
    with pytest.raises(ValueError, match=r"backward_states names state\(s\) \[2, 5\], but the genome has k=2"):
        RuleOptions(backward_states=(2, 0, 5)).check_states(2)
    RuleOptions(derivative_states=(1, 3), backward_states=(0, 3)).check_states(4)
    RuleOptions().check_states(2)


def test_from_dict_rejects_unknown_keys_by_name():
    with pytest.raises(ValueError) as e:
        RuleOptions.from_dict({"activation": "tanh", "learning_rate": 0.1, "symmetric_synapses": True})
    msg = str(e.value)
    assert "['learning_rate', 'symmetric_synapses']" in msg
    assert "valid options" in msg and "'tied_backward'" in msg and "'activation'" in msg


@pytest.mark.parametrize("options", [
    RuleOptions(),
    RuleOptions(output_activation=None, oja=True, normalize=True, synapse_normalization=True),
    RuleOptions(activation="sigmoid", output_activation="sigmoid", derivative_states=(1,),
                backward_update="multiplicative", backward_states=(1,), feedback="mse_gradient",
                tied_backward=True, single_channel=True, forward_synapse_update=True),
])
def test_dict_round_trip_through_json(options):
    d = options.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(RuleOptions)}
    text = json.dumps(d)  # plain JSON types only
    back = RuleOptions.from_dict(json.loads(text))
    assert back == options and hash(back) == hash(options)
    assert isinstance(back.derivative_states, tuple)
    assert RuleOptions.from_dict({}) == RuleOptions()


def test_to_dict_values():
    d = RuleOptions(activation="relu", derivative_states=(1,), feedback="ce_gradient").to_dict()
    assert d["activation"] == "relu" and d["feedback"] == "ce_gradient" and d["derivative_states"] == [1]
    assert d["backward_states"] is None and d["output_activation"] == "tanh"


def test_frozen():
    o = RuleOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.oja = True
    assert dataclasses.replace(o, oja=True).oja is True and o.oja is False
    with pytest.raises(ValueError, match="add 1 to derivative_states"):
        dataclasses.replace(o, feedback="mse_gradient")  # replace re-validates
