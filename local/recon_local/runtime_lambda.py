"""In-process Lambda execution for moto.

moto's Lambda backend runs function code in Docker. We replace the private
``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) -> (payload_json, errored, logs)``
(moto 5.2.5) with a function that imports our real handler file and calls it in this process, so every
path into Lambda (boto3 ``invoke``, Step Functions ``lambda:invoke`` tasks, S3/SNS/SQS notifications) runs
the real code.

moto's Step Functions interpreter runs Map iterations and Parallel branches in threads, and those threads read
the process environment (botocore copies it, urllib scans it for proxies). So a function's environment
variables never touch the process-wide environment: ``os.environ`` is replaced, while the runtime is
installed, by a view that shows the invoking thread its function's environment and every other thread the
process environment, which no invocation changes. Invocations are still serialized with a re-entrant lock:
``sys.path`` and the cached settings are process-wide.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

LOG = logging.getLogger(__name__)

# Lambda's own variables that handlers (and Powertools) may read.
_TRACE_DISABLED = {"POWERTOOLS_TRACE_DISABLED": "1"}


@dataclass
class FunctionSpec:
    """What the in-process runtime needs to run one template function."""

    logical_id: str
    function_name: str
    function_arn: str
    code_dir: Path
    handler: str  # e.g. "app.lambda_handler"
    layer_dirs: list[Path] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    timeout_s: int = 3
    memory_mb: int = 128
    region: str = "us-east-1"


class LambdaContext:
    """The subset of the Lambda context object handlers use."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.function_arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.function_name}"
        self.log_stream_name = f"local/[$LATEST]{self.aws_request_id.replace('-', '')}"
        self._deadline = time.monotonic() + spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error_payload(exc: BaseException, *, error_type: str | None = None) -> str:
    """Lambda's error document; Step Functions takes the error name from errorType."""
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": error_type or type(exc).__name__,
            "stackTrace": traceback.format_exception(exc)[1:],
        }
    )


class InvocationEnviron(os._Environ[str]):
    """``os.environ`` whose contents, in a thread running a handler, are that invocation's environment.

    Other threads see the process environment, backed by the same store as the original ``os.environ``.
    Setting and removing a function's variables on the shared environment instead raced those threads: a
    copy that listed a key another thread removed a moment later raised KeyError ('_HANDLER',
    'POWERTOOLS_TRACE_DISABLED') and failed a whole channel branch."""

    def __init__(self, process: os._Environ[str]) -> None:
        super().__init__(
            process._data,  # type: ignore[attr-defined]
            process.encodekey,
            process.decodekey,
            process.encodevalue,
            process.decodevalue,
        )
        self._local = threading.local()

    def _invocation(self) -> dict[str, str] | None:
        stack: list[dict[str, str]] = getattr(self._local, "stack", [])
        return stack[-1] if stack else None

    @contextlib.contextmanager
    def invocation(self, values: Mapping[str, str]) -> Iterator[None]:
        """For the calling thread only: the process environment plus ``values`` until the block ends.

        Nested invocations (a handler invoking another function synchronously) stack."""
        stack: list[dict[str, str]] = self._local.__dict__.setdefault("stack", [])
        base = self._invocation()
        if base is None:
            # list() of a dict is atomic: a consistent snapshot even while other threads write
            base = {self.decodekey(k): self.decodevalue(v) for k, v in list(self._data.items())}  # type: ignore[attr-defined]
        stack.append({**base, **values})
        try:
            yield
        finally:
            stack.pop()

    def __getitem__(self, key: str) -> str:
        env = self._invocation()
        return super().__getitem__(key) if env is None else env[key]

    def __setitem__(self, key: str, value: str) -> None:
        env = self._invocation()
        if env is None:
            super().__setitem__(key, value)
        else:
            env[key] = value

    def __delitem__(self, key: str) -> None:
        env = self._invocation()
        if env is None:
            super().__delitem__(key)
        else:
            del env[key]

    def __iter__(self) -> Iterator[str]:
        env = self._invocation()
        return super().__iter__() if env is None else iter(list(env))

    def __len__(self) -> int:
        env = self._invocation()
        return super().__len__() if env is None else len(env)


def _clear_settings_cache() -> None:
    """Our Lambdas read settings through a cached function; re-read them for each function's environment."""
    module = sys.modules.get("recon.settings")
    if module is None:
        try:
            import recon.settings as module
        except ImportError:
            return
    cached = getattr(module, "get_settings", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


class InProcessLambdaRuntime:
    """Registry of template functions plus the moto patch that runs them in-process."""

    def __init__(self, *, env_overrides: Mapping[str, str] | None = None) -> None:
        self.functions: dict[str, FunctionSpec] = {}  # by function name
        self.env_overrides = dict(env_overrides or {})
        self.invocations: list[tuple[str, Any]] = []  # (function name, event), for debugging and tests
        self._modules: dict[str, ModuleType] = {}  # by function name
        self._module_names: list[str] = []
        self._lock = threading.RLock()
        self._patch: Any = None
        self._environ: InvocationEnviron | None = None
        self._process_environ: os._Environ[str] | None = None
        self._prefix = f"_recon_local_fn_{uuid.uuid4().hex[:8]}"

    def register(self, spec: FunctionSpec) -> None:
        self.functions[spec.function_name] = spec

    # -- patch lifecycle

    def install(self) -> None:
        from moto.awslambda.models import LambdaFunction

        runtime = self
        original: Callable[..., tuple[str, bool, str]] = LambdaFunction._invoke_lambda

        def _invoke_lambda(fn_self: Any, event: Any = None) -> tuple[str, bool, str]:
            spec = runtime.functions.get(fn_self.function_name)
            if spec is None:
                LOG.debug(
                    "function %s is not from the template; using moto's own runtime", fn_self.function_name
                )
                return original(fn_self, event)
            moto_env = dict(getattr(fn_self, "environment_vars", None) or {})
            return runtime.run(spec, event, moto_env)

        self._patch = mock.patch.object(LambdaFunction, "_invoke_lambda", _invoke_lambda)
        self._patch.start()
        self._process_environ = os.environ
        self._environ = InvocationEnviron(os.environ)
        os.environ = self._environ  # noqa: B003 - replaced on purpose, with the same store behind it

    def uninstall(self) -> None:
        if self._patch is not None:
            self._patch.stop()
            self._patch = None
        if self._process_environ is not None:
            if os.environ is self._environ:
                os.environ = self._process_environ  # noqa: B003
            self._process_environ = None
            self._environ = None
        for name in self._module_names:
            sys.modules.pop(name, None)
        self._modules.clear()
        self._module_names.clear()
        _clear_settings_cache()

    # -- execution

    def environment_for(
        self, spec: FunctionSpec, moto_env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """What os.environ gets on top of the process environment while the handler runs."""
        env = {
            **_TRACE_DISABLED,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
        }
        # moto's stored configuration wins over the template copy: update_function_configuration works.
        env.update(spec.environment)
        env.update(moto_env or {})
        env.update(self.env_overrides)
        return env

    def run(
        self, spec: FunctionSpec, event: Any, moto_env: Mapping[str, str] | None = None
    ) -> tuple[str, bool, str]:
        # moto's invoke() hands over the JSON-decoded body, or the string "{}" for an empty body.
        if event is None or event == "{}":
            event = {}
        with self._lock:
            self.invocations.append((spec.function_name, event))
            added_paths = [str(p) for p in [spec.code_dir, *spec.layer_dirs] if str(p) not in sys.path]
            sys.path[:0] = added_paths
            try:
                with self._invocation_environ(self.environment_for(spec, moto_env)):
                    _clear_settings_cache()
                    try:
                        handler = self._handler(spec)
                        result = handler(event, LambdaContext(spec))
                    except Exception as exc:
                        LOG.info("%s raised %s: %s", spec.logical_id, type(exc).__name__, exc)
                        return error_payload(exc), True, ""
                    finally:
                        _clear_settings_cache()
                try:
                    return json.dumps(result), False, ""
                except (TypeError, ValueError) as exc:
                    return error_payload(exc, error_type="Runtime.MarshalError"), True, ""
            finally:
                for path in added_paths:
                    with contextlib.suppress(ValueError):
                        sys.path.remove(path)

    def _invocation_environ(self, values: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
        if self._environ is None:
            raise RuntimeError("InProcessLambdaRuntime is not installed")
        return self._environ.invocation(values)

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        module_path, _, attr = spec.handler.rpartition(".")
        if not module_path:
            raise ImportError(f"Handler {spec.handler!r} of {spec.logical_id} is not 'module.function'")
        module = self._modules.get(spec.function_name)
        if module is None:
            rel = Path(*module_path.split("."))
            candidates = [spec.code_dir / rel.with_suffix(".py"), spec.code_dir / rel / "__init__.py"]
            source = next((c for c in candidates if c.is_file()), None)
            if source is None:
                raise ImportError(f"{spec.logical_id}: no {candidates[0]} for Handler {spec.handler!r}")
            name = f"{self._prefix}_{spec.logical_id}"
            module_spec = importlib.util.spec_from_file_location(name, source)
            if module_spec is None or module_spec.loader is None:  # pragma: no cover - defensive
                raise ImportError(f"cannot load {source}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            self._module_names.append(name)
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                self._module_names.remove(name)
                raise
            self._modules[spec.function_name] = module
        handler = getattr(module, attr, None)
        if not callable(handler):
            raise AttributeError(f"{spec.logical_id}: {module_path} has no callable {attr!r}")
        return handler  # type: ignore[no-any-return]
