"""Compose the SDRRL training subsets, baselines and ablations, and export them as a registry.

Modules: ``config`` (every paper value as a named field), ``subsets`` (D_LL/D_TL/D_LT/D_TT),
``codeswitch`` (MUSE dictionaries, Eq. 5), ``parallel`` (D_mt, D_comp), ``methods`` (which subsets
each method trains on), ``export`` (files, dataset_info.json, manifest.json).
"""
