"""Patch features and memory banks: the PatchCore machinery that several methods share.

- :mod:`.features` — locally aware patch features of a frozen backbone (PatchCore §3.1; PNI C2);
- :mod:`.coreset` — greedy k-center coreset selection (PatchCore §3.2; PNI C3);
- :mod:`.memory` — a bank of patch features as an exact faiss index, and its nearest-neighbour search;
- :mod:`.nearest` — exact distances between patch features and a small bank, as chunked matmuls.

PatchCore (:mod:`anomalyflow.patchcore`), PNI (:mod:`anomalyflow.pni`) and EfficientAD's distillation
target (:mod:`anomalyflow.efficientad.target`) use them; this package imports none of those, so editing
one method never reruns another's jobs (docs/methods.md C2, C3).
"""
