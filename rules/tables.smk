# Tables laid out like the paper's (rows = methods, columns = tail type x (C_t, C_h, all), seed means),
# the comparison with the paper's numbers, and the figures. Every output is registered for
# `snakemake --report results/report.html`.


rule tables:
    input:
        metrics=lambda wc: run_files("metrics", wc.dataset),
    output:
        image=report(
            f"{RESULTS}/tables/{{dataset}}_image_auroc.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "image AUROC"},
            caption="../workflow/report/table_image.rst",
        ),
        image_rendered=multiext(f"{RESULTS}/tables/{{dataset}}_image_auroc", ".tex", "_ci.tex", ".md"),
        image_paired=report(
            f"{RESULTS}/figures/{{dataset}}/paired_image_auroc.png",
            category="Figures",
            labels={"dataset": "{dataset}", "tail": "all", "figure": "paired differences, image AUROC"},
            caption="../workflow/report/figure_paired.rst",
        ),
        image_paired_svg=f"{RESULTS}/figures/{{dataset}}/paired_image_auroc.svg",
        significance=report(
            f"{RESULTS}/tables/{{dataset}}_significance.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "paired comparisons"},
            caption="../workflow/report/table_significance.rst",
        ),
        significance_md=f"{RESULTS}/tables/{{dataset}}_significance.md",
        image_per_seed=report(
            f"{RESULTS}/tables/{{dataset}}_image_auroc_per_seed.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "image AUROC per seed"},
            caption="../workflow/report/table_per_seed.rst",
        ),
        tidy=report(
            f"{RESULTS}/tables/{{dataset}}_tidy.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "tidy summary"},
            caption="../workflow/report/table_tidy.rst",
        ),
        extra_metrics=report(
            f"{RESULTS}/tables/{{dataset}}_extra_metrics.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "extra metrics (beyond the paper)"},
            caption="../workflow/report/table_extra.rst",
        ),
        per_class=report(
            f"{RESULTS}/tables/{{dataset}}_per_class.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "per class and seed"},
            caption="../workflow/report/table_per_class.rst",
        ),
        vs_paper=report(
            f"{RESULTS}/tables/{{dataset}}_vs_paper.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "ours vs the paper"},
            caption="../workflow/report/table_vs_paper.rst",
        ),
    log:
        f"{RESULTS}/logs/tables/{{dataset}}.log",
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
        pixel=report(
            f"{RESULTS}/tables/{{dataset}}_pixel_auroc.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "pixel AUROC"},
            caption="../workflow/report/table_pixel.rst",
        ),
        pixel_rendered=multiext(f"{RESULTS}/tables/{{dataset}}_pixel_auroc", ".tex", "_ci.tex", ".md"),
        pixel_paired=report(
            f"{RESULTS}/figures/{{dataset}}/paired_pixel_auroc.png",
            category="Figures",
            labels={"dataset": "{dataset}", "tail": "all", "figure": "paired differences, pixel AUROC"},
            caption="../workflow/report/figure_paired.rst",
        ),
        pixel_paired_svg=f"{RESULTS}/figures/{{dataset}}/paired_pixel_auroc.svg",
        pixel_per_seed=report(
            f"{RESULTS}/tables/{{dataset}}_pixel_auroc_per_seed.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "pixel AUROC per seed"},
            caption="../workflow/report/table_per_seed.rst",
        ),
    log:
        f"{RESULTS}/logs/pixel_table/{{dataset}}.log",
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
        per_class=f"{RESULTS}/tables/{{dataset}}_per_class.csv",
        index=f"{RESULTS}/{{dataset}}/index.csv",
        manifest=lambda wc: expand(MANIFEST, dataset=wc.dataset, tail=wc.tail, seed=SEEDS[0])[0],
        scores=lambda wc: run_files(
            "scores", wc.dataset, tails=[wc.tail], seeds=SEEDS[:1], model_seeds=MODEL_SEEDS[:1]
        )
        + run_files("report", wc.dataset, tails=[wc.tail], seeds=SEEDS[:1], model_seeds=MODEL_SEEDS[:1]),
    output:
        per_class=report(
            f"{RESULTS}/figures/{{dataset}}/per_class_{{tail}}.png",
            category="Figures",
            labels={"dataset": "{dataset}", "tail": "{tail}", "figure": "per-class image AUROC"},
            caption="../workflow/report/figure_per_class.rst",
        ),
        anomaly_maps=report(
            f"{RESULTS}/figures/{{dataset}}/anomaly_maps_{{tail}}.png",
            category="Figures",
            labels={"dataset": "{dataset}", "tail": "{tail}", "figure": "anomaly maps"},
            caption="../workflow/report/figure_anomaly_maps.rst",
        ),
        svg=[
            f"{RESULTS}/figures/{{dataset}}/per_class_{{tail}}.svg",
            f"{RESULTS}/figures/{{dataset}}/anomaly_maps_{{tail}}.svg",
        ],
        tail_sampler=[
            report(
                f"{RESULTS}/figures/{{dataset}}/tail_sampler_{{tail}}.{ext}",
                category="Figures",
                labels={"dataset": "{dataset}", "tail": "{tail}", "figure": f"TailSampler ({ext})"},
                caption="../workflow/report/figure_tail_sampler.rst",
            )
            for ext in (("png", "svg") if "tailedcore" in METHODS else ())
        ],
    log:
        f"{RESULTS}/logs/figures/{{dataset}}/{{tail}}.log",
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
    output:
        table=report(
            f"{RESULTS}/tables/{{dataset}}_diagnostics.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "diagnostics"},
            caption="../workflow/report/table_diagnostics.rst",
        ),
        markdown=f"{RESULTS}/tables/{{dataset}}_diagnostics.md",
        figure=report(
            f"{RESULTS}/figures/{{dataset}}/diagnostics.png",
            category="Figures",
            labels={"dataset": "{dataset}", "tail": "all", "figure": "what the memory bank keeps"},
            caption="../workflow/report/figure_diagnostics.rst",
        ),
        svg=f"{RESULTS}/figures/{{dataset}}/diagnostics.svg",
    log:
        f"{RESULTS}/logs/diagnostics_table/{{dataset}}.log",
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
        csv=report(
            f"{RESULTS}/tables/{{dataset}}_cost.csv",
            category="Runtime",
            labels={"dataset": "{dataset}", "table": "cost beside accuracy"},
            caption="../workflow/report/table_cost.rst",
        ),
        md=f"{RESULTS}/tables/{{dataset}}_cost.md",
    log:
        f"{RESULTS}/logs/cost_table/{{dataset}}.log",
    conda:
        CONDA_ENV
    params:
        tails=TAILS,
        methods=METHODS,
        version=VERSION,
    script:
        f"{SCRIPTS}/cost_table.py"


rule runtime_table:
    input:
        unpack(runtime_inputs),
    output:
        report(
            f"{RESULTS}/tables/{{dataset}}_runtime.csv",
            category="Runtime",
            labels={"dataset": "{dataset}", "table": "runtime"},
            caption="../workflow/report/table_runtime.rst",
        ),
    log:
        f"{RESULTS}/logs/runtime_table/{{dataset}}.log",
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
        table=report(
            f"{RESULTS}/tables/{{dataset}}_noise_sweep.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "noise-ratio sweep"},
            caption="../workflow/report/noise_sweep.rst",
        ),
        figure=report(
            f"{RESULTS}/figures/{{dataset}}/noise_sweep.png",
            category="Figures",
            labels={"dataset": "{dataset}", "tail": SWEEP["tail"], "figure": "noise-ratio sweep"},
            caption="../workflow/report/noise_sweep.rst",
        ),
        svg=f"{RESULTS}/figures/{{dataset}}/noise_sweep.svg",
        diagnostics=report(
            f"{RESULTS}/tables/{{dataset}}_noise_sweep_diagnostics.csv",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "noise-ratio sweep, diagnostics"},
            caption="../workflow/report/noise_sweep_diagnostics.rst",
        ),
        diagnostics_figure=report(
            f"{RESULTS}/figures/{{dataset}}/noise_sweep_diagnostics.png",
            category="Figures",
            labels={"dataset": "{dataset}", "tail": SWEEP["tail"], "figure": "noise-ratio sweep, diagnostics"},
            caption="../workflow/report/noise_sweep_diagnostics.rst",
        ),
        diagnostics_svg=f"{RESULTS}/figures/{{dataset}}/noise_sweep_diagnostics.svg",
    log:
        f"{RESULTS}/logs/noise_sweep/{{dataset}}.log",
    conda:
        CONDA_ENV
    params:
        ratios=lambda wc: {name: ratio for name, (base, ratio) in SWEEP_POINTS.items() if base == wc.dataset},
        tail=SWEEP["tail"],
        version=VERSION,
    script:
        f"{SCRIPTS}/noise_sweep.py"
