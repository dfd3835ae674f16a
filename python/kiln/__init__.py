"""kiln: run ONNX models on the CPU with onnxruntime's Python API.

    import kiln as onnxruntime
    sess = onnxruntime.InferenceSession("srcnn.onnx")
    out = sess.run(["output"], {"input": x})[0]
"""
from kiln._kiln import (  # noqa: F401
    AdapterFormat,
    ExecutionMode,
    Fail,
    GraphOptimizationLevel,
    InferenceSession,
    InvalidArgument,
    InvalidGraph,
    LoraAdapter,
    ModelMetadata,
    NodeArg,
    NoSuchFile,
    NotImplemented,
    OrtValue,
    OrtValueVector,
    RunOptions,
    RuntimeException,
    SessionIOBinding,
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
    tensor_heap_stats,
)

from kiln import _kiln  # noqa: E402
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


class IOBinding:
    """onnxruntime's IOBinding: inputs and outputs bound to a session once, for many runs.

    An output bound to memory (bind_output with element_type, shape and buffer_ptr, or bind_ortvalue_output) is
    written there in place by every run: with all outputs so bound, a steady-state run allocates no tensor memory.
    An output bound by name only is allocated by each run and read with get_outputs() or copy_outputs_to_cpu().
    kiln computes on the CPU: every device given must be the CPU."""

    def __init__(self, session):
        self._iobinding = SessionIOBinding(session._sess)
        self._numpy_obj_references = {}

    def bind_cpu_input(self, name, arr_on_cpu):
        """Binds input `name` to a numpy array (read in place, so it is kept alive with the binding)."""
        self._numpy_obj_references[name] = arr_on_cpu
        self._iobinding.bind_input(name, arr_on_cpu)

    def bind_input(self, name, device_type, device_id, element_type, shape, buffer_ptr):
        """Binds input `name` to memory at `buffer_ptr` holding `shape` elements of `element_type` (a numpy type or
        an ONNX type number); the memory must outlive the runs."""
        self._iobinding.bind_input(name, OrtDevice.make(device_type, device_id), element_type, shape, buffer_ptr)

    def bind_ortvalue_input(self, name, ortvalue):
        self._iobinding.bind_ortvalue_input(name, ortvalue._ortvalue)

    def synchronize_inputs(self):
        self._iobinding.synchronize_inputs()

    def bind_output(self, name, device_type="cpu", device_id=0, element_type=None, shape=None, buffer_ptr=None):
        """Binds output `name`: with buffer_ptr (and its element_type and shape), to that memory, written in place;
        without, to the device (each run allocates it)."""
        device = OrtDevice.make(device_type, device_id)
        if buffer_ptr is None:
            self._iobinding.bind_output(name, device)
        else:
            if element_type is None or shape is None:
                raise ValueError("`element_type` and `shape` are to be provided if pre-allocated memory is provided")
            self._iobinding.bind_output(name, device, element_type, shape, buffer_ptr)

    def bind_ortvalue_output(self, name, ortvalue):
        self._iobinding.bind_ortvalue_output(name, ortvalue._ortvalue)

    def synchronize_outputs(self):
        self._iobinding.synchronize_outputs()

    def get_outputs(self):
        """The last run's outputs as OrtValues (a bound output's is the bound memory)."""
        return list(self._iobinding.get_outputs())

    def get_outputs_as_ortvaluevector(self):
        return self._iobinding.get_outputs()

    def copy_outputs_to_cpu(self):
        """The last run's outputs as numpy arrays (copies)."""
        return self._iobinding.copy_outputs_to_cpu()

    def clear_binding_inputs(self):
        self._iobinding.clear_binding_inputs()
        self._numpy_obj_references.clear()

    def clear_binding_outputs(self):
        self._iobinding.clear_binding_outputs()


InferenceSession.io_binding = lambda self: IOBinding(self)
InferenceSession.io_binding.__doc__ = "An IOBinding for this session (onnxruntime's io_binding())."

# onnxruntime's C-level module has OrtDevice too.
_kiln.OrtDevice = OrtDevice


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
