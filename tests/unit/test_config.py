from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "quickstart.yaml"])
def test_shipped_configs_validate(name):
    jsonschema.validate(yaml.safe_load((ROOT / "config" / name).read_text()), SCHEMA)


@pytest.mark.parametrize(
    "mutate,fragment",
    [
        (lambda c: c["datasets"]["synthetic"].update(noise_ratio=1.5), "1.5"),
        (lambda c: c["splits"].update(tails=["zipf"]), "zipf"),
        (lambda c: c["features"].update(backbone="resnet9000"), "resnet9000"),
        (lambda c: c["methods"]["patchcore"].update(coreset_ratoi=0.1), "coreset_ratoi"),
        (lambda c: c.update(extra=1), "extra"),
    ],
)
def test_invalid_values_are_rejected(mutate, fragment):
    config = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())
    mutate(config)
    with pytest.raises(jsonschema.ValidationError, match=fragment):
        jsonschema.validate(config, SCHEMA)


@pytest.mark.parametrize(
    "block,fragment",
    [
        ({"kind": "folder", "noise_ratio": 0.1}, "path"),
        ({"kind": "mvtec", "noise_ratio": 0.1}, "is not valid under any of the given schemas"),
    ],
)
def test_a_dataset_must_say_where_its_images_come_from(block, fragment):
    config = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())
    config["datasets"]["mine"] = block
    with pytest.raises(jsonschema.ValidationError, match=fragment):
        jsonschema.validate(config, SCHEMA)
