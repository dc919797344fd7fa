"""Floor 4: what a score file is worth: image and pixel AUROC (metrics), native-resolution pixel metrics
(pixels), what each memory bank keeps (diagnostics) and the statistics over seeds (stats)."""
