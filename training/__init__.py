"""Retraining and evaluation for pvdesk (``python -m training`` / ``pvdesk-train``).

It imports the pvdesk core and is never imported by it: the GUI runs it as a child process
and reads JSON lines from its stdout (schema in :mod:`training.progress`).

- ``training.data``: datasets (folders, BreakHis trees, split manifests, review exports),
  patient-disjoint splits;
- ``training.embeddings``: frozen CLIP embeddings through pvdesk's inference engine, cached;
- ``training.heads`` / ``training.train_heads``: logistic-regression and MLP heads;
- ``training.finetune`` / ``training.train_resnet``: resumable ResNet50 fine-tuning;
- ``training.metrics`` / ``training.report``: evaluation numbers and report files;
- ``training.train`` / ``training.evaluate`` / ``training.cli``: the verbs.
"""
