"""Floor 4: from metric files to what a reader sees: aggregation over classes and seeds (aggregate),
Markdown and LaTeX (render), figures, and the paper's own numbers to compare with (paper)."""
