"""ONNX conversion with a parity check: the script run in the conversion environment, and its report."""
