// The math a run does on its device beyond the model's own dtype: TF32 tensor-core matmuls and convolutions and
// cuDNN's autotuner on GPUs (distributed.tf32, distributed.cudnn_benchmark). What GPU users of PyTorch switch on
// for training (timm and torchtitan do): TF32 keeps fp32's range with a 10-bit mantissa, about 8x the FP32 rate
// of an A100/H100's tensor cores; the autotuner pays a search on the first step of each shape, and a training
// run's shapes are fixed. On a CPU both are nothing (TF32 is a GPU format): fp32 stays fp32.
#pragma once

#include <string>

#include "core/config.pb.h"

namespace facetrain {

// distributed.memory_format: whether a model's 4-D weights and its input images are channels_last (NHWC). Only a
// convolutional model's (models/model_spec.h); "auto" takes it on a GPU (`on_gpu`), where cuDNN's convolutions
// run NHWC natively, and not on a CPU. `why` (may be null) gets the log's words.
bool uses_channels_last(const proto::DistributedConfig& c, bool convolutional, bool on_gpu, std::string* why);

// Sets LibTorch's global math settings for a run whose model is on a GPU (`on_gpu`) from `c`; changes nothing
// for a CPU run. Returns what holds now, for the run log ("TF32 matmuls and convolutions, cuDNN autotuner on").
std::string apply_device_math(const proto::DistributedConfig& c, bool on_gpu);

}  // namespace facetrain
