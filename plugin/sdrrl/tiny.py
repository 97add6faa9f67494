"""Tiny random-weight models, built locally with no network, so tests and the demo run real engines.

Each builder writes one model directory into a cache directory, under a name that carries a hash of
its settings, the training text and ``TINY_MODELS_VERSION``: a changed recipe gets a new directory,
an unchanged one is found and reused. A build happens in a temporary sibling directory that is
renamed into place only when complete, under a file lock, so a killed or concurrent build never
leaves (or exposes) half a model. Builds are seeded: the same settings give byte-identical weights.

The tokenizers are trained on the sample text shipped in ``sdrrl/data/sample`` (every file there,
so every script of the language table is covered). The models are noise generators: they prove the
plumbing (load, generate, convert, score), not quality.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdrrl.errors import SdrrlError
from sdrrl.fingerprint import fingerprint
from sdrrl.io import ensure_writable_dir
from sdrrl.pipeline.lock import DirLock, acquired

# Bump when a builder changes in a way its settings do not show (new files, other defaults).
TINY_MODELS_VERSION = "1"

SAMPLE_DIR = Path(__file__).parent / "data" / "sample"
_SAMPLE_SUFFIXES = (".jsonl", ".json", ".tsv", ".txt")

LLAMA_SETTINGS: dict[str, Any] = {
    "seed": 1234,
    "vocab_size": 1536,          # byte-level BPE target size (the byte alphabet is always kept)
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    # head size 32 (hidden 64 / 2 heads): the smallest vLLM's CPU attention runs (it refuses 16), so
    # one tiny Llama serves both engines; one key/value head keeps grouped-query attention (2:1)
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 2048,  # LLaMA-Factory cutoff_len up to 1024 (+ response) must fit
    "tie_word_embeddings": True,
    # LlamaConfig's default; the engine comparison raises it, so that greedy answers depend on the
    # question (at 0.02 the random model writes ':' whatever it is asked)
    "initializer_range": 0.02,
}

NLLB_SETTINGS: dict[str, Any] = {
    "seed": 1234,
    "sp_vocab_size": 1200,       # sentencepiece pieces; the language codes come on top
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "max_position_embeddings": 1024,
    "max_length": 200,           # NLLB's own generation limit
    "init_std": 0.2,             # larger than the usual 0.02, so output depends on the input
}

XLMR_SETTINGS: dict[str, Any] = {
    "seed": 1234,
    "sp_vocab_size": 1200,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 514,  # as XLM-R: 512 usable positions + padding offset
    "initializer_range": 0.2,    # larger than the usual 0.02, so embeddings differ between inputs
}

# Shaped like Unbabel/wmt22-cometkiwi-da (UnifiedMetric, inputs mt+src, no reference), except the
# sizes and the final sigmoid: the real model has no final activation (its scores are usually, not
# always, in [0, 1]); here random weights would sit anywhere, so a sigmoid keeps them in [0, 1].
COMET_QE_SETTINGS: dict[str, Any] = {
    "seed": 1234,
    "class_identifier": "unified_metric",
    "hparams": {
        "activations": "Tanh",
        "batch_size": 16,
        "dropout": 0.1,
        "encoder_learning_rate": 1.0e-06,
        "encoder_model": "XLM-RoBERTa",
        "final_activation": "Sigmoid",
        "hidden_sizes": [64, 32],
        "input_segments": ["mt", "src"],
        "keep_embeddings_frozen": True,
        "layer_norm": False,
        "layer_transformation": "sparsemax",
        "layerwise_decay": 0.95,
        "learning_rate": 1.5e-05,
        "loss": "mse",
        "loss_lambda": 0.65,
        "nr_frozen_epochs": 0.3,
        "optimizer": "AdamW",
        "sent_layer": "mix",
        "warmup_steps": 0,
        "word_layer": 2,
        "word_level_training": False,
    },
    # The last linear layer is rescaled so that, on rows made from the sample text, the logits
    # before the sigmoid have this mean and spread: scores then cover (0, 1) instead of all sitting
    # at ~0.5, and a threshold such as the paper's 0.8 keeps some rows and rejects others.
    "calibration": {"mean": 0.0, "std": 1.5, "rows": 64},
}

# Shaped like Unbabel/wmt22-comet-da (RegressionMetric, inputs src+mt+ref), tiny sizes.
COMET_REF_SETTINGS: dict[str, Any] = {
    "seed": 1234,
    "class_identifier": "regression_metric",
    "hparams": {
        "activations": "Tanh",
        "batch_size": 16,
        "dropout": 0.1,
        "encoder_learning_rate": 1.0e-06,
        "encoder_model": "XLM-RoBERTa",
        "final_activation": None,
        "hidden_sizes": [64, 32],
        "keep_embeddings_frozen": True,
        "layer": "mix",
        "layer_norm": False,
        "layer_transformation": "sparsemax",
        "layerwise_decay": 0.95,
        "learning_rate": 1.5e-05,
        "loss": "mse",
        "nr_frozen_epochs": 0.3,
        "optimizer": "AdamW",
        "pool": "avg",
        "warmup_steps": 0,
    },
    # Scores calibrated like the real model's usual range: mostly inside [0, 1].
    "calibration": {"mean": 0.5, "std": 0.15, "rows": 64},
}

# Names of the builds done by this process (a test's proof that a second call was a cache hit).
BUILD_LOG: list[str] = []


@dataclass(frozen=True)
class TinyModels:
    """Where the tiny models live: HF directories, and COMET checkpoint files."""

    llama: Path
    nllb: Path
    xlmr: Path
    comet_qe: Path
    comet_ref: Path

    def as_dict(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in ("llama", "nllb", "xlmr", "comet_qe", "comet_ref")}


def default_cache_dir() -> Path:
    """``$SDRRL_CACHE/tiny-models``, else ``~/.cache/sdrrl/tiny-models``."""
    from sdrrl.io import cache_dir

    return cache_dir("tiny-models")


def build_all(cache_dir: str | os.PathLike | None = None) -> TinyModels:
    """Build (or find) every tiny model in ``cache_dir``."""
    cache = _resolve_cache(cache_dir)
    return TinyModels(
        llama=tiny_llama(cache),
        nllb=tiny_nllb(cache),
        xlmr=tiny_xlmr(cache),
        comet_qe=tiny_comet_qe(cache),
        comet_ref=tiny_comet_ref(cache),
    )


def prune(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Delete this cache's tiny models that the current recipes no longer produce; return them.

    Every changed setting or sample file leaves the old build behind (the key moved on). Only
    directories named like ours (``<builder>-<16 hex>``) and not current are removed.
    """
    import re

    cache = _resolve_cache(cache_dir)
    current = {_model_dir_of(p).name for p in build_all(cache).as_dict().values()}
    pattern = re.compile(r"^(llama|nllb|xlmr|comet-qe|comet-ref)-[0-9a-f]{16}$")
    removed = []
    for path in sorted(cache.iterdir()):
        if path.is_dir() and pattern.match(path.name) and path.name not in current:
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (cache / f".{path.name}.lock").unlink()
            removed.append(path)
    return removed


def _model_dir_of(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.parents[1] if path.name == "model.ckpt" else path


# --- the content-keyed, atomic build -----------------------------------------------------------

def sample_texts(sample_dir: Path | None = None) -> list[str]:
    """Every text string in the shipped sample files, in a stable order (files sorted by path)."""
    sample_dir = SAMPLE_DIR if sample_dir is None else sample_dir
    files = sorted(p for p in sample_dir.rglob("*") if p.is_file() and p.suffix in _SAMPLE_SUFFIXES)
    texts: list[str] = []
    for path in files:
        raw = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".jsonl":
                for line in raw.splitlines():
                    if line.strip():
                        texts.extend(_strings_in(json.loads(line)))
            elif path.suffix == ".json":
                texts.extend(_strings_in(json.loads(raw)))
            elif path.suffix == ".tsv":
                texts.extend(cell for line in raw.splitlines() for cell in line.split("\t"))
            else:
                texts.extend(raw.splitlines())
        except json.JSONDecodeError as err:
            raise SdrrlError(f"Sample file {str(path)!r} is not valid JSON ({err.msg}, line {err.lineno}).",
                             "fix that file: the tiny tokenizers are trained on every sample file.") from None
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise SdrrlError(f"No sample text found under {str(sample_dir)!r} to train the tiny tokenizers on.",
                         "reinstall sdrrl (the package data sdrrl/data/sample/*.json* is missing).")
    return texts


def _strings_in(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings_in(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings_in(value)


def content_key(name: str, settings: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """Short hash of what a build depends on: builder, settings, version, training text, inputs."""
    return fingerprint({"builder": name, "version": TINY_MODELS_VERSION, "settings": settings,
                        "corpus": fingerprint(sample_texts()), "extra": extra or {}})[:16]


def _resolve_cache(cache_dir: str | os.PathLike | None) -> Path:
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return ensure_writable_dir(cache).resolve()


def build_once(cache_dir: str | os.PathLike | None, name: str, settings: dict[str, Any],
               build: Callable[[Path, Path], None], extra: dict[str, Any] | None = None) -> Path:
    """Return ``cache_dir/<name>-<key>``, calling ``build(tmp_dir, final_dir)`` only if it is missing.

    ``build`` fills ``tmp_dir``; ``final_dir`` is where it will live (for files that must name their
    own absolute location). The rename makes the model appear complete or not at all.
    """
    cache = _resolve_cache(cache_dir)
    final = cache / f"{name}-{content_key(name, settings, extra)}"
    if final.is_dir():
        return final
    # one builder per model, across processes (two test sessions) and threads
    builder = DirLock(cache / f".{final.name}.lock", f"build of the tiny model {final.name} in {cache}")
    with acquired(builder, wait=None, quiet_s=5.0):
        if final.is_dir():  # another process finished it while we waited
            return final
        for stale in cache.glob(f".{final.name}.building-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{final.name}.building-"))
        try:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
            start = time.perf_counter()
            build(tmp, final)
            (tmp / "sdrrl-tiny.json").write_text(json.dumps({
                "builder": name, "version": TINY_MODELS_VERSION, "settings": settings,
                "extra": extra or {}, "build_seconds": round(time.perf_counter() - start, 2),
            }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    BUILD_LOG.append(name)
    return final


def _merged(defaults: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    settings = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in defaults:
            raise SdrrlError(f"Unknown tiny-model setting {key!r}.", f"use one of: {', '.join(defaults)}.")
        settings[key] = value
    return settings


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch for one build without disturbing the caller's random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# --- tokenizers ------------------------------------------------------------------------------

def _train_sentencepiece(texts: list[str], vocab_size: int, seed: int) -> bytes:
    """A unigram sentencepiece model trained in memory; ids 0/1/2 are <unk>/<s>/</s> as in fairseq."""
    import sentencepiece as spm

    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,      # the sample text is small: take what it supports
        character_coverage=1.0,      # keep every character of every script in the table
        num_threads=1,               # one thread: the same pieces on every machine
        shuffle_input_sentence=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2,
    )
    return model.getvalue()


def _train_byte_level_bpe(texts: list[str], vocab_size: int):
    """A LLaMA-style byte-level BPE tokenizer (adds <s> like LLaMA when special tokens are on)."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos_id = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)])
    return tokenizer


# --- the builders ----------------------------------------------------------------------------

def tiny_llama(cache_dir: str | os.PathLike | None = None, settings: dict[str, Any] | None = None) -> Path:
    """A tiny LLaMA causal LM + byte-level BPE tokenizer (HF directory)."""
    cfg = _merged(LLAMA_SETTINGS, settings)

    def build(tmp: Path, final: Path) -> None:
        from transformers import (
            GenerationConfig,
            LlamaConfig,
            LlamaForCausalLM,
            PreTrainedTokenizerFast,
        )

        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=_train_byte_level_bpe(sample_texts(), cfg["vocab_size"]),
            bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
            model_max_length=cfg["max_position_embeddings"],
            padding_side="left",  # decoder-only batch generation pads on the left
            model_input_names=["input_ids", "attention_mask"],  # no token_type_ids: LLaMA takes none
        )
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            num_attention_heads=cfg["num_attention_heads"],
            num_key_value_heads=cfg["num_key_value_heads"],
            max_position_embeddings=cfg["max_position_embeddings"],
            tie_word_embeddings=cfg["tie_word_embeddings"],
            initializer_range=cfg["initializer_range"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            torch_dtype="float32",
        )
        with _seeded(cfg["seed"]):
            model = LlamaForCausalLM(config)
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    return build_once(cache_dir, "llama", cfg, build)


def _language_codes() -> list[str]:
    """Every NLLB code the tokenizer must know: fairseq's list, plus any table code it lacks."""
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    from sdrrl.languages import LANGUAGES

    codes = list(FAIRSEQ_LANGUAGE_CODES)
    codes += [lang.nllb for lang in LANGUAGES.values() if lang.nllb not in codes]
    return codes


def tiny_nllb(cache_dir: str | os.PathLike | None = None, settings: dict[str, Any] | None = None) -> Path:
    """A tiny NLLB-architecture (M2M100) translation model + NLLB tokenizer (HF directory)."""
    cfg = _merged(NLLB_SETTINGS, settings)

    def build(tmp: Path, final: Path) -> None:
        from transformers import (
            GenerationConfig,
            M2M100Config,
            M2M100ForConditionalGeneration,
            NllbTokenizerFast,
        )

        spm_file = tmp / "sentencepiece.bpe.model"
        spm_file.write_bytes(_train_sentencepiece(sample_texts(), cfg["sp_vocab_size"], cfg["seed"]))
        tokenizer = NllbTokenizerFast(
            vocab_file=str(spm_file), additional_special_tokens=_language_codes(),
            src_lang="eng_Latn", model_max_length=cfg["max_position_embeddings"])
        config = M2M100Config(
            vocab_size=len(tokenizer),  # the CTranslate2 converter reads the vocabulary up to this size
            d_model=cfg["d_model"],
            encoder_layers=cfg["encoder_layers"],
            decoder_layers=cfg["decoder_layers"],
            encoder_attention_heads=cfg["encoder_attention_heads"],
            decoder_attention_heads=cfg["decoder_attention_heads"],
            encoder_ffn_dim=cfg["encoder_ffn_dim"],
            decoder_ffn_dim=cfg["decoder_ffn_dim"],
            max_position_embeddings=cfg["max_position_embeddings"],
            activation_function="relu",
            scale_embedding=True,
            init_std=cfg["init_std"],
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.eos_token_id,  # as real NLLB: </s> starts decoding
            tokenizer_class="NllbTokenizer",
            torch_dtype="float32",
        )
        with _seeded(cfg["seed"]):
            model = M2M100ForConditionalGeneration(config)
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=tokenizer.eos_token_id,
            max_length=cfg["max_length"])
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)  # keeps sentencepiece.bpe.model: the slow tokenizer loads too

    return build_once(cache_dir, "nllb", cfg, build)


def tiny_xlmr(cache_dir: str | os.PathLike | None = None, settings: dict[str, Any] | None = None) -> Path:
    """A tiny XLM-R encoder + tokenizer (HF directory): the encoder the tiny COMET models name."""
    cfg = _merged(XLMR_SETTINGS, settings)

    def build(tmp: Path, final: Path) -> None:
        from transformers import (
            XLMRobertaConfig,
            XLMRobertaModel,
            XLMRobertaTokenizerFast,
        )

        spm_file = tmp / "sentencepiece.bpe.model"
        spm_file.write_bytes(_train_sentencepiece(sample_texts(), cfg["sp_vocab_size"], cfg["seed"]))
        tokenizer = XLMRobertaTokenizerFast(vocab_file=str(spm_file),
                                            model_max_length=cfg["max_position_embeddings"] - 2)
        config = XLMRobertaConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg["hidden_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            num_attention_heads=cfg["num_attention_heads"],
            intermediate_size=cfg["intermediate_size"],
            max_position_embeddings=cfg["max_position_embeddings"],
            type_vocab_size=1,
            initializer_range=cfg["initializer_range"],
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            torch_dtype="float32",
        )
        with _seeded(cfg["seed"]):
            model = XLMRobertaModel(config, add_pooling_layer=False)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    return build_once(cache_dir, "xlmr", cfg, build)


def _tiny_comet(cache_dir: str | os.PathLike | None, name: str, defaults: dict[str, Any],
                settings: dict[str, Any] | None) -> Path:
    """A COMET checkpoint on the tiny XLM-R: ``<dir>/checkpoints/model.ckpt`` + ``<dir>/hparams.yaml``."""
    cfg = _merged(defaults, settings)
    cache = _resolve_cache(cache_dir)
    encoder_dir = tiny_xlmr(cache)
    # hparams name the encoder by absolute path, so the key carries it: a moved cache rebuilds.
    extra = {"pretrained_model": str(encoder_dir)}

    def build(tmp: Path, final: Path) -> None:
        import pytorch_lightning
        import torch
        import yaml
        from comet.models import str2model

        model_class = str2model[cfg["class_identifier"]]
        hparams = dict(cfg["hparams"], pretrained_model=str(encoder_dir), load_pretrained_weights=False,
                       local_files_only=True, train_data=[], validation_data=[])
        with _seeded(cfg["seed"]):
            # The final activation has no weights: build without it to read raw outputs, save with it.
            model = model_class(**dict(hparams, final_activation=None))
        _calibrate_last_layer(model, cfg["calibration"])
        saved = {key: value for key, value in hparams.items() if key != "local_files_only"}
        (tmp / "checkpoints").mkdir()
        torch.save({
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "hyper_parameters": saved,
            "pytorch-lightning_version": pytorch_lightning.__version__,
            "epoch": 0,
            "global_step": 0,
        }, tmp / "checkpoints" / "model.ckpt")
        (tmp / "hparams.yaml").write_text(
            yaml.safe_dump(dict(saved, class_identifier=cfg["class_identifier"]), sort_keys=True),
            encoding="utf-8")

    return build_once(cache, name, cfg, build, extra) / "checkpoints" / "model.ckpt"


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence a library's info chatter (device banners, tips) during an internal step."""
    import logging

    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _calibration_rows(count: int) -> list[dict[str, str]]:
    """Deterministic (src, mt, ref) rows that pair unrelated sample sentences."""
    texts = sample_texts()
    n = len(texts)
    return [{"src": texts[i % n], "mt": texts[(i + n // 2) % n], "ref": texts[(i + n // 3) % n]}
            for i in range(count)]


def _calibrate_last_layer(model: Any, calibration: dict[str, Any]) -> None:
    """Rescale the estimator's last linear layer so raw outputs get the wanted mean and spread."""
    import statistics

    import torch

    with _quiet_loggers("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "comet"):
        raw = model.predict(_calibration_rows(calibration["rows"]), batch_size=16, gpus=0,
                            progress_bar=False).scores
    mean, spread = statistics.fmean(raw), statistics.pstdev(raw)
    scale = calibration["std"] / spread if spread > 0 else 1.0
    last_linear = [m for m in model.estimator.ff if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # a*(w.h + b) + (target - a*mean) == a*(raw - mean) + target
        last_linear.weight.mul_(scale)
        last_linear.bias.mul_(scale).add_(calibration["mean"] - scale * mean)


def tiny_comet_qe(cache_dir: str | os.PathLike | None = None, settings: dict[str, Any] | None = None) -> Path:
    """A tiny CometKiwi-shaped QE model (src + mt, no reference); returns its ``model.ckpt``."""
    return _tiny_comet(cache_dir, "comet-qe", COMET_QE_SETTINGS, settings)


def tiny_comet_ref(cache_dir: str | os.PathLike | None = None,
                   settings: dict[str, Any] | None = None) -> Path:
    """A tiny wmt22-comet-da-shaped reference-based model (src + mt + ref); returns its ``model.ckpt``."""
    return _tiny_comet(cache_dir, "comet-ref", COMET_REF_SETTINGS, settings)


def convert_to_ctranslate2(model_dir: str | os.PathLike, output_dir: str | os.PathLike,
                           quantization: str | None = None) -> Path:
    """Convert an HF translation model directory with CTranslate2's own converter (no-op if done)."""
    out = Path(output_dir)
    if (out / "model.bin").is_file():
        return out
    import ctranslate2

    ensure_writable_dir(out.parent)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.converting-"))
    try:
        ctranslate2.converters.TransformersConverter(str(model_dir)).convert(
            str(tmp), quantization=quantization, force=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
