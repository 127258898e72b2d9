// Names of the fused DiT kernels. lib/ops registers their gradients; a backend that
// implements them (the 'native' one, lib/backend/native_ops.ts) registers the kernels.
export const GELU_TANH = 'DitGeluTanh';
export const GELU_TANH_GRAD = 'DitGeluTanhGrad';
export const LAYER_NORM = 'DitLayerNorm';
export const LAYER_NORM_GRAD = 'DitLayerNormGrad';
export const LAYER_NORM_MODULATE = 'DitLayerNormModulate';
export const LAYER_NORM_MODULATE_GRAD = 'DitLayerNormModulateGrad';
export const GATED_RESIDUAL = 'DitGatedResidual';
export const GATED_RESIDUAL_GRAD = 'DitGatedResidualGrad';
export const ATTENTION = 'DitAttention';
export const ATTENTION_GRAD = 'DitAttentionGrad';
export const QKV_ATTENTION = 'DitQkvAttention';
export const QKV_ATTENTION_GRAD = 'DitQkvAttentionGrad';
export const LINEAR = 'DitLinear';
export const LINEAR_GRAD = 'DitLinearGrad';
export const MLP = 'DitMlp';
export const MLP_GRAD = 'DitMlpGrad';
export const ADAMW = 'DitAdamW';
export const EMA = 'DitEma';
