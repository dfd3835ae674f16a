"""onnxruntime's SparseTensor, OrtDevice and OrtSparseFormat, as containers: sparse values in COO or CSR form, over the
caller's numpy arrays (read-only views). kiln's runtime takes sparse values only as a model's sparse initializers, so
a SparseTensor is not a run input: feeding one to run() raises, naming the input."""
import enum

import numpy as np

_ONNX_NAMES = {
    np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.float16): "float16",
    np.dtype(np.int8): "int8", np.dtype(np.int16): "int16", np.dtype(np.int32): "int32", np.dtype(np.int64): "int64",
    np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16", np.dtype(np.uint32): "uint32",
    np.dtype(np.uint64): "uint64", np.dtype(np.bool_): "bool",
}


class OrtSparseFormat(enum.IntEnum):
    ORT_SPARSE_UNDEFINED = 0
    ORT_SPARSE_COO = 1
    ORT_SPARSE_CSRC = 2
    ORT_SPARSE_BLOCK_SPARSE = 4


class OrtDevice:
    """A device description, at both of onnxruntime's levels: the C-level OrtDevice(device_type, memory_type,
    device_id) with the type numbers OrtDevice.cpu(), cuda(), ..., and the Python-level OrtDevice.make("cpu", 0).
    kiln computes on the CPU only; describing another device is allowed, putting data on it is not."""

    _TYPES = {"cpu": 0, "cuda": 1, "gpu": 1, "fpga": 2, "npu": 3, "dml": 4, "cann": 5}

    def __init__(self, device_type, memory_type=0, device_id=0):
        if isinstance(device_type, OrtDevice):  # onnxruntime's Python level wraps a C-level device
            device_type, memory_type, device_id = device_type._type, device_type._memory, device_type._id
        if isinstance(device_type, str):
            name = device_type.lower()
            if name not in OrtDevice._TYPES:
                raise ValueError("unknown device type %r (expected one of %s)" % (device_type, sorted(OrtDevice._TYPES)))
            device_type = OrtDevice._TYPES[name]
        self._type, self._memory, self._id = int(device_type), int(memory_type), int(device_id)

    @staticmethod
    def make(device_type, device_id):
        return OrtDevice(device_type, OrtDevice.default_memory(), device_id)

    @staticmethod
    def cpu():
        return 0

    @staticmethod
    def cuda():
        return 1

    @staticmethod
    def dml():
        return 4

    @staticmethod
    def default_memory():
        return 0

    def _get_c_device(self):
        return self

    def device_type(self):
        return self._type

    def memory_type(self):
        return self._memory

    def device_id(self):
        return self._id

    def __eq__(self, other):
        return isinstance(other, OrtDevice) and (self._type, self._memory, self._id) == (
            other._type, other._memory, other._id)

    def __hash__(self):
        return hash((self._type, self._memory, self._id))

    def __repr__(self):
        names = {v: k for k, v in reversed(list(OrtDevice._TYPES.items()))}
        return "OrtDevice(%s, memory_type=%d, device_id=%d)" % (names.get(self._type, self._type), self._memory,
                                                                self._id)


def _readonly(a):
    view = a.view()
    view.flags.writeable = False
    return view


def _indices(name, a):
    a = np.asarray(a)
    if a.dtype != np.int64 or a.ndim != 1:
        raise ValueError("%s must be a 1-D int64 array, not %s of shape %s" % (name, a.dtype, a.shape))
    return a


class _CooView:
    def __init__(self, indices):
        self._indices = indices

    def indices(self):
        return _readonly(self._indices)


class _CsrView:
    def __init__(self, inner, outer):
        self._inner, self._outer = inner, outer

    def inner(self):
        return _readonly(self._inner)

    def outer(self):
        return _readonly(self._outer)


class SparseTensor:
    """onnxruntime's SparseTensor on the CPU: COO (linear or per-dimension indices) or CSR (2-D)."""

    def __init__(self, fmt, dense_shape, values, views, device):
        self._format, self._shape, self._values, self._views, self._device = fmt, dense_shape, values, views, device

    @staticmethod
    def _check(dense_shape, values, device):
        shape = [int(d) for d in dense_shape]
        if any(d < 0 for d in shape):
            raise ValueError("dense_shape %s has a negative dim" % (shape,))
        values = np.asarray(values)
        if values.ndim != 1:
            raise ValueError("values must be 1-D, not of shape %s" % (values.shape,))
        if device is not None and device.device_type() != OrtDevice.cpu():
            raise RuntimeError("a SparseTensor lives on the CPU: kiln has no other device")
        return shape, values

    @staticmethod
    def sparse_coo_from_numpy(dense_shape, values, coo_indices, ort_device=None):
        shape, values = SparseTensor._check(dense_shape, values, ort_device)
        indices = _indices("coo_indices", coo_indices)
        if indices.size not in (values.size, values.size * len(shape)):
            raise ValueError("%d COO indices for %d values (expected one linear index per value, or one per "
                             "dimension)" % (indices.size, values.size))
        return SparseTensor(OrtSparseFormat.ORT_SPARSE_COO, shape, values, _CooView(indices), ort_device)

    @staticmethod
    def sparse_csr_from_numpy(dense_shape, values, inner_indices, outer_indices, ort_device=None):
        shape, values = SparseTensor._check(dense_shape, values, ort_device)
        if len(shape) != 2:
            raise ValueError("CSR needs a 2-D dense_shape, not %s" % (shape,))
        inner, outer = _indices("inner_indices", inner_indices), _indices("outer_indices", outer_indices)
        if inner.size != values.size or outer.size != shape[0] + 1:
            raise ValueError("CSR of %d values over %d rows needs %d inner and %d outer indices, not %d and %d"
                             % (values.size, shape[0], values.size, shape[0] + 1, inner.size, outer.size))
        return SparseTensor(OrtSparseFormat.ORT_SPARSE_CSRC, shape, values, _CsrView(inner, outer), ort_device)

    def format(self):
        return self._format

    def dense_shape(self):
        return list(self._shape)

    def data_type(self):
        kind = self._values.dtype.kind
        name = "string" if kind in "USO" else _ONNX_NAMES.get(self._values.dtype)
        if name is None:
            raise TypeError("values of numpy dtype %s have no ONNX type" % self._values.dtype)
        return "sparse_tensor(%s)" % name

    def device_name(self):
        return "cpu"

    def values(self):
        return _readonly(self._values)

    def as_coo_view(self):
        if self._format != OrtSparseFormat.ORT_SPARSE_COO:
            raise RuntimeError("the SparseTensor is %s, not COO" % self._format.name)
        return self._views

    def as_csrc_view(self):
        if self._format != OrtSparseFormat.ORT_SPARSE_CSRC:
            raise RuntimeError("the SparseTensor is %s, not CSR" % self._format.name)
        return self._views

    def to_cuda(self, ort_device):
        raise RuntimeError("CUDA is not available: kiln runs on the CPU")


class SparseOrtValue:
    """An OrtValue that holds a SparseTensor (OrtValue.ort_value_from_sparse_tensor)."""

    def __init__(self, sparse_tensor):
        self._sparse = sparse_tensor

    def as_sparse_tensor(self):
        return self._sparse

    def is_sparse_tensor(self):
        return True

    def is_tensor(self):
        return False

    def has_value(self):
        return True

    def data_type(self):
        return self._sparse.data_type()

    def device_name(self):
        return "cpu"
