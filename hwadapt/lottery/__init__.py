"""Lottery tickets and supermasks: iterative magnitude pruning with rewinding and its
controls (:mod:`~hwadapt.lottery.imp`), supermask criteria, learned supermasks and
edge-popup (:mod:`~hwadapt.lottery.supermask`), sparse model files
(:mod:`~hwadapt.lottery.sparse_export`) and what a sparse network costs on a runtime
(:mod:`~hwadapt.lottery.cost`)."""
