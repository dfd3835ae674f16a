// The CPU kernel interface. A kernel reads its inputs and attributes from a KernelContext, computes the output
// shapes itself (so dynamic shapes need nothing else) and allocates its outputs through the context.
// Every op has a plain reference kernel (clear loops first); fast kernels (src/kernels/fast) take the cases their
// supports() accepts and are tested against it. The session chooses which runs (select_kernel).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/isa.h"
#include "kernels/services.h"
#include "kiln/core/status.h"
#include "kiln/core/tensor.h"
#include "kiln/core/value.h"
#include "kiln/ir/graph.h"

namespace kiln::cpu {

class KernelContext;

// What a KernelCache entry holds: the first part of its key, so that the entries of different kernels (a node may
// run several, one per shape signature) and of different preparations of one weight never meet.
enum class CacheEntry : int64_t {
  // A node's cache (KernelContext::cache), with the fields of the shapes the entry was made for.
  kDnnlConv = 1,         // dnnl_kernels::conv_f32's primitive
  kDnnlDeconv,           // dnnl_kernels::deconv_f32's primitive
  kDnnlMatMul,           // dnnl_kernels::matmul_f32's primitive
  kNchwcIm2colPlan,      // fast/nchwc_conv.cc's plans, one per kernel
  kNchwcWinogradPlan,    // (F(2x2) and the stride-2 form)
  kNchwcWinogradF4Plan,  //
  kNchwcGemmPlan,        //
  kNchwcDnnlPlan,        //
  kNchwcPointwisePlan,   //
  // The session's shared cache (KernelContext::shared_cache): weights prepared once, with the weight's address
  // and the preparation's fields.
  kSgemmB,             // sgemm::pack_b of a MatMul/Gemm/FusedMatMul B: {K, N, trans_b}
  kConvIm2colWeights,  // sgemm::pack_b of a first-layer convolution's W as [K, M]: {K, M}
  kWinogradWeights,    // winograd::transform_weights: {C, M, tile, stride}
  kConvGemmWeights,    // sgemm::pack_conv_weights_blocked: {C, M, KH, KW, block}
  kPointwiseWeights,   // pointwise::pack_weights of a 1x1 convolution's W: {M, C, block}
  kDnnlMatMulWeights,  // a constant B reordered for a oneDNN matmul: {K, N, trans_b, bytes, layout hash}
  kDnnlConvWeights,    // a constant W reordered for a oneDNN convolution: {W's oneDNN dims..., bytes, layout hash}
  // Added later (plans store these numbers: new entries go last). A node's cache:
  kDnnlQConv,    // dnnl_kernels::qconv_int8's primitive
  kDnnlQMatMul,  // dnnl_kernels::qmatmul_int8's primitive
  kDnnlReorder,  // dnnl_kernels::reorder_channels's primitive
  // The shared cache:
  kGemvBf16Weights,  // gemv_bf16::pack of a MatMul/Gemm/FusedMatMul B: {K, N, trans_b}
  // A node's cache:
  kNchwcDirectPlan,  // fast/nchwc_conv.cc's direct convolution plan
  // The shared cache:
  kDirectConvWeights,  // direct_conv::pack_weights of a KxK convolution's W: {M, K, block, blocked input}
  // A node's cache:
  kDepthwiseBf16Weights,  // depthwise_bf16::pack of a depthwise NhwcConv's W and B: {C, KH, KW}
  kWidenedConstant,       // fast/half.cc: a float16 or bfloat16 constant input widened to float32: {input index}
};

struct CacheKey {
  CacheEntry entry;
  std::vector<int64_t> fields;
  bool operator==(const CacheKey&) const = default;
};

// Per-node state that outlives a run: oneDNN primitives and weights packed for them, keyed by what they are and
// the input shapes they were made for. Shared by concurrent runs (lookups are locked; entries are immutable).
class KernelCache {
 public:
  // capacity: how many keys are kept (the oldest goes first); 0 keeps every key.
  explicit KernelCache(size_t capacity = 16) : capacity_(capacity) {}
  // The entry for `key`, made by make() (returning StatusOr<std::shared_ptr<T>>) the first time.
  template <typename T, typename Make>
  StatusOr<std::shared_ptr<T>> get(const CacheKey& key, Make&& make) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_) {
      if (e.key == key) return std::static_pointer_cast<T>(e.value);
    }
    StatusOr<std::shared_ptr<T>> made = make();
    if (!made.is_ok()) return made.status();
    if (capacity_ && entries_.size() >= capacity_) entries_.erase(entries_.begin());
    entries_.push_back({key, *made, next_++});
    return made;
  }
  // A mark of what the cache holds now: erase_between(mark, a later mark) drops every entry made between them (what a
  // kernel that lost a tactic timing prepared: packed weights, primitives).
  uint64_t mark() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_;
  }
  // Every entry, oldest first (engine plans export the prepared weights among them).
  std::vector<std::pair<CacheKey, std::shared_ptr<void>>> snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<CacheKey, std::shared_ptr<void>>> out;
    for (const auto& e : entries_) out.emplace_back(e.key, e.value);
    return out;
  }
  // Adds an entry made elsewhere (prepared weights a plan carries); get() then returns it without make().
  void put(CacheKey key, std::shared_ptr<void> value) {
    std::lock_guard<std::mutex> lock(mu_);
    if (capacity_ && entries_.size() >= capacity_) entries_.erase(entries_.begin());
    entries_.push_back({std::move(key), std::move(value), next_++});
  }
  void erase_between(uint64_t begin, uint64_t end) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = entries_.size(); i-- > 0;) {
      if (entries_[i].made >= begin && entries_[i].made < end) entries_.erase(entries_.begin() + static_cast<long>(i));
    }
  }

 private:
  struct Entry {
    CacheKey key;
    std::shared_ptr<void> value;
    uint64_t made;  // the order entries were made in
  };
  size_t capacity_;
  std::mutex mu_;
  std::vector<Entry> entries_;
  uint64_t next_ = 0;
};

using KernelFn = Status (*)(KernelContext&);

// Runs a subgraph (If/Loop/Scan bodies) with the given inputs; names of enclosing graphs resolve through
// the caller's values.
using SubgraphRunner =
    std::function<StatusOr<std::vector<Value>>(const ir::Graph& graph, const std::vector<Value>& inputs)>;

class KernelContext {
 public:
  KernelContext(const ir::Node& node, int64_t opset, std::vector<const Value*> inputs, size_t num_outputs,
                const SubgraphRunner* subgraphs = nullptr)
      : node_(node),
        opset_(opset),
        inputs_(std::move(inputs)),
        outputs_(num_outputs),
        value_outputs_(num_outputs),
        subgraphs_(subgraphs) {}

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return opset_; }

  size_t num_inputs() const { return inputs_.size(); }
  // The tensor input i; nullptr when the input is omitted ("" in the node), beyond the node's inputs, or not
  // a tensor (a sequence or an empty optional).
  const Tensor* input(size_t i) const {
    const Value* v = value(i);
    return v && v->is_tensor() ? &v->tensor() : nullptr;
  }
  // The tensor input, or an error naming it when it is missing or is not a tensor.
  StatusOr<const Tensor*> required_input(size_t i) const;
  // Input i as a value of any kind; nullptr when omitted.
  const Value* value(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }

  size_t num_outputs() const { return outputs_.size(); }
  // Allocates output i (zero-filled).
  StatusOr<Tensor*> allocate_output(size_t i, DType dtype, std::vector<int64_t> dims);
  // Allocates output i without filling it, for kernels that write every element.
  StatusOr<Tensor*> allocate_output_uninitialized(size_t i, DType dtype, std::vector<int64_t> dims);
  // Like allocate_output_uninitialized, for a kernel that can compute output i in place of input `input` (it
  // reads each element of that input before it writes the same element of the output): when the input dies at
  // this node and no other input shares its bytes, the run's memory plan may give the output the input's bytes.
  StatusOr<Tensor*> allocate_output_reusing(size_t i, size_t input, DType dtype, std::vector<int64_t> dims);
  // Where outputs are allocated: the run's planned memory as node `node` of the top-level graph (nullptr: the
  // heap).
  void set_run_memory(OutputArena* memory, size_t node) {
    memory_ = memory;
    node_index_ = node;
  }
  // The largest tensor an output may be, in bytes (default: the machine's physical memory), and how errors
  // describe that limit ("the run's memory limit of 512 MiB (memory_limit_mb)"; default: the machine's memory).
  // What a whole run may hold is checked when tensors are allocated (AllocationGuard, set by the session).
  void set_tensor_limit(size_t bytes, std::string what) {
    tensor_limit_ = bytes;
    tensor_limit_what_ = std::move(what);
  }
  // An error naming the node (ResourceExhausted) when output `i` of `dtype` and `dims` would be larger than the
  // tensor limit (or its size overflows). allocate_output* check it; a kernel that builds anything sized by its
  // output first (an index table) calls it as soon as it knows the output's shape.
  Status check_output_size(size_t i, DType dtype, const std::vector<int64_t>& dims) const;
  // Sets output i to an existing tensor (a view of an input, a constant).
  void set_output(size_t i, Tensor t) {
    if (i < outputs_.size()) outputs_[i] = std::move(t);
  }
  std::vector<Tensor>& outputs() { return outputs_; }
  // Sets output i to a value of any kind (sequence, optional); overrides a tensor set for the same output.
  void set_value_output(size_t i, Value v) {
    if (i < value_outputs_.size()) value_outputs_[i] = std::move(v);
  }
  // Output i as the executor stores it; undefined when the kernel set nothing.
  Value take_output(size_t i);

  const ir::Attribute* attr(const std::string& name) const { return node_.attr(name); }
  int64_t attr_int(const std::string& name, int64_t def) const;
  float attr_float(const std::string& name, float def) const;
  std::string attr_string(const std::string& name, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::string& name, std::vector<float> def = {}) const;

  const SubgraphRunner* subgraphs() const { return subgraphs_; }

  // The session's intra-op pool (nullptr: run serially).
  void set_thread_pool(const ParallelRunner* pool) { pool_ = pool; }
  const ParallelRunner* thread_pool() const { return pool_; }
  // Threads an operator may use (the pool's size; 1 without a pool).
  int num_threads() const;
  // The best instruction set the fast kernels may use: what the CPU has, capped by KILN_MAX_ISA or
  // SessionOptions::max_isa. Every SIMD path checks this, never the CPU directly.
  void set_isa(Isa isa) { isa_ = isa; }
  Isa isa() const { return isa_; }
  // The arithmetic the session allows (SessionOptions::precision): kernels with a bfloat16 form support a node
  // only when it is kBf16 (and the CPU has_bf16()).
  void set_precision(Precision p) { precision_ = p; }
  Precision precision() const { return precision_; }
  // A finer name for what the kernel ran, for display (`kiln optimize --print-kernels`, profiles):
  // "winograd_f4x4.avx2", oneDNN's implementation name. Empty unless the kernel sets it.
  void set_kernel_detail(std::string detail) { kernel_detail_ = std::move(detail); }
  // The running kernel's KernelDef::data (what a kernel registered at run time, a custom op, works from).
  void set_kernel_data(const void* data) { kernel_data_ = data; }
  const void* kernel_data() const { return kernel_data_; }
  const std::string& kernel_detail() const { return kernel_detail_; }
  // This node's cache (nullptr when the caller keeps none, e.g. constant folding).
  void set_cache(KernelCache* cache) { cache_ = cache; }
  KernelCache* cache() const { return cache_; }
  // The session's cache for what depends only on constants (weights packed once however many nodes share
  // them); keys must name the constant (its address). nullptr outside a session.
  void set_shared_cache(KernelCache* cache) { shared_cache_ = cache; }
  KernelCache* shared_cache() const { return shared_cache_; }
  // Input i is a constant of the model: an initializer no feed can replace (bit i of `mask`).
  void set_constant_inputs(uint64_t mask) { constant_inputs_ = mask; }
  uint64_t constant_inputs() const { return constant_inputs_; }
  bool input_is_constant(size_t i) const { return i < 64 && (constant_inputs_ >> i) & 1u; }
  // Calls fn(begin, end) over disjoint ranges covering [0, n), in parallel on the session's pool, with at
  // least `grain` items per call.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) const;
  // The same split as oneDNN's: one contiguous range per thread, in thread order (ParallelRunner::parallel_for_static).
  void parallel_for_static(int64_t n, const std::function<void(int64_t, int64_t)>& fn) const;

  // Preparing mode (a session from an engine plan, at load, for kernels whose KernelDef::prepares): the inputs that
  // are not constants of the model are tensors of the recorded dtype and shape without data. The kernel makes what
  // its first run would make and keep (oneDNN primitives, in cache()) and returns without reading those inputs or
  // computing; allocate_output* give tensors of the asked shape without data.
  void set_preparing(bool preparing) { preparing_ = preparing; }
  bool preparing() const { return preparing_; }

  // An error naming the node, op and opset: "node 'Conv_2' (Conv, opset 11): <msg>".
  Status error(const std::string& msg) const;
  Status unsupported_dtype(DType t, const std::string& which = "input 0") const;

 private:
  const ir::Node& node_;
  int64_t opset_;
  std::vector<const Value*> inputs_;
  std::vector<Tensor> outputs_;
  std::vector<Value> value_outputs_;
  const SubgraphRunner* subgraphs_;
  const ParallelRunner* pool_ = nullptr;
  Isa isa_ = cpu_features().best;
  Precision precision_ = Precision::kFp32;
  KernelCache* cache_ = nullptr;
  KernelCache* shared_cache_ = nullptr;
  uint64_t constant_inputs_ = 0;
  std::string kernel_detail_;
  const void* kernel_data_ = nullptr;
  OutputArena* memory_ = nullptr;
  size_t node_index_ = 0;
  bool preparing_ = false;
  size_t tensor_limit_ = 0;  // 0: the machine's physical memory
  std::string tensor_limit_what_;
};

// Whether a kernel with a bfloat16 form may use it on this node: the session allows bf16 (KernelContext::precision),
// AVX-512 is allowed and the CPU multiplies bfloat16 in hardware.
inline bool bf16_allowed(const KernelContext& ctx) {
  return effective_precision(ctx.precision(), ctx.isa()) == Precision::kBf16;
}

// The dtypes a kernel accepts for input 0, as bits (1 << DType); kAnyDType: checked only when it runs.
using DTypeMask = uint32_t;
constexpr DTypeMask dtype_bit(DType t) { return 1u << static_cast<int>(t); }
inline constexpr DTypeMask kAnyDType = 0;
inline constexpr DTypeMask kFloatTypes =
    dtype_bit(DType::kFloat16) | dtype_bit(DType::kBFloat16) | dtype_bit(DType::kFloat32) | dtype_bit(DType::kFloat64);
inline constexpr DTypeMask kNumericTypes = kFloatTypes | dtype_bit(DType::kInt8) | dtype_bit(DType::kInt16) |
                                           dtype_bit(DType::kInt32) | dtype_bit(DType::kInt64) |
                                           dtype_bit(DType::kUInt8) | dtype_bit(DType::kUInt16) |
                                           dtype_bit(DType::kUInt32) | dtype_bit(DType::kUInt64);
inline constexpr DTypeMask kBoolType = dtype_bit(DType::kBool);
// "float16, float, double" for a mask.
std::string dtype_mask_names(DTypeMask mask);

// Which kind of kernel: the plain reference kernel every op has, or a fast kernel (src/kernels/fast) that takes
// the cases its supports() accepts.
enum class Backend { kRef, kFast };

// A question a fast kernel answers about one node with its inputs at hand (dtypes, shapes, constness,
// attributes, ctx.isa()).
using KernelPredicate = bool (*)(const KernelContext&);

struct KernelDef {
  const char* domain;  // "" for ai.onnx
  const char* op;
  int since;  // first opset this kernel serves
  int until;  // last opset it serves
  KernelFn fn;
  DTypeMask dtypes;  // input 0's dtypes, or kAnyDType
  Backend backend = Backend::kRef;
  const char* name = "ref";  // "ref", or the fast kernel's name ("matmul.sgemm")
  // Fast kernels: whether this kernel can compute the node with these inputs (nullptr for the reference kernel,
  // which takes everything and reports what it cannot do as an error).
  KernelPredicate supports = nullptr;
  // Fast kernels: whether this kernel is the preferred guess among those that support the case (thresholds
  // measured on today's CPUs); nullptr: always, when supported.
  KernelPredicate prefer = nullptr;
  // What fn works from, for kernels registered at run time (a session's custom ops): KernelContext::kernel_data().
  const void* data = nullptr;
  // Fast kernels: whether fn honours KernelContext::preparing() (makes its one-time state, such as oneDNN
  // primitives, from the inputs' shapes and returns without computing), so that a session loaded from an engine plan
  // can make that state at load instead of on its first run.
  bool prepares = false;
};

// The reference kernel for (domain, op) at `opset`, or nullptr.
const KernelDef* find_kernel(const std::string& domain, const std::string& op, int64_t opset);
// The kernels that may run a (domain, op) node at `opset`: its fast kernels in order of preference, then its
// reference kernel last. Empty when kiln has no kernel for it.
std::vector<const KernelDef*> find_candidates(const std::string& domain, const std::string& op, int64_t opset);
// The kernel that runs a node whose inputs are in `ctx`: the first fast candidate that supports and prefers the
// case, else the first that supports it, else the reference kernel (always the reference kernel when
// `reference_only`). `candidates` is what
// find_candidates returned (non-empty).
const KernelDef* select_kernel(const std::vector<const KernelDef*>& candidates, const KernelContext& ctx,
                               bool reference_only);
// Every registered kernel, reference and fast (for coverage tables and `kiln check`).
const std::vector<KernelDef>& all_kernels();

// ---- helpers shared by kernel families ----

// numpy-style broadcast of shapes; error text names both shapes.
StatusOr<std::vector<int64_t>> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);
// Element strides of `in` when read as a tensor of shape `out` (0 along broadcast dims). in.size() <= out.size().
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out);
// Whether the node uses output i (it exists and is named).
inline bool wants_output(const KernelContext& ctx, size_t i) {
  return i < ctx.num_outputs() && i < ctx.node().outputs.size() && !ctx.node().outputs[i].empty();
}
// Advances a multi-index over dims (the last dim fastest); returns false after the last one.
bool next_index(std::vector<int64_t>& idx, const std::vector<int64_t>& dims);
// Row-major strides of dims.
std::vector<int64_t> strides_of(const std::vector<int64_t>& dims);
// Normalizes a possibly negative axis for a tensor of `rank`; error names the axis.
StatusOr<int64_t> normalize_axis(const KernelContext& ctx, int64_t axis, int64_t rank);
// Product of dims[begin, end), the range clipped to the rank; 1 for an empty range.
int64_t product(const std::vector<int64_t>& dims, size_t begin = 0, size_t end = SIZE_MAX);
// Copies n elements from src[src_off..] to dst[dst_off..]; both tensors have the same byte-sized or string dtype.
void copy_elements(Tensor& dst, int64_t dst_off, const Tensor& src, int64_t src_off, int64_t n);
// Fills contiguous `out` (fixed-size dtype, `dims` elements) from the strided view of `src`: element i of out
// at multi-index (i0, .., ik) is src[offset + i0 * strides[0] + ... + ik * strides[k]]. Unit-stride rows are
// copied with memcpy; rows are spread over the session's threads (Transpose, Slice fast paths).
void strided_copy(const KernelContext& ctx, const Tensor& src, int64_t offset, std::vector<int64_t> dims,
                  std::vector<int64_t> strides, Tensor& out);
// NCHWc, the channel-blocked layout of ai.kiln's Nchwc* operators: a float32 [N, C, H, W] tensor stored as
// [N, ceil(C / block), H, W, block], the padding lanes zero.
std::vector<int64_t> nchwc_dims(const std::vector<int64_t>& nchw, int64_t block);
// Both spread the planes over the context's threads.
void nchwc_block(const KernelContext& ctx, const float* src, float* dst, int64_t N, int64_t C, int64_t HW,
                 int64_t block);
void nchwc_unblock(const KernelContext& ctx, const float* src, float* dst, int64_t N, int64_t C, int64_t HW,
                   int64_t block);
// Reads an int64/int32 tensor as int64 values.
std::vector<int64_t> to_int64s(const Tensor& t);
// Reads any numeric tensor as double values.
std::vector<double> to_doubles(const Tensor& t);

// Calls f(T{}) with the C++ type for dtype (numeric types and bool; float16/bfloat16 are not included:
// kernels that compute in float convert them with as_float / from_float). Returns false if unsupported.
template <typename F>
bool dispatch_numeric(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: f(float{}); return true;
    case DType::kFloat64: f(double{}); return true;
    case DType::kInt8: f(int8_t{}); return true;
    case DType::kInt16: f(int16_t{}); return true;
    case DType::kInt32: f(int32_t{}); return true;
    case DType::kInt64: f(int64_t{}); return true;
    case DType::kUInt8: f(uint8_t{}); return true;
    case DType::kUInt16: f(uint16_t{}); return true;
    case DType::kUInt32: f(uint32_t{}); return true;
    case DType::kUInt64: f(uint64_t{}); return true;
    case DType::kBool: f(bool{}); return true;
    default: return false;
  }
}

// float16/bfloat16 <-> float32 tensors (other dtypes are returned unchanged).
StatusOr<Tensor> as_float(const Tensor& t);
StatusOr<Tensor> from_float(const Tensor& t, DType target);
bool is_half(DType t);  // float16 or bfloat16
// float16, bfloat16, float or double.
inline bool is_float_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16;
}

}  // namespace kiln::cpu
