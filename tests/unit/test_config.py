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


def test_the_features_block_parses_into_one_typed_settings_object():
    """What a job rebuilds from its rule's params and the config's runtime knobs: the geometry, dimensions and
    precision from the params, batch size and device from the config; the report's spelling parses back."""
    from tailedcore.data.images import Geometry
    from tailedcore.features.settings import FeatureSettings
    from tailedcore.stages.settings import evaluation_settings, feature_settings, geometry_settings

    params = {"backbone": "efficientnet_lite0", "geometry": "pad", "size": [192, 160], "target_dim": 256}
    settings = feature_settings(params, {"features": {"batch_size": 8, "device": "cpu", "threads": 2}})
    assert settings.geometry == Geometry(mode="pad", size=(192, 160)) == geometry_settings(params)
    assert (settings.target_dim, settings.batch_size, settings.dtype) == (256, 8, "float16")
    assert FeatureSettings.parse(settings.as_dict()) == settings
    spec = evaluation_settings(params, {"sigma": 2.0, "resolution": "native"})
    assert (spec.geometry, spec.sigma, spec.resolution, spec.pixel) == (settings.geometry, 2.0, "native", True)
    assert settings.as_dict()["size"] == [192, 160]  # the config's spelling, as a run's report records it
    with pytest.raises(ValueError, match="target_dimm"):
        FeatureSettings.parse({**params, "target_dimm": 128})
    with pytest.raises(ValueError, match="features.size"):
        FeatureSettings.parse({"geometry": "resize"})
