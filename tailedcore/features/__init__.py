"""Floor 2: backbones, the feature cache and its reads on demand, tail views (augment), and the exact
nearest-neighbour search over a memory bank (knn: flat; knn_bound: the bound search)."""
