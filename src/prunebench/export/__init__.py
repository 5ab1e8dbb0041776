"""Taking a pruned model home: safetensors + structure.json, ONNX, lean inference."""
