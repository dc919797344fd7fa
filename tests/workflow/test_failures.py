"""Every failure explains itself: damaged files name the file and the command that rebuilds them, killed
writers leave nothing complete-looking, bad configs fail a dry run in seconds naming the key."""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tailedcore.data.longtail import SplitError, SplitRules, full_size_tails, generate_split
from tailedcore.features.cache import FeatureStore, cache_paths, write_ids
from tailedcore.runtime.io import DamagedFileError, atomic_path, load_npz
from tailedcore.scores import SCORE_KEYS
from tailedcore.stages.evaluate import evaluate
from tailedcore.stages.settings import evaluation_settings

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
QUICKSTART = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())


def _write_cache(folder: Path, category: str, rows: int = 4):
    paths = cache_paths(folder, category)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(paths["patches"], np.zeros((rows, 2, 2, 8), np.float16))
    np.save(paths["global"], np.zeros((rows, 5), np.float32))
    write_ids(paths["ids"], [f"{category}/train/good/{i} x" for i in range(rows)])  # spaces in names
    return paths


def test_feature_cache_ids_round_trip_any_file_name(tmp_path):
    names = ["c/train/good/IMG 0001", "c/train/good/kratzer ü 3", "c/train/good/-lead [1] (2)", "c/test/a/two\nlines"]
    paths = _write_cache(tmp_path, "c", rows=len(names))
    write_ids(paths["ids"], names)
    store = FeatureStore(tmp_path, ["c"])
    assert list(store.rows["c"]) == names
    paths["ids"].write_text("c/train/good/IMG 0001\n")  # the old one-id-per-line format is named, not misread
    with pytest.raises(DamagedFileError, match="feature cache ids"):
        FeatureStore(tmp_path, ["c"])


def test_truncated_feature_cache_names_the_file_and_the_rebuild(tmp_path):
    paths = _write_cache(tmp_path, "wood")
    data = paths["patches"].read_bytes()
    paths["patches"].write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedFileError) as caught:
        FeatureStore(tmp_path, ["wood"])
    text = str(caught.value)
    assert str(paths["patches"]) in text and "truncated" in text and f"--forcerun {paths['patches']}" in text


def test_feature_cache_parts_that_do_not_fit_together(tmp_path):
    paths = _write_cache(tmp_path, "wood")
    np.save(paths["global"], np.zeros((3, 5), np.float32))
    with pytest.raises(DamagedFileError, match="does not fit together"):
        FeatureStore(tmp_path, ["wood"])


@pytest.mark.parametrize("content", [b"garbage, not a zip", "truncated", "pickled"])
def test_damaged_scores_file_names_the_file_and_never_suggests_pickles(tmp_path, content):
    path = tmp_path / "patchcore.npz"
    np.savez(
        path, image_ids=np.array(["a", "b"]), image_scores=np.zeros(2, np.float32), patch_scores=np.zeros((2, 2, 2))
    )
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif content == "pickled":
        np.savez(path, image_ids=np.array([{"a": 1}], dtype=object), image_scores=np.zeros(1), patch_scores=np.zeros(1))
    else:
        path.write_bytes(content)
    with pytest.raises(DamagedFileError) as caught:
        load_npz(path, "score file", SCORE_KEYS)
    text = str(caught.value)
    assert str(path) in text and "--forcerun" in text and "allow_pickle" not in text


def test_damaged_manifest_stops_the_evaluation_with_its_name(tmp_path):
    scores = tmp_path / "s.npz"
    np.savez(scores, image_ids=np.array(["a"]), image_scores=np.zeros(1, np.float32), patch_scores=np.zeros((1, 2, 2)))
    manifest = tmp_path / "seed1.csv"
    manifest.write_text("image_id,categ")
    (tmp_path / "index.csv").write_text(
        "image_id,category,split,label,image_path,mask_path,width,height\na,c,test,good,x.png,,4,4\n"
    )
    with pytest.raises(DamagedFileError, match=r"seed1\.csv \(split manifest\) lacks the columns"):
        evaluate(
            scores_paths={"patchcore": scores},
            manifest_path=manifest,
            index_path=tmp_path / "index.csv",
            run={},
            spec=evaluation_settings({}, {}),
            protocol="overlap",
            outputs={"patchcore": tmp_path / "out.csv"},
        )


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import pandas as pd
    from PIL import Image
    from pathlib import Path
    from tailedcore.data.images import Geometry
    from tailedcore.features.cache import extract_category
    from tailedcore.features.settings import FeatureSettings

    folder = Path(sys.argv[1])
    paths = []
    for i in range(64):
        path = folder / f"{i}.png"
        Image.new("RGB", (32, 32), (i, i, i)).save(path)
        paths.append(str(path))
    index = pd.DataFrame({"image_id": [f"c/train/good/{i}" for i in range(64)], "category": "c",
                          "image_path": paths})

    class Slow:
        fill = 0
        def __call__(self, images):
            print("batch", flush=True)
            time.sleep(0.5)
            return np.ones((len(images), 4, 4, 8), np.float32), np.ones((len(images), 3), np.float32)

    config = FeatureSettings(geometry=Geometry(resize=32, crop=32), batch_size=4)
    extract_category(index, "c", config, folder / "features", extractor=Slow())
    """
)


def test_a_killed_feature_writer_leaves_no_complete_looking_file(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    for _ in range(3):  # three batches of 16 written
        assert process.stdout.readline().strip() == "batch"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    features = tmp_path / "features"
    assert not (features / "c.patches.npy").exists() and not (features / "c.ids.json").exists()
    assert not (features / "c.global.npy").exists()


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_step_k_at_a_class_size_is_an_error_naming_the_class():
    index = pd.DataFrame(
        {
            "image_id": [f"{c}/train/good/{i}" for c, n in (("a", 3), ("b", 9)) for i in range(n)],
            "category": ["a"] * 3 + ["b"] * 9,
            "split": "train",
            "label": "good",
        }
    )
    problems = full_size_tails(index, ["step_k4", "step_k1"], SplitRules())
    assert len(problems) == 1 and "class a has 3 training images" in problems[0] and "step_k4" in problems[0]
    test = pd.DataFrame(
        {"image_id": ["a/test/x/0", "b/test/x/0"], "category": ["a", "b"], "split": "test", "label": "x"}
    )
    with pytest.raises(SplitError, match=r"a \(3 training images\)"):
        for seed in range(20):  # whichever class is drawn as the tail, a's K=4 keeps all of it
            generate_split(pd.concat([index, test]), "step_k4", seed, SplitRules(step_tail_fraction=0.5))


def _dry_run(tmp_path, config: dict, env: dict | None = None):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-n", "--configfile", str(path), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the dry run (user + system): what it costs, whatever else the machine is doing
    return run, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _changed(**changes) -> dict:
    config = json.loads(json.dumps(QUICKSTART))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        block = config
        for parent in parents:
            block = block[parent]
        block[key] = value
    return config


@pytest.mark.parametrize(
    "config, expected",
    [
        (_changed(features__crop=200), "features.crop (200) is larger than features.resize (96)"),
        (_changed(features__geometry="pad"), "geometry 'pad' needs features.size"),
        (_changed(methods__patchcor={"coreset_ratio": 0.2}), "methods.patchcor is neither a setting"),
        (_changed(features__crpo=3), "unknown key features.crpo (did you mean 'crop'?)"),
        (_changed(evaluation__gt_rule="halff"), "'halff' is not allowed (did you mean 'half'?)"),
        (_changed(methods__device="cuda"), "methods.device: cuda, but this machine shows no GPU"),
    ],
    ids=["crop>resize", "pad-without-size", "method-typo", "unknown-key", "bad-value", "cuda-without-gpu"],
)
def test_bad_configs_fail_a_dry_run_in_seconds_naming_the_key(tmp_path, config, expected):
    run, seconds = _dry_run(tmp_path, config, env={"CUDA_VISIBLE_DEVICES": ""})
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert expected in output, output[-2000:]
    assert seconds < 5 and len(output.splitlines()) < 15  # seconds of CPU; a few lines, not a schema dump


JOB = textwrap.dedent(
    """
    import os, signal, sys, types
    sys.path.insert(0, sys.argv[3])
    from tailedcore.runtime.logs import to_rule_log
    log = to_rule_log(types.SimpleNamespace(rule="fit_score", log=[sys.argv[1]]))
    log.info("working")
    if sys.argv[2] == "kill":
        held = bytearray(200 * 2**20)
        held[::4096] = b"x" * len(held[::4096])  # touched: resident
        os.kill(os.getpid(), signal.SIGKILL)
    elif sys.argv[2] == "segv":
        import ctypes
        ctypes.string_at(0)
    elif sys.argv[2] == "disk":
        raise OSError("46080 requested and 11232 written")
    elif sys.argv[2] == "memory":
        raise MemoryError("Unable to allocate 12.0 GiB for an array")
    print("done")
    """
)


def _job(tmp_path, what: str) -> tuple[subprocess.CompletedProcess, Path]:
    """A script as Snakemake runs it (under .snakemake/scripts/), calling to_rule_log, then failing as told."""
    script = tmp_path / ".snakemake" / "scripts" / "tmpjob.fit_score.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(JOB)
    log = tmp_path / f"{what}.log"
    run = subprocess.run(
        [sys.executable, str(script), str(log), what, str(ROOT)], capture_output=True, text=True, timeout=120
    )
    return run, log


@pytest.mark.parametrize(
    "what, code, words",
    [
        (
            "kill",
            128 + 9,
            "Error in rule fit_score: the job died from SIGKILL (9): most often the kernel's out-of-memory killer, "
            "else a kill from outside (kill -9, a scheduler's limit).",
        ),
        (
            "segv",
            128 + 11,
            "Error in rule fit_score: the job died from SIGSEGV (11): a crash inside compiled code (torch, faiss, "
            "numba); under a memory limit most often a failed allocation.",
        ),
    ],
)
def test_a_job_that_dies_from_a_signal_says_so_on_the_terminal_with_its_peak_memory_and_log(
    tmp_path, what, code, words
):
    run, log = _job(tmp_path, what)
    assert run.returncode == code
    assert words in run.stderr, run.stderr
    assert "GiB of the machine's" in run.stderr
    assert (
        "if it ran out of memory, what cuts it: a smaller coreset_ratio of the method, or a smaller features.size "
        "(fewer patches per image); or run fewer jobs at once (--cores)"
    ) in run.stderr
    assert f"(its log: {log})" in run.stderr
    assert words in log.read_text()  # the log says it too, after what the job wrote
    if what == "kill":
        peak = float(run.stderr.split("peak memory was ")[1].split(" GiB")[0])
        assert peak >= 0.19  # the 200 MiB the job held
    else:
        assert "Fatal Python error: Segmentation fault" in log.read_text()  # faulthandler: the stack in the log


def test_a_full_disk_and_an_exhausted_memory_are_named_in_words(tmp_path):
    run, log = _job(tmp_path, "disk")
    assert run.returncode == 1
    assert "Error in rule fit_score: OSError: 46080 requested and 11232 written\ndisk full: " in run.stderr
    assert "GiB free; free space there (or move results/ to a larger disk and run from there), then run" in run.stderr
    run, log = _job(tmp_path, "memory")
    assert (
        "Error in rule fit_score: MemoryError: Unable to allocate 12.0 GiB for an array\nout of memory: the job's "
        "peak memory was "
    ) in run.stderr
    assert "what cuts it: a smaller coreset_ratio of the method" in run.stderr
    run, _ = _job(tmp_path, "ok")
    assert run.returncode == 0 and run.stderr == ""


def test_a_yaml_error_names_the_file_and_the_line(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("methods:\n  run: [patchcore]\n")
    bad = tmp_path / "overlay.yaml"
    bad.write_text("datasets:\n  synthetic:\n    kind: synthetic\n   noise_ratio: 0.1\n")
    tabbed = tmp_path / "tabbed.yaml"
    tabbed.write_text("splits:\n\tseeds: [1]\n")
    run = subprocess.run(
        [sys.executable, "-m", "tailedcore.runtime.config", str(good), str(bad), str(tabbed)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        f"{bad}, line 4, column 4: while parsing a block mapping expected <block end>, but found "
        "'<block mapping start>'",
        f"{tabbed}, line 2, column 1: while scanning for the next token found character '\\t' that cannot start "
        "any token (YAML indents with spaces only: replace the tab)",
    ]
    # Snakemake's own message names neither: docs/recovery.md sends the user to this command
    dry = subprocess.run(
        [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n", "--configfile", str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Config file is not valid JSON or YAML" in dry.stdout + dry.stderr
    assert "python -m tailedcore.runtime.config" in (ROOT / "docs" / "recovery.md").read_text()


def test_a_category_name_that_cannot_be_used_says_which_characters_and_how_to_map_the_folder():
    from tailedcore.runtime.config import schema_problems

    config = {
        "datasets": {"d": {"kind": "folder", "path": "/data", "noise_ratio": 0.1, "categories": ["a", "beta two"]}}
    }
    problems = schema_problems(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    assert (
        "datasets.d.categories.1: category 'beta two' cannot be used: a category name becomes part of every result "
        "path and job name, so it may hold only letters, digits and underscores (A-Z, a-z, 0-9, _). Rename the "
        "folder (mv 'beta two' beta_two) or, to leave the data as it is, link it under a usable name inside the "
        "dataset folder (ln -s 'beta two' beta_two), and list 'beta_two' in `categories`"
    ) in problems
