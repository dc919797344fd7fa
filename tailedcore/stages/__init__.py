"""The workflow's stages: one module per rule file (rules/<name>.smk -> tailedcore.stages.<name>), each
holding the functions that rule's thin scripts call and nothing else. Pure file-in, file-out, keyword
arguments; heavy imports (torch, the backbones, matplotlib) stay inside the functions that need them."""
