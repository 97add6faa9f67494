"""The SDRRL data pipeline: generate -> sample -> translate -> filter, over a work directory.

Each stage reads declared files in ``WORK/`` and writes its own (see docs/CONTRACTS.md, "Pipeline
work directory"). Model outputs (responses, translations, QE scores) go through one
content-addressed cache (:mod:`sdrrl.pipeline.cache`), so nothing is computed twice and a killed
run resumes where it stopped. Engines are imported inside the functions that use them.
"""
