"""kiln: run ONNX models on the CPU with onnxruntime's Python API.

    import kiln as onnxruntime
    sess = onnxruntime.InferenceSession("srcnn.onnx")
    out = sess.run(["output"], {"input": x})[0]
"""
from kiln._kiln import (  # noqa: F401
    ExecutionMode,
    Fail,
    GraphOptimizationLevel,
    InferenceSession,
    InvalidArgument,
    InvalidGraph,
    ModelMetadata,
    NodeArg,
    NoSuchFile,
    NotImplemented,
    OrtValue,
    OrtValueVector,
    RunOptions,
    RuntimeException,
    SessionOptions,
    get_all_providers,
    get_available_providers,
    disable_telemetry_events,
    enable_telemetry_events,
    get_build_info,
    get_default_session_options,
    get_device,
    get_version_string,
    set_default_logger_severity,
)

from kiln._sparse import OrtDevice, OrtSparseFormat, SparseOrtValue, SparseTensor  # noqa: E402,F401

__version__ = "0.1.0"

# onnxruntime's OrtValue over a SparseTensor (a container: kiln's runtime takes no sparse run inputs).
OrtValue.ort_value_from_sparse_tensor = staticmethod(SparseOrtValue)


def _run_async(self, output_names, input_feed, callback, user_data, run_options=None):
    """onnxruntime's run_async: runs on a worker thread (the run itself without the GIL) and calls
    callback(outputs, user_data, error_message), the message "" on success."""
    import threading

    def work():
        try:
            outputs, error = self.run(output_names, input_feed, run_options), ""
        except Exception as e:  # noqa: BLE001 -- handed to the callback, as onnxruntime does
            outputs, error = None, str(e)
        callback(outputs, user_data, error)

    threading.Thread(target=work, daemon=True).start()


InferenceSession.run_async = _run_async


def install_as_onnxruntime():
    """Makes `import onnxruntime` give kiln, as pymysql.install_as_MySQLdb() does for MySQLdb: after it,
    `import onnxruntime as ort`, `from onnxruntime.capi import _pybind_state` and
    `from onnxruntime.capi.onnxruntime_pybind11_state import Fail, RunOptions` resolve to kiln, so that code written
    for onnxruntime runs unchanged. A real onnxruntime already imported is left in place (and a RuntimeError says so)."""
    import sys
    import types

    existing = sys.modules.get("onnxruntime")
    if existing is not None and existing is not sys.modules[__name__]:
        raise RuntimeError("onnxruntime is already imported (%r): call kiln.install_as_onnxruntime() before "
                           "anything imports it" % (getattr(existing, "__file__", existing),))
    from kiln import _kiln

    this = sys.modules[__name__]
    capi = types.ModuleType("onnxruntime.capi")
    capi.__path__ = []  # a package, so that submodules import
    capi.onnxruntime_pybind11_state = _kiln
    capi._pybind_state = _kiln
    this.capi = capi
    sys.modules["onnxruntime"] = this
    sys.modules["onnxruntime.capi"] = capi
    sys.modules["onnxruntime.capi.onnxruntime_pybind11_state"] = _kiln
    sys.modules["onnxruntime.capi._pybind_state"] = _kiln
