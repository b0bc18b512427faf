"""Exporting a trained model to one ONNX file, and scoring with that file alone.

- :mod:`anomalyflow.export.graphs`: the torch modules that are exported (uint8 image → final score and map);
- :mod:`anomalyflow.export.writer`: ``anomalyflow export`` (the ONNX file and its metadata);
- :mod:`anomalyflow.export.runtime`: ``anomalyflow predict --model model.onnx`` through onnxruntime, without torch.

Nothing is imported here, so that the runtime's import of this package pulls in no torch.
"""
