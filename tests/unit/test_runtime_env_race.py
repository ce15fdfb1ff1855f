"""The local Lambda runtime gives each invocation its function's environment without changing the process
environment that moto's other threads read (recon_local.runtime_lambda).

A Step Functions Parallel branch once failed with States.Runtime KeyError '_HANDLER': the runtime set and
removed a function's variables on the shared ``os.environ`` while another branch's thread copied it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recon_local.runtime_lambda import FunctionSpec, InProcessLambdaRuntime

HANDLER = """
import os
import threading

# set by the test: the handler holds here so the test can look at the environment from another thread
HOLD = {"entered": threading.Event(), "release": threading.Event(), "hold": False}


def lambda_handler(event, context):
    if HOLD["hold"]:
        HOLD["entered"].set()
        HOLD["release"].wait(5)
    names = ("_HANDLER", "AWS_LAMBDA_FUNCTION_NAME", "ONLY_IN_PARSE", "SHARED", "PATH")
    return {name: os.environ.get(name) for name in names} | {"copied": sorted(os.environ.copy())}
"""


def _spec(code_dir: Path, name: str, environment: dict[str, str]) -> FunctionSpec:
    return FunctionSpec(
        logical_id=name,
        function_name=name,
        function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        code_dir=code_dir,
        handler="app.lambda_handler",
        environment=environment,
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[InProcessLambdaRuntime]:
    (tmp_path / "app.py").write_text(HANDLER, "utf-8")
    rt = InProcessLambdaRuntime()
    rt.register(_spec(tmp_path, "Parse", {"ONLY_IN_PARSE": "pdf-fn", "SHARED": "parse"}))
    rt.register(_spec(tmp_path, "Match", {"SHARED": "match"}))
    process_environ = os.environ
    rt.install()
    try:
        yield rt
    finally:
        rt.uninstall()
        assert os.environ is process_environ


def _invoke(rt: InProcessLambdaRuntime, name: str) -> dict[str, object]:
    payload, errored, _ = rt.run(rt.functions[name], {})
    assert not errored, payload
    result: dict[str, object] = json.loads(payload)
    return result


def test_a_handler_sees_its_own_function_environment_only(runtime: InProcessLambdaRuntime) -> None:
    parse = _invoke(runtime, "Parse")
    match = _invoke(runtime, "Match")
    assert (parse["_HANDLER"], parse["AWS_LAMBDA_FUNCTION_NAME"], parse["SHARED"]) == (
        "app.lambda_handler",
        "Parse",
        "parse",
    )
    assert parse["ONLY_IN_PARSE"] == "pdf-fn" and "ONLY_IN_PARSE" in parse["copied"]  # type: ignore[operator]
    assert (match["AWS_LAMBDA_FUNCTION_NAME"], match["SHARED"]) == ("Match", "match")
    assert match["ONLY_IN_PARSE"] is None  # Parse ran first: its variables do not leak into Match
    assert parse["PATH"] == os.environ.get("PATH")  # on top of the process environment
    assert "_HANDLER" not in os.environ  # nothing left behind


def test_another_thread_never_sees_an_invocation_change_the_process_environment(
    runtime: InProcessLambdaRuntime,
) -> None:
    before = dict(os.environ)
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(_invoke(runtime, "Parse")))
    # load the handler module once so the test can hold the next invocation inside it
    _invoke(runtime, "Parse")
    module_hold = next(iter(runtime._modules.values())).HOLD
    module_hold["hold"] = True
    worker.start()
    try:
        assert module_hold["entered"].wait(5)
        # the handler is running in the worker thread right now
        assert dict(os.environ) == before
        assert "_HANDLER" not in os.environ and os.environ.get("ONLY_IN_PARSE") is None
    finally:
        module_hold["release"].set()
        worker.join(5)
    assert result["_HANDLER"] == "app.lambda_handler"


def test_threads_copying_the_environment_while_functions_run_never_fail(
    runtime: InProcessLambdaRuntime,
) -> None:
    """What botocore (``os.environ.copy()``) and urllib (``os.environ.items()``) do in moto's worker threads."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def copy_environment() -> None:
        while not stop.is_set():
            try:
                os.environ.copy()
                dict(os.environ.items())
            except BaseException as exc:  # any failure is the defect
                errors.append(exc)
                return

    def invoke_in_turn(name: str) -> None:
        try:
            for _ in range(300):
                _invoke(runtime, name)
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=copy_environment) for _ in range(2)]
    invokers = [threading.Thread(target=invoke_in_turn, args=(name,)) for name in ("Parse", "Match")]
    for thread in readers + invokers:
        thread.start()
    for thread in invokers:
        thread.join(30)
    stop.set()
    for thread in readers:
        thread.join(5)
    assert errors == []
