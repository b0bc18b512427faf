"""PNI and the PatchCore baseline it extends: patch features, coresets, memory index, scoring."""
