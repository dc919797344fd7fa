# Tables laid out like the paper's (rows = methods, columns = tail type x (C_t, C_h, all), seed means),
# the comparison with the paper's numbers, and the figures. Every output is registered for
# `snakemake --report results/report.html`.


rule tables:
    input:
        metrics=lambda wc: run_files("metrics", wc.dataset),
    output:
        image=table_report("image_auroc", "image AUROC", "table_image"),
        image_rendered=multiext(table_file("image_auroc"), ".tex", "_ci.tex", ".md"),
        image_paired=figure_report("paired_image_auroc.png", "paired differences, image AUROC", "figure_paired"),
        image_paired_svg=figure_file("paired_image_auroc.svg"),
        significance=table_report("significance", "paired comparisons", "table_significance"),
        significance_md=table_file("significance.md"),
        image_per_seed=table_report("image_auroc_per_seed", "image AUROC per seed", "table_per_seed"),
        tidy=table_report("tidy", "tidy summary", "table_tidy"),
        extra_metrics=table_report("extra_metrics", "extra metrics (beyond the paper)", "table_extra"),
        per_class=table_report("per_class", "per class and seed", "table_per_class"),
        vs_paper=table_report("vs_paper", "ours vs the paper", "table_vs_paper"),
    log:
        rule_log("tables"),
    conda:
        CONDA_ENV
    params:
        tails=TAILS,
        methods=METHODS,
        compare_with=lambda wc: compare_with(wc.dataset),
        paper_names=paper_names(),
        out_dir=lambda wc, output: str(Path(output.tidy).parent),
        table_metrics=["image_auroc"],
        summaries=True,
        reference_method=config["evaluation"]["reference_method"],
        figure_dir=lambda wc, output: str(Path(output.image_paired).parent),
        protocol=coreset_departure(config["methods"]),
        version=VERSION,
    script:
        f"{SCRIPTS}/tables.py"


# Pixel AUROC, for datasets with defect masks only (a dataset with image labels only has no pixel table).
rule pixel_table:
    input:
        metrics=lambda wc: run_files("metrics", wc.dataset),
    output:
        pixel=table_report("pixel_auroc", "pixel AUROC", "table_pixel"),
        pixel_rendered=multiext(table_file("pixel_auroc"), ".tex", "_ci.tex", ".md"),
        pixel_paired=figure_report("paired_pixel_auroc.png", "paired differences, pixel AUROC", "figure_paired"),
        pixel_paired_svg=figure_file("paired_pixel_auroc.svg"),
        pixel_per_seed=table_report("pixel_auroc_per_seed", "pixel AUROC per seed", "table_per_seed"),
    log:
        rule_log("pixel_table"),
    conda:
        CONDA_ENV
    params:
        tails=TAILS,
        methods=METHODS,
        compare_with=lambda wc: compare_with(wc.dataset),
        paper_names=paper_names(),
        out_dir=lambda wc, output: str(Path(output.pixel).parent),
        table_metrics=["pixel_auroc"],
        summaries=False,
        reference_method=config["evaluation"]["reference_method"],
        figure_dir=lambda wc, output: str(Path(output.pixel_paired).parent),
        protocol=coreset_departure(config["methods"]),
        version=VERSION,
    script:
        f"{SCRIPTS}/tables.py"


rule figures:
    input:
        per_class=str(rules.tables.output.per_class),  # the path, not its report flag
        index=rules.index.output.index,
        manifest=lambda wc: expand(rules.split.output.manifest, dataset=wc.dataset, tail=wc.tail, seed=SEEDS[0])[0],
        scores=lambda wc: run_files(
            "scores", wc.dataset, tails=[wc.tail], seeds=SEEDS[:1], model_seeds=MODEL_SEEDS[:1]
        )
        + run_files("report", wc.dataset, tails=[wc.tail], seeds=SEEDS[:1], model_seeds=MODEL_SEEDS[:1]),
    output:
        per_class=figure_report("per_class_{tail}.png", "per-class image AUROC", "figure_per_class", tail="{tail}"),
        anomaly_maps=figure_report("anomaly_maps_{tail}.png", "anomaly maps", "figure_anomaly_maps", tail="{tail}"),
        svg=[
            figure_file("per_class_{tail}.svg"),
            figure_file("anomaly_maps_{tail}.svg"),
        ],
        tail_sampler=[
            figure_report(f"tail_sampler_{{tail}}.{ext}", f"TailSampler ({ext})", "figure_tail_sampler", tail="{tail}")
            for ext in (("png", "svg") if "tailedcore" in METHODS else ())
        ],
    log:
        rule_log("figures", "{dataset}/{tail}"),
    conda:
        CONDA_ENV
    params:
        seed=SEEDS[0],
        model_seed=MODEL_SEEDS[0],
        methods=METHODS,
        geometry=geometry_params(),
        evaluation={"sigma": config["evaluation"]["sigma"]},
        out_dir=lambda wc, output: str(Path(output.per_class).parent),
        version=VERSION,
    script:
        f"{SCRIPTS}/figures.py"


# Why a method wins (docs/protocol.md §3.3): memory-bank composition, the denoising filter and the
# TailSampler against the split's truth, aggregated over seeds like the AUROC tables.
rule diagnostics_table:
    input:
        diagnostics=lambda wc: run_files("diagnostics", wc.dataset, methods=["all"]),
        metrics=lambda wc: run_files("metrics", wc.dataset),
    output:
        table=table_report("diagnostics", "diagnostics", "table_diagnostics"),
        markdown=table_file("diagnostics.md"),
        per_category=table_report(
            "diagnostics_per_category", "diagnostics, class by class", "table_diagnostics_per_category"
        ),
        per_category_md=table_file("diagnostics_per_category.md"),
        figure=figure_report("diagnostics.png", "what the memory bank keeps", "figure_diagnostics"),
        svg=figure_file("diagnostics.svg"),
        per_category_figure=figure_report(
            "diagnostics_per_category.png", "each class's AUROC beside its bank", "figure_diagnostics_per_category"
        ),
        per_category_svg=figure_file("diagnostics_per_category.svg"),
    log:
        rule_log("diagnostics_table"),
    conda:
        CONDA_ENV
    params:
        tails=TAILS,
        methods=METHODS,
        version=VERSION,
    script:
        f"{SCRIPTS}/diagnostics_tables.py"


# Cost beside accuracy: what every run cost, measured inside its fit job, beside its image AUROC.
rule cost_table:
    input:
        reports=lambda wc: run_files("report", wc.dataset),
        metrics=lambda wc: run_files("metrics", wc.dataset),
    output:
        csv=table_report("cost", "cost beside accuracy", "table_cost", category="Runtime"),
        md=table_file("cost.md"),
    log:
        rule_log("cost_table"),
    conda:
        CONDA_ENV
    params:
        tails=TAILS,
        methods=METHODS,
        version=VERSION,
    script:
        f"{SCRIPTS}/cost_table.py"


# TailedCore's parts as ablations (docs/ablation.md): every variant in methods.run against the reference.
rule ablation_table:
    input:
        metrics=lambda wc: run_files("metrics", wc.dataset, methods=ABLATION_METHODS),
        diagnostics=lambda wc: run_files("diagnostics", wc.dataset, methods=["all"]),
        reports=lambda wc: run_files("report", wc.dataset, methods=ABLATION_METHODS),
    output:
        csv=table_report("ablation", "ablation", "table_ablation"),
        md=table_file("ablation.md"),
        tex=table_file("ablation.tex"),
    log:
        rule_log("ablation_table"),
    conda:
        CONDA_ENV
    params:
        tails=TAILS,
        reference=ABLATION_REFERENCE,
        methods=ABLATION_METHODS,
        labels=method_labels(),
        version=VERSION,
    script:
        f"{SCRIPTS}/ablation_table.py"


rule runtime_table:
    input:
        unpack(runtime_inputs),
    output:
        table_report("runtime", "runtime", "table_runtime", category="Runtime"),
    log:
        rule_log("runtime_table"),
    conda:
        CONDA_ENV
    params:
        version=VERSION,
    script:
        f"{SCRIPTS}/runtime_table.py"


rule noise_sweep:
    input:
        metrics=lambda wc: [
            path
            for name, (base, _) in SWEEP_POINTS.items()
            if base == wc.dataset
            for path in run_files("metrics", name, tails=[SWEEP["tail"]], seeds=SWEEP["seeds"])
        ],
        diagnostics=lambda wc: [
            path
            for name, (base, _) in SWEEP_POINTS.items()
            if base == wc.dataset
            for path in run_files("diagnostics", name, tails=[SWEEP["tail"]], seeds=SWEEP["seeds"], methods=["all"])
        ],
    output:
        table=table_report("noise_sweep", "noise-ratio sweep", "noise_sweep"),
        figure=figure_report("noise_sweep.png", "noise-ratio sweep", "noise_sweep", tail=SWEEP["tail"]),
        svg=figure_file("noise_sweep.svg"),
        diagnostics=table_report("noise_sweep_diagnostics", "noise-ratio sweep, diagnostics", "noise_sweep_diagnostics"),
        diagnostics_figure=figure_report(
            "noise_sweep_diagnostics.png",
            "noise-ratio sweep, diagnostics",
            "noise_sweep_diagnostics",
            tail=SWEEP["tail"],
        ),
        diagnostics_svg=figure_file("noise_sweep_diagnostics.svg"),
    log:
        rule_log("noise_sweep"),
    conda:
        CONDA_ENV
    params:
        ratios=lambda wc: {name: ratio for name, (base, ratio) in SWEEP_POINTS.items() if base == wc.dataset},
        tail=SWEEP["tail"],
        version=VERSION,
    script:
        f"{SCRIPTS}/noise_sweep.py"
