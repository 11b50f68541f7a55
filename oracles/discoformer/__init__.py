"""DiScoFormer: a transformer that maps a sample to its log-density and score (arXiv 2511.05924).

Files: ``model.py`` (trunk, heads; whitening in ``oracles/whitening.py``), ``data.py`` (the
training prior: the paper's GMMs and kinetic densities with exact targets), ``train.py``
(training loop and CLI), ``evaluate.py`` (tables against KDE and the equivariance check),
``ttt.py`` (test-time training), ``averaging.py`` (the inference rule: means over context
subsets and random frames), ``stein.py`` (the score-matching correction of the output),
``oracle.py`` (the registered ``discoformer`` score oracle),
``weights/`` (shipped weights per dimension; training state, resumable checkpoints and logs,
lives outside the package in ``training/discoformer/`` of the repository).
Importing this package registers the oracle.
"""
from oracles.discoformer.model import DiScoFormer, ModelConfig
from oracles.discoformer.oracle import DiScoFormerOracle, load_model, shipped_dims

__all__ = ["DiScoFormer", "ModelConfig", "DiScoFormerOracle", "load_model", "shipped_dims"]
