"""TritonLLMClient request shaping and error mapping (no server needed)."""

from __future__ import annotations

import json

import grpc
import pytest
from tritonclient.utils import InferenceServerException

from copyloop.generation.llm_client import (
    LLMBadRequestError,
    LLMServerError,
    LLMTimeoutError,
    LLMUnavailableError,
    SamplingParams,
    TritonLLMClient,
    _map_error,
    _ModelShape,
    _sampling_json,
)

ALL_INPUTS = frozenset(
    {
        "text_input",
        "stream",
        "sampling_parameters",
        "exclude_input_in_output",
        "return_finish_reason",
        "return_cumulative_logprob",
        "return_num_output_tokens",
    }
)


@pytest.mark.parametrize("shape", [(1, 1), (1,)])
def test_inputs_follow_the_model_config_shape(shape: tuple[int, ...]) -> None:
    client = TritonLLMClient("127.0.0.1:1")
    inputs = client._inputs(_ModelShape(shape, ALL_INPUTS), "héllo 你好", '{"seed": 1}', True)
    by_name = {i.name(): i for i in inputs}
    assert set(by_name) == ALL_INPUTS
    assert all(list(i.shape()) == list(shape) for i in inputs)
    assert by_name["text_input"].datatype() == "BYTES"
    assert by_name["stream"].datatype() == "BOOL"


def test_inputs_the_model_lacks_are_not_sent() -> None:
    """An older vLLM backend has no return_* inputs; sending them would be rejected."""
    client = TritonLLMClient("127.0.0.1:1")
    shape = _ModelShape(
        (1,), frozenset({"text_input", "stream", "sampling_parameters", "exclude_input_in_output"})
    )
    names = {i.name() for i in client._inputs(shape, "hi", None, False)}
    assert names == {"text_input", "stream", "exclude_input_in_output"}


def test_sampling_params_serialise_like_vllm() -> None:
    assert json.loads(SamplingParams(temperature=0.5, seed=3, max_tokens=9).to_json()) == {
        "temperature": 0.5,
        "top_p": 0.95,
        "top_k": 0,
        "seed": 3,
        "max_tokens": 9,
    }
    assert "seed" not in json.loads(SamplingParams().to_json())
    assert json.loads(SamplingParams(ignore_eos=True).to_json())["ignore_eos"] is True
    assert _sampling_json({"max_tokens": 4}) == '{"max_tokens": 4}'
    assert _sampling_json("{raw") == "{raw"  # passed through: the server validates
    assert _sampling_json(None) is None


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    "error, kind",
    [
        (_FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"), LLMUnavailableError),
        (_FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"), LLMTimeoutError),
        (_FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad shape"), LLMBadRequestError),
        (_FakeRpcError(grpc.StatusCode.INTERNAL, "boom"), LLMServerError),
        (
            InferenceServerException("bad request: sampling_parameters is not valid JSON"),
            LLMBadRequestError,
        ),
        (
            InferenceServerException(
                "Request for unknown model: 'x' is not found", status="StatusCode.NOT_FOUND"
            ),
            LLMUnavailableError,
        ),
        (InferenceServerException("generation failed: CUDA error"), LLMServerError),
    ],
)
def test_errors_map_to_actionable_kinds(error: BaseException, kind: type) -> None:
    assert isinstance(_map_error(error, "ctx"), kind)
