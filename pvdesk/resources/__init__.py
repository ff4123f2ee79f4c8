"""Data the program reads at run time, shipped inside the package so every install carries it.

    models/    built-in model bundles (manifest.json, cached text embeddings)
    prompts/   zero-shot prompt sets
    samples/   the sample slide CMU-1-Small-Region.svs (CC0; see samples/ATTRIBUTION.md)
    icons/     the application icon

Read through :func:`pvdesk.paths.resources_dir` (importlib.resources), never by a path
relative to the source tree.
"""
