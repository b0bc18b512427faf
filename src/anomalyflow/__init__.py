"""anomalyflow: industrial visual anomaly detection (EfficientAD, PUAD, PNI, PatchCore) as a library.

The Snakemake workflow in the repository wires files to the functions of this package; nothing here
imports Snakemake.
"""

__version__ = "0.1.0"
