// The optimizer's passes, one per file in src/optimizer. Each rewrites model.graph in place and returns how
// many rewrites it made.
#pragma once

#include "kiln/ir/graph.h"
#include "kiln/optimizer/optimizer.h"

namespace kiln::opt {

int eliminate_identity(ir::Model& m);        // Identity, inference Dropout
int eliminate_dead_nodes(ir::Model& m);      // nodes and initializers nothing reads
int fold_constants(ir::Model& m);            // Constant nodes, nodes of constants, Shape/Size of static shapes
int fuse_qdq(ir::Model& m);                  // DequantizeLinear -> Conv/MatMul -> QuantizeLinear -> QLinearConv/MatMul
int fold_quantized_constants(ir::Model& m);  // QuantizeLinear/DequantizeLinear of constants, and what they feed
int fold_conv_bn(ir::Model& m);              // Conv + BatchNormalization -> Conv
int fold_transpose_reshape(ir::Model& m);    // Transpose∘Transpose, Reshape∘Reshape
int fuse_matmul_add(ir::Model& m);           // MatMul + Add -> Gemm (2-D) or ai.kiln FusedMatMul
int fuse_gelu(ir::Model& m);                 // the Erf form of GELU -> ai.kiln Gelu
int fuse_layernorm(ir::Model& m);            // ReduceMean/Sub/Pow/.../Add -> ai.kiln LayerNormalization
int fuse_attention(ir::Model& m);            // Transposes/MatMul/scale/Softmax/MatMul -> ai.kiln Attention
int fuse_conv_add(ir::Model& m);             // Conv + Add -> ai.kiln FusedConv with a residual input
int fuse_activation(ir::Model& m);           // Conv/FusedConv/FusedMatMul + activation -> fused activation
int layout_nhwc_bf16(ir::Model& m, const Options& o);  // bf16: convolutions on bfloat16 channels-last tensors
int layout_nchwc(ir::Model& m);                        // convolutions and pooling on channel-blocked tensors
int layout_nhwc_int8(ir::Model& m);                    // int8 convolutions and residual sums on channels-last tensors

}  // namespace kiln::opt
