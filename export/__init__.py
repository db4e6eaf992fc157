"""Export of trained generators and text encoders (ONNX) and the runtime that serves them."""
