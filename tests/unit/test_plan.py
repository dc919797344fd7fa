"""The workflow's plan (tailedcore/plan/workflow.py): the path templates, lookups and config checks the rules use,
tested without Snakemake parsing the workflow."""

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.utils import validate

from tailedcore.plan.workflow import WILDCARD_CONSTRAINTS, Plan, is_given_folder
from tailedcore.runtime.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def config_of(name: str = "quickstart.yaml", **changes) -> dict:
    """A shipped config with the schema's defaults filled in, as the Snakefile sees it."""
    config = yaml.safe_load((ROOT / "config" / name).read_text())
    for key, value in changes.items():
        config[key] = value
    validate(config, schema=SCHEMA)
    return config


def test_run_files_cover_tails_seeds_model_seeds_and_methods():
    config = config_of()
    plan = Plan(config, ROOT)
    files = plan.run_files("scores", "synthetic")
    expected = len(plan.tails) * len(plan.seeds) * len(plan.model_seeds) * len(plan.methods)
    assert len(files) == len(set(files)) == expected
    tail, seed, model_seed, method = plan.tails[0], plan.seeds[0], plan.model_seeds[0], plan.methods[0]
    assert f"results/synthetic/scores/{tail}/seed{seed}/model{model_seed}/{method}.npz" in files
    assert plan.run_path("fit_log", method="padim") == (
        "results/logs/fit_score/{dataset}/{tail}/seed{seed}/model{model_seed}/padim.log"
    )
    assert plan.run_path("metrics") == "results/{dataset}/metrics/{tail}/seed{seed}/model{model_seed}/{method}.csv"


def test_feature_files_and_params_keep_runtime_knobs_out():
    config = config_of()
    plan = Plan(config, ROOT)
    files = plan.feature_files(SimpleNamespace(dataset="synthetic"))
    assert len(files) == 3 * len(plan.categories("synthetic"))
    assert all(f.endswith((".patches.npy", ".global.npy", ".ids.json")) for f in files)
    params = plan.feature_params()
    assert not {"threads", "device", "batch_size"} & set(params) and "backbone" in params


def test_sweep_points_read_their_base_dataset():
    config = config_of(sweep={"datasets": ["synthetic"], "noise_ratios": [0.0, 0.2]})
    plan = Plan(config, ROOT)
    assert sorted(plan.sweep_points) == ["synthetic_nr0000", "synthetic_nr0200"]
    assert plan.data_of("synthetic_nr0200") == "synthetic"
    assert plan.categories("synthetic_nr0200") == plan.categories("synthetic")
    assert plan.dataset_block("synthetic_nr0200")["noise_ratio"] == 0.2
    assert plan.feature_folder("synthetic_nr0200") == plan.feature_folder("synthetic")
    assert not plan.uses_official_splits("synthetic_nr0200")
    assert "results/figures/synthetic/noise_sweep.png" in plan.all_tables()


def test_official_splits_only_for_mvtec_and_visa():
    plan = Plan(config_of("config.yaml"), ROOT)
    assert plan.uses_official_splits("mvtecad")
    inputs = plan.split_inputs(SimpleNamespace(dataset="mvtecad", tail="pareto", seed=1))
    assert inputs["prune"].endswith("official_splits/mvtecad/pareto/seed1/prune_good.txt")
    synthetic = Plan(config_of(), ROOT)
    assert not synthetic.uses_official_splits("synthetic")


def test_all_tables_has_pixel_tables_only_with_masks():
    config = config_of("elpv.yaml")
    plan = Plan(config, ROOT)
    targets = plan.all_tables()
    (name,) = plan.datasets
    assert f"results/tables/{name}_image_auroc.csv" in targets
    assert not any("pixel_auroc" in t for t in targets)
    assert any("pixel_auroc" in t for t in Plan(config_of(), ROOT).all_tables())


def test_every_config_problem_is_listed_at_once_with_the_closest_names():
    config = config_of()
    config = copy.deepcopy(config)
    config["methods"]["run"] = ["patchcor", "tailedcore", "nonsense_method"]
    config["methods"]["softpach"] = {"k": 3}
    config["datasets"]["synthetic"]["categories"] = ["fabric"]
    config["sweep"] = {"datasets": ["nope"], "noise_ratios": [0.1]}
    with pytest.raises(ConfigError) as caught:
        Plan(config, ROOT)
    text = str(caught.value)
    assert "5 problem(s)" in text
    assert "'patchcor' (did you mean 'patchcore'?)" in text and "'nonsense_method'" in text
    assert "methods.softpach" in text and "did you mean 'softpatch'" in text
    assert "has one category" in text and "sweep.datasets names 'nope'" in text


def test_datasets_where_matches_exactly_the_named_datasets():
    config = config_of()
    config["datasets"]["mine"] = {"kind": "folder", "path": "/data/mine", "categories": ["a", "b"]}
    plan = Plan(config, ROOT)
    given = plan.datasets_where(is_given_folder)
    assert given == "mine"
    assert plan.datasets_where(lambda block: False) == "(?!)"
    assert set(WILDCARD_CONSTRAINTS) >= {"dataset", "tail", "seed", "model_seed", "method", "category"}


def _folder(root: Path, sizes: dict[str, int]) -> Path:
    for category, count in sizes.items():
        folder = root / category / "train" / "good"
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"{i}.png").write_bytes(b"")  # the parse-time check counts names only
    return root


@pytest.mark.parametrize(
    "tails, rules, expected",
    [
        (["step_k4"], {}, "class b has 3 training images, so K = 4 keeps all of them"),
        (["pareto"], {"tail_threshold": 30, "pareto_min_size": 2}, "set splits.rules.tail_threshold to"),
    ],
)
def test_the_dry_run_rejects_splits_the_split_jobs_would_reject(tmp_path, tails, rules, expected):
    """For a folder of your own the class sizes are known while parsing: a split that cannot have a long tail
    fails the dry run with advice for that tail type, not one job later."""
    config = config_of()
    config["datasets"] = {
        "mine": {"kind": "folder", "path": str(_folder(tmp_path, {"a": 40, "b": 3, "c": 25})), "noise_ratio": 0.1}
    }
    config["datasets"]["mine"]["categories"] = ["a", "b", "c"]
    config["splits"].update(tails=tails, seeds=[1, 2, 3], source="generated")
    config["splits"]["rules"].update(rules)
    with pytest.raises(ConfigError) as caught:
        Plan(config, ROOT)
    text = str(caught.value)
    assert expected in text and "dataset 'mine'" in text, text
    if tails == ["pareto"]:
        assert "smaller K" not in text  # no step advice for a Pareto split
    config["splits"]["rules"].update(tail_threshold=3) if tails == ["pareto"] else config["splits"].update(
        tails=["step_k2"]
    )
    Plan(config, ROOT)  # the advised fix passes


def test_the_time_estimate_follows_its_cost_model_and_names_the_biggest_levers():
    import pandas as pd

    from tailedcore.features.settings import FeatureSettings
    from tailedcore.plan import estimate
    from tailedcore.plan.estimate import estimate_text, fit_parts, fit_seconds, plan_seconds

    rates = {"greedy_a": 1e-7, "knn_flops": 1e10, "lof_c": 1e-8, "images_per_second": 10.0}
    one = dict(n_train=100, n_tail=10, n_test=50, grid=28 * 28, dim=256, r=rates)
    patches = 100 * 28 * 28  # 78,400: a 10 % bank of 7,840 rows, below the bound search's size
    greedy = estimate.REAL_GREEDY_FACTOR * 1e-7 * patches**estimate.GREEDY_EXPONENT
    knn = 2.0 * 50 * 28 * 28 * 0.1 * patches * 256 / 1e10
    assert fit_seconds("patchcore", {}, **one) == pytest.approx(greedy + knn)
    assert fit_parts("patchcore", {}, **one) == pytest.approx(dict(coreset=greedy, scoring=knn, filter=0, tail_views=0))
    # the greedy grows slower than the ratio (measured on real features), the scoring with the bank
    halved = fit_parts("patchcore", {"coreset_ratio": 0.05}, **one)
    assert halved["coreset"] == pytest.approx(greedy * 0.5**estimate.GREEDY_RATIO_EXPONENT)
    assert greedy / 2 < halved["coreset"] < greedy and halved["scoring"] == pytest.approx(knn / 2)
    # a bank large enough for the bound search is scored faster than the flat rate, more so at higher d
    large = dict(one, n_train=1000)
    flat = 2.0 * 50 * 28 * 28 * 0.1 * 1000 * 28 * 28 * 256 / 1e10
    plain = estimate.BOUND_SPEEDUP["float32"]
    assert fit_parts("patchcore", {}, **large)["scoring"] == pytest.approx(flat / plain[0][1])
    assert estimate.bound_speedup(1e5, 256) < estimate.bound_speedup(1e5, 512) < estimate.bound_speedup(1e5, 1024)
    assert estimate.bound_speedup(1e5, 2048) == plain[1][1] and estimate.bound_speedup(100, 1024) == 1
    # where the calibration found a fast bfloat16 product, the bound search is faster still
    fast = dict(large, r={**rates, "bound_precision": "bfloat16"})
    bf16 = estimate.BOUND_SPEEDUP["bfloat16"]
    assert fit_parts("patchcore", {}, **fast)["scoring"] == pytest.approx(flat / bf16[0][1])
    assert all(b[1] > p[1] for b, p in zip(bf16, plain))
    # on a GPU the greedy is a full update (linear in the ratio, no real-feature factor) and the kNN a flat search
    gpu = dict(large, r={**rates, "device": "cuda"})
    on_gpu = fit_parts("patchcore", {"coreset_ratio": 0.05}, **gpu)
    assert on_gpu["coreset"] == pytest.approx(1e-7 * (1000 * 28 * 28) ** estimate.GREEDY_EXPONENT / 2)
    assert on_gpu["scoring"] == pytest.approx(flat / 2)
    assert fit_seconds("padim", {}, **one) == 0.0
    assert fit_seconds("tailedcore", {}, **one) > fit_seconds("softpatch", {}, **one) > 0
    sizes = pd.DataFrame({"tail": ["pareto", "pareto"], "seed": [1, 2], "n_train": [100, 100], "n_tail": [10, 10]})
    config = config_of()
    config["features"].update(geometry="crop", resize=224, crop=224, target_dim=256)
    config["methods"].update(run=["patchcore"], seeds=[0, 1])
    seconds = plan_seconds(
        sizes=sizes,
        counts=(400, 50, 4),
        features=FeatureSettings.parse(config["features"]),
        methods=config["methods"],
        rates_=rates,
    )
    assert seconds["features"] == pytest.approx(40.0)  # no job_seconds in these rates
    assert seconds["fits"]["patchcore"] == pytest.approx(4 * (greedy + knn))
    text = estimate_text(dataset="d", sizes=sizes, counts=(400, 50, 4), config=config, rates_=rates)
    assert text.startswith("Estimated time of d") and "4 fits" in text
    assert "What would cut it most: images 3/4 the size per side: about 70 s" in text


def test_a_coreset_ratio_other_than_the_papers_is_named_in_the_estimate_and_the_captions():
    import pandas as pd

    from tailedcore.features.settings import FeatureSettings
    from tailedcore.plan.estimate import estimate_text, plan_seconds
    from tailedcore.reporting.paper import coreset_departure
    from tailedcore.reporting.render import metric_texts

    assert coreset_departure({"run": ["patchcore", "padim"], "patchcore": {"coreset_ratio": 0.1}}) == ""
    assert coreset_departure({"run": ["tailedcore"]}) == ""  # the default is the paper's
    methods = {"run": ["patchcore", "tailedcore", "padim"], "seeds": [0], "patchcore": {"coreset_ratio": 0.01}}
    note = coreset_departure(methods)
    assert note == "Coreset ratio not the paper's 10 %: PatchCore 1 %."
    rates = {"greedy_a": 1e-7, "knn_flops": 1e10, "lof_c": 1e-8, "images_per_second": 10.0}
    sizes = pd.DataFrame({"tail": ["pareto"], "seed": [1], "n_train": [100], "n_tail": [10]})
    config = config_of()
    config["features"].update(geometry="crop", resize=224, crop=224, target_dim=256)
    config["methods"].update(methods)
    text = estimate_text(dataset="d", sizes=sizes, counts=(400, 50, 4), config=config, rates_=rates)
    paper = {**config["methods"], "patchcore": {"coreset_ratio": 0.1}}
    total = plan_seconds(
        sizes=sizes,
        counts=(400, 50, 4),
        features=FeatureSettings.parse(config["features"]),
        methods=paper,
        rates_=rates,
    )
    assert f"{note} At the paper's ratio the same run would take about" in text
    from tailedcore.plan.estimate import _minutes

    assert f"about {_minutes(total['total'])}; the tables say so" in text
    part = pd.DataFrame(
        [
            dict(
                method="patchcore",
                tail="pareto",
                group=g,
                metric="image_auroc",
                mean=90.0,
                std=1.0,
                ci_low=89.0,
                ci_high=91.0,
                std_split=1.0,
                std_model=float("nan"),
                n_seeds=2,
                n_model_seeds=1,
            )
            for g in ("tail", "head", "all")
        ]
    )
    texts = metric_texts(
        part,
        dataset="d",
        metric="image_auroc",
        tails=["pareto"],
        methods=["patchcore"],
        compare_with=None,
        marks=None,
        note="",
        protocol=note,
    )
    assert r"Coreset ratio not the paper's 10 \%: PatchCore 1 \%." in texts[".tex"]
    assert r"PatchCore 1 \%." in texts["_ci.tex"]
    assert texts[".md"].startswith(f"**{note}**")


def _with_ablation(**variants):
    config = config_of()
    overlay = yaml.safe_load((ROOT / "config" / "ablation.yaml").read_text())
    config["methods"].update(overlay["methods"])
    config["methods"]["variants"].update(variants)
    config["ablation"] = overlay["ablation"]
    validate(config, schema=SCHEMA)
    return config


def test_variants_are_methods_of_their_own_with_the_base_options_under_theirs():
    plan = Plan(_with_ablation(), ROOT)
    assert "tc_no_filter" in plan.fitted_methods and plan.method_class("tc_no_filter") == "tailedcore"
    options = plan.method_options("tc_no_filter")
    assert options["denoise"] is False and options["tail_augmentation"] == "rotflip"  # the quickstart's, inherited
    assert "of" not in options and "label" not in options
    assert plan.method_class("patchcore") == "patchcore"
    assert plan.ablation_methods[0] == "tailedcore" and "tc_tail_filtered" in plan.ablation_methods
    assert "results/tables/synthetic_ablation.tex" in plan.all_tables()
    assert plan.run_path("provenance", method="tc_no_views") in plan.provenance_files()
    assert plan.method_labels()["tc_no_views"] == "w/o tail views"


def test_no_variant_no_ablation_table():
    plan = Plan(config_of(), ROOT)
    assert plan.ablation_methods == [] and not any("ablation" in t for t in plan.all_tables())


def test_bad_variants_are_listed_together_before_any_job():
    config = _with_ablation(
        tc_typo={"of": "tailedcor", "denoise": False},
        tc_bad_value={"of": "tailedcore", "tail_cut": "median"},
        tc_bad_key={"of": "tailedcore", "coreset_ratoi": 0.1},
        softpatch={"of": "tailedcore"},
    )
    config["methods"]["run"] += ["tc_typo", "tc_bad_value", "tc_bad_key"]
    with pytest.raises(ConfigError) as caught:
        Plan(config, ROOT)
    text = str(caught.value)
    assert "methods.variants.tc_typo.of is 'tailedcor'" in text and "did you mean" in text.lower()
    assert "methods.variants.tc_bad_value.tail_cut" in text and "'median' is not one of" in text
    assert "coreset_ratoi" in text
    assert "methods.variants.softpatch: 'softpatch' is already a method" in text


def test_the_ablation_reference_must_run():
    config = _with_ablation()
    config["methods"]["run"] = ["patchcore", "tc_no_filter"]
    with pytest.raises(ConfigError, match="ablation.reference is 'tailedcore', which methods.run does not run"):
        Plan(config, ROOT)


def test_the_estimate_prices_a_variant_as_the_method_it_changes():
    from tailedcore.plan.estimate import fit_parts

    sizes = dict(n_train=400, n_tail=10, n_test=200, grid=144, dim=256, n_noise=20)
    rates = {"greedy_a": 1e-9, "knn_flops": 1e10, "lof_c": 1e-7, "images_per_second": 50.0}
    full = fit_parts("tailedcore", {}, r=rates, **sizes)
    unfiltered = fit_parts("tailedcore", {"denoise": False}, r=rates, **sizes)
    no_tail = fit_parts("tailedcore", {"tail_mode": "none"}, r=rates, **sizes)
    assert unfiltered["filter"] == 0 < full["filter"] and unfiltered["scoring"] > full["scoring"]
    assert no_tail["tail_views"] == 0 < full["tail_views"] and no_tail["coreset"] < full["coreset"]


def test_the_estimate_counts_a_step_that_fits_share_once():
    """With methods.reuse_fits, TailedCore reads SoftPatch's LOF and filtered coreset back and PatchCore's coreset
    is TailedCore-without-filter's: the estimate counts each once per split, and all of it without reuse."""
    import pandas as pd

    from tailedcore.features.settings import FeatureSettings
    from tailedcore.plan.estimate import fit_parts, plan_seconds

    rates = {"greedy_a": 1e-9, "knn_flops": 1e10, "lof_c": 1e-7, "images_per_second": 50.0}
    sizes = pd.DataFrame({"tail": ["pareto"], "seed": [1], "n_train": [400], "n_tail": [10], "n_noise": [20]})
    features = FeatureSettings.parse({"geometry": "crop", "resize": 96, "crop": 96, "target_dim": 256})
    one = dict(n_train=400, n_tail=10, n_noise=20, n_test=50, grid=144, dim=256, r=rates)
    soft = fit_parts("softpatch", {}, **one)

    def fits(run, reuse=True, **variants):
        methods = {"run": run, "seeds": [0], "variants": variants, "reuse_fits": reuse}
        return plan_seconds(sizes=sizes, counts=(400, 50, 4), features=features, methods=methods, rates_=rates)["fits"]

    alone, shared = fits(["tailedcore"])["tailedcore"], fits(["softpatch", "tailedcore"])
    assert shared["softpatch"] == pytest.approx(sum(soft.values()))
    assert shared["tailedcore"] == pytest.approx(alone - soft["filter"] - soft["coreset"])
    assert fits(["softpatch", "tailedcore"], reuse=False)["tailedcore"] == pytest.approx(alone)
    unfiltered = fits(["patchcore", "tc_raw"], tc_raw={"of": "tailedcore", "denoise": False})
    assert unfiltered["tc_raw"] == pytest.approx(
        sum(fit_parts("tailedcore", {"denoise": False}, **one).values()) - fit_parts("patchcore", {}, **one)["coreset"]
    )


def test_calibration_is_cached_in_the_suites_own_folder_and_warns_on_a_busy_machine(monkeypatch, caplog):
    """The suite never writes the user's ~/.cache/tailedcore (tests/conftest.py); a calibration measured while the
    cores are busy says so and how to redo it, then is cached atomically for the next call."""
    import json
    import os
    from pathlib import Path

    from tailedcore.plan import estimate

    assert Path(os.environ["TAILEDCORE_CACHE"]).name.startswith("tailedcore-test-cache-")
    measured = []
    monkeypatch.setattr(estimate, "measure_rates", lambda *args: measured.append(args) or {"greedy_a": 1.0})
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    shape = (7, 1000 + os.getpid() % 1000)  # a key no other test of this worker has cached
    with caplog.at_level("WARNING", logger="tailedcore.plan.estimate"):
        assert estimate.rates("cpu", 1, None, shape) == {"greedy_a": 1.0}
        assert estimate.rates("cpu", 1, None, shape) == {"greedy_a": 1.0}
    assert len(measured) == 1  # the second call read the cache
    assert "machine is busy (load 64.0" in caplog.text and "cost_model.json" in caplog.text
    cached = json.loads(estimate._cache_file().read_text())
    assert any(key.endswith(f"|cpu|-|7x{shape[1]}") for key in cached)


def test_the_feature_rate_of_the_papers_backbone_is_measured_without_its_weights_file(tmp_path, monkeypatch):
    """A machine that has not fetched wide_resnet50_2's ImageNet file yet still gets the features in its estimate:
    the rate is timed on the architecture (its arithmetic does not depend on the weights' values)."""
    import torch

    from tailedcore.features.backbones import WeightsNotFoundError, wrn50_weights_path
    from tailedcore.plan.estimate import image_rate

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsNotFoundError):
        wrn50_weights_path(None)
    assert image_rate("cpu", "wide_resnet50_2", (64, 64), (64, 64)) > 0
