"""kiln: run ONNX models on the CPU with onnxruntime's Python API.

    import kiln as onnxruntime
    sess = onnxruntime.InferenceSession("srcnn.onnx")
    out = sess.run(["output"], {"input": x})[0]
"""
from kiln._kiln import (  # noqa: F401
    Fail,
    GraphOptimizationLevel,
    InferenceSession,
    InvalidArgument,
    InvalidGraph,
    ModelMetadata,
    NodeArg,
    NoSuchFile,
    NotImplemented,
    RunOptions,
    RuntimeException,
    SessionOptions,
    get_all_providers,
    get_available_providers,
    get_device,
)

__version__ = "0.1.0"
