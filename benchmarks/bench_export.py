"""Compose + export at paper scale from cached translations: 52,002 rows x 14 targets x every method.

    .venv/bin/python benchmarks/bench_export.py [--rows 52002] [--workers 2] [--dir /tmp/...] [--keep]

1. Writes a synthetic pipeline work directory (untimed): Alpaca-sized D_synth and one filter file
   per target language, texts drawn from each language's own words (sample sentences shipped in
   sdrrl/data/sample) at Alpaca-like lengths (question ~110 chars, gold answer ~270, generated
   answer ~600, translations ~10% longer), 5% of translations rejected, plus synthetic bilingual
   dictionaries (the English vocabulary mapped onto target words, so most question tokens are
   covered: more switching work than real MUSE coverage) and 1,000-pair parallel corpora.
2. Times `export` in a child process and samples the resident memory of it and its workers, then
   times the same export again into the registry it made (the transaction's extra work: stage
   with hard links to the old files, switch, delete the old folder).
3. Times plain writes (write + fsync) of the same bytes, file by file, for the ratio.
Prints a Markdown table (also written with --report FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin"))

TARGETS = ["ces", "dan", "ukr", "bul", "fin", "hun", "nob", "ind", "jpn", "kor", "por", "slv", "vie", "pol"]
WORD = re.compile(r"\w+")


def _pools() -> dict[str, list[str]]:
    sample = ROOT / "plugin" / "sdrrl" / "data" / "sample"
    texts = json.loads((sample / "language_samples.json").read_text(encoding="utf-8"))
    eng = [json.loads(line) for line in (sample / "instructions_eng.jsonl").read_text().splitlines() if line]
    texts["eng"] = texts["eng"] + [r["instruction"] + " " + r["output"] for r in eng]
    pools = {}
    for lang, ts in texts.items():
        words = WORD.findall(" ".join(ts))
        if lang in ("jpn", "tha", "khm"):  # unspaced scripts: use short character runs as "words"
            joined = "".join(ts)
            words = [joined[i:i + 3] for i in range(0, len(joined) - 3, 2)]
        pools[lang] = words
    return pools


def _text(rng: random.Random, words: list[str], mean_chars: int, joiner: str = " ") -> str:
    target = max(12, int(rng.lognormvariate(0, 0.6) * mean_chars / 1.2))
    out, n = [], 0
    while n < target:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + len(joiner)
    s = joiner.join(out)
    return s[:1].upper() + s[1:] + "."


def make_work(dest: Path, rows: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    pools = _pools()
    (dest / "sample").mkdir(parents=True, exist_ok=True)
    (dest / "filter").mkdir(exist_ok=True)
    (dest / "dicts").mkdir(exist_ok=True)
    (dest / "parallel").mkdir(exist_ok=True)
    pool_n = 4000  # distinct answers per field, drawn from at random (generation speed only)
    en = pools["eng"]
    ys = [_text(rng, en, 270) for _ in range(pool_n)]
    yhs = [_text(rng, en, 600) for _ in range(pool_n)]
    synth_lines, base = [], []
    for i in range(rows):  # every question distinct (as in Alpaca): no cache can shortcut switching
        r = {"id": i, "from": "D" if rng.random() < 0.5 else "G", "x": _text(rng, en, 110), "y": rng.choice(ys),
             "y_hat": rng.choice(yhs)}
        base.append(r)
        synth_lines.append(json.dumps(r, ensure_ascii=False))
    (dest / "sample" / "synth.jsonl").write_text("\n".join(synth_lines) + "\n", encoding="utf-8")
    with open(dest / "source.jsonl", "w", encoding="utf-8") as fh:
        for r in base:
            fh.write(json.dumps({"id": r["id"], "instruction": r["x"], "input": "", "output": r["y"]},
                                ensure_ascii=False) + "\n")
    (dest / "generate").mkdir(exist_ok=True)
    with open(dest / "generate" / "responses.jsonl", "w", encoding="utf-8") as fh:
        for r in base:
            fh.write(json.dumps({"id": r["id"], "response": r["y_hat"]}, ensure_ascii=False) + "\n")
    from sdrrl import languages
    from sdrrl.pipeline.translate import source_digest

    (dest / "translate").mkdir(exist_ok=True)

    en_vocab = sorted({w.lower() for w in en})
    for tgt in TARGETS:
        words = pools[tgt]
        joiner = "" if tgt in ("jpn",) else " "
        ty = [_text(rng, words, 300, joiner) for _ in range(pool_n)]
        tyh = [_text(rng, words, 660, joiner) for _ in range(pool_n)]
        with open(dest / "filter" / f"eng-{tgt}.jsonl", "w", encoding="utf-8") as fh, \
                open(dest / "filter" / f"eng-{tgt}.excluded.jsonl", "w", encoding="utf-8") as exc, \
                open(dest / "translate" / f"eng-{tgt}.jsonl", "w", encoding="utf-8") as mt:
            for r in base:
                row = dict(r, x_mt=_text(rng, words, 120, joiner), y_mt=rng.choice(ty), y_hat_mt=rng.choice(tyh))
                mt.write(json.dumps({"id": r["id"], "x_mt": row["x_mt"], "y_mt": row["y_mt"],
                                     "y_hat_mt": row["y_hat_mt"], "source_sha1": source_digest(r)},
                                    ensure_ascii=False) + "\n")
                for field in ("x_mt", "y_mt", "y_hat_mt"):
                    if rng.random() < 0.05:
                        row[field] = None
                        exc.write(json.dumps({"id": r["id"], "field": field, "stage": "qe", "reason": "below 0.8",
                                              "text": "", "translation": "", "score": 0.5}) + "\n")
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        code = languages.get(tgt).dictionary
        tw = sorted({w.lower() for w in words}) or ["x"]
        (dest / "dicts" / f"en-{code}.txt").write_text(
            "".join(f"{w} {rng.choice(tw)}\n" for w in en_vocab), encoding="utf-8")
        with open(dest / "parallel" / f"eng-{tgt}.tsv", "w", encoding="utf-8") as fh:
            for _ in range(1100):
                fh.write(f"{_text(rng, en, 120)}\t{_text(rng, words, 130, joiner)}\n")
    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "compose"))
    from helpers import record_as_one_build  # the records each stage writes: export refuses a dir without them

    record_as_one_build(dest, "eng", TARGETS, "synthetic (benchmarks/bench_export.py)")
    config = {"work_dir": str(dest), "source": "eng", "targets": TARGETS, "methods": "all", "seed": 42,
              "code_switch": {"p": 0.15, "dictionaries": str(dest / "dicts")},
              "parallel": {"corpus": str(dest / "parallel" / "{src}-{tgt}.tsv"), "pairs": 1000}}
    (dest / "compose.json").write_text(json.dumps(config, indent=2))
    return config


def _tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def timed_export(config: Path, out: Path, workers: int) -> tuple[float, int, str]:
    import psutil

    cmd = [sys.executable, "-c", "import sys; from sdrrl.cli import main; sys.exit(main(sys.argv[1:]))",
           "export", "--config", str(config), "--out", str(out), "--workers", str(workers)]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "plugin")})
    peak = 0
    ps = psutil.Process(child.pid)
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(ps))
            time.sleep(0.1)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    stdout, stderr = child.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    t.join()
    if child.returncode != 0:
        raise SystemExit(f"export failed ({child.returncode}):\n{stderr[-3000:]}")
    return elapsed, peak, stdout.strip()


def plain_write(out: Path, scratch: Path) -> tuple[float, float, int, int]:
    """Seconds to write (and fsync) every data file's bytes, as a naive exporter would (all
    names), and the part of that spent on the distinct files (what the export really writes)."""
    logical = physical = 0
    seen: set[int] = set()
    elapsed = distinct = 0.0
    for f in sorted(out.glob("*.jsonl")):
        data = f.read_bytes()
        st = f.stat()
        logical += len(data)
        first = st.st_ino not in seen
        seen.add(st.st_ino)
        t = time.perf_counter()
        with open(scratch, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        dt = time.perf_counter() - t
        elapsed += dt
        if first:
            physical += len(data)
            distinct += dt
        scratch.unlink()
    return elapsed, distinct, logical, physical


def time_generation_check(config: Path) -> float:
    """The part of an export that checks the work directory comes from one build (sdrrl export does it
    before composing): timed apart, in this process."""
    from sdrrl.compose import config as compose_config
    from sdrrl.compose import preflight

    cfg = compose_config.load(config)
    t = time.perf_counter()
    preflight.check_generation(cfg)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=52002)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/sdrrl-bench-export")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--report", default=None)
    args = ap.parse_args()
    base = Path(args.dir)
    shutil.rmtree(base, ignore_errors=True)
    t = time.perf_counter()
    make_work(base / "work", args.rows)
    gen_s = time.perf_counter() - t
    in_bytes = sum(p.stat().st_size for p in (base / "work").rglob("*.jsonl"))
    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    check_s = time_generation_check(base / "work" / "compose.json")
    try:
        export_s, peak, said = timed_export(base / "work" / "compose.json", base / "out", args.workers)
        write_s, distinct_s, logical, physical = plain_write(base / "out", base / "scratch.bin")
        # the same export again into the now full registry: the stage starts as hard links to the old
        # files, the switch is one rename, then the old folder (6 GiB) is deleted
        again_s, again_peak, _ = timed_export(base / "work" / "compose.json", base / "out", args.workers)
        manifest = json.loads((base / "out" / "manifest.json").read_text())
        entries = manifest["entries"]
        rows = sum(e["rows"] for e in entries.values())
        unique_rows = sum(e["rows"] for e in entries.values() if "same_content_as" not in e)
        gib = 1024 ** 3
        lines = [
            f"## bench_export ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
            f"workers={args.workers})",
            "",
            f"Command: `.venv/bin/python benchmarks/bench_export.py --rows {args.rows} --workers {args.workers}`",
            "",
            "| figure | value |",
            "|---|---|",
            f"| source rows x targets | {args.rows:,} x {len(TARGETS)} |",
            f"| registry entries (all methods) | {len(entries)} |",
            f"| rows in all entries / distinct rows written | {rows:,} / {unique_rows:,} |",
            f"| input (work dir JSONL) | {in_bytes / gib:.2f} GiB |",
            f"| output bytes, all names / distinct files | {logical / gib:.2f} GiB / {physical / gib:.2f} GiB |",
            f"| export wall time | {export_s:.1f} s |",
            f"| export again into the full registry (transaction: stage, switch, delete the old) | {again_s:.1f} s |",
            f"| of an export: the work-directory generation check (every stage output hashed once, in one "
            f"process; timed apart) | {check_s:.1f} s |",
            f"| peak resident memory (export + workers, summed RSS) | {peak / gib:.2f} GiB |",
            f"| plain write+fsync of the same bytes (all names) | {write_s:.1f} s |",
            f"| ratio export / plain write (all names) | {export_s / write_s:.1f}x |",
            f"| plain write+fsync of the distinct files only | {distinct_s:.1f} s |",
            f"| ratio export / plain write (distinct files) | {export_s / distinct_s:.1f}x |",
            f"| load average before / after (other users of the machine) | {load0} / "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} |",
            f"| generating the synthetic work dir (untimed) | {gen_s:.0f} s |",
            "",
            f"export said: {said}",
        ]
        report = "\n".join(lines)
        print(report)
        if args.report:
            Path(args.report).parent.mkdir(parents=True, exist_ok=True)
            Path(args.report).write_text(report + "\n")
        ok = export_s < 120 and peak < 4 * gib
        print("PASS" if ok else "FAIL: budget is < 120 s and < 4 GiB")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
