"""PNI's own parts: banks, position, neighbourhood, gates, geometry, the model, its stages and refinement.

The patch features, coresets and memory banks PNI builds on are PatchCore's, shared with other methods:
:mod:`anomalyflow.patches`.
"""
