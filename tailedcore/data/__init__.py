"""Datasets: index builders, image and mask loading, the embedded synthetic generator.

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
}


def dataset_categories(block: dict) -> list[str]:
    """The categories of a config dataset block: its explicit list, else the known list of its kind."""
    if block.get("categories"):
        return list(block["categories"])
    if block["kind"] in KNOWN_CATEGORIES:
        return list(KNOWN_CATEGORIES[block["kind"]])
    raise ValueError(f"dataset kind {block['kind']!r} needs an explicit `categories` list in the config")
