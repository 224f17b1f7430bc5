"""ddsp_models: Differentiable Digital Signal Processing on TensorFlow 2.21 / Keras 3."""
