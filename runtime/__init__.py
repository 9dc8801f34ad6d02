"""The deployable LMCodec runtime: exported ONNX graphs driven with numpy and onnxruntime, never torch or transformers."""
