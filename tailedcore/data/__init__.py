"""Floor 1, datasets: downloads, index builders, image and mask loading, coverage, the embedded synthetic
generator and ELPV, the noisy long-tail split generator (longtail) and the paper's official lists (official).

This module stays free of heavy imports: the workflow reads it while parsing.
"""

SYNTHETIC_TEXTURES = ("fabric", "marble", "wood", "mesh", "perforated")
SYNTHETIC_OBJECTS = ("washer", "pill", "screw", "chip")

# Category lists in alphabetical order for the public datasets (the order every stage uses).
KNOWN_CATEGORIES = {
    "mvtec": (
        "bottle",
        "cable",
        "capsule",
        "carpet",
        "grid",
        "hazelnut",
        "leather",
        "metal_nut",
        "pill",
        "screw",
        "tile",
        "toothbrush",
        "transistor",
        "wood",
        "zipper",
    ),
    "visa": (
        "candle",
        "capsules",
        "cashew",
        "chewinggum",
        "fryum",
        "macaroni1",
        "macaroni2",
        "pcb1",
        "pcb2",
        "pcb3",
        "pcb4",
        "pipe_fryum",
    ),
    "synthetic": SYNTHETIC_TEXTURES + SYNTHETIC_OBJECTS,
    "elpv": ("mono", "poly"),
}


def dataset_categories(block: dict) -> list[str]:
    """The categories of a config dataset block: its explicit list, else the known list of its kind."""
    if block.get("categories"):
        return list(block["categories"])
    if block["kind"] in KNOWN_CATEGORIES:
        return list(KNOWN_CATEGORIES[block["kind"]])
    raise ValueError(f"dataset kind {block['kind']!r} needs an explicit `categories` list in the config")


def folder_fingerprint(path: str, category: str) -> str:
    """A digest of every file under ``<path>/<category>`` (relative name, size, modification time): a
    folder dataset's per-category index is rebuilt when, and only when, this changes."""
    import hashlib
    import os

    digest = hashlib.sha1()
    top = os.path.join(os.path.expanduser(path), category)
    if not os.path.isdir(top):
        return "missing"
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            stat = os.stat(os.path.join(folder, name))
            digest.update(
                f"{os.path.relpath(os.path.join(folder, name), top)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def count_images(folder) -> int:
    """Image files (any of the index's suffixes, any case) directly in ``folder``."""
    import os

    from .index import IMAGE_SUFFIXES

    return sum(os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES for name in os.listdir(folder))


def train_sizes(block: dict) -> dict[str, int] | None:
    """Training images per category where they are known before any job runs: a synthetic dataset's
    ``n_train``, or the image files in ``<path>/<category>/train/good`` of a folder in the MVTec layout.
    None where they are not (ELPV, VisA, a download, a category folder that does not exist yet)."""
    import os

    categories = dataset_categories(block)
    if block["kind"] == "synthetic":  # the validated config holds n_train (the schema's default when unset)
        count = block.get("synthetic", {}).get("n_train")
        return {category: count for category in categories} if count else None
    if block["kind"] not in ("folder", "mvtec") or "path" not in block:
        return None
    sizes = {}
    for category in categories:
        folder = os.path.join(os.path.expanduser(block["path"]), category, "train", "good")
        if not os.path.isdir(folder):
            return None
        sizes[category] = count_images(folder)
    return sizes


def folder_has_masks(block: dict) -> bool:
    """Whether a dataset has defect masks (pixel labels), decided from the config and, for ``kind: folder``
    with ``masks: auto``, from whether its categories have ``ground_truth/`` folders."""
    import os

    if block["kind"] == "elpv":
        return False
    if block["kind"] != "folder":
        return True
    masks = block.get("masks", "auto")
    if masks != "auto":
        return bool(masks)
    root = os.path.expanduser(block["path"])
    return any(os.path.isdir(os.path.join(root, c, "ground_truth")) for c in dataset_categories(block))
