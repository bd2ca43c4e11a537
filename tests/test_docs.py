"""Every command shown in README.md and docs/*.md, run in a dry form, so a renamed key or target fails.

Fenced ``bash`` blocks are parsed line by line. ``rtseg-*`` Hydra entrypoints have their overrides
composed in-process against the entrypoint's config (what ``--cfg job`` would check, without a
process per command); ``-m`` sweeps are expanded one value at a time, and a sweep preset's own
``hydra.sweeper.params`` are composed too. ``make X`` must be a target, and the ``rtseg-*`` lines it
would run (``make -n X``) are composed the same way. ``<run>``-style placeholders and paths that
are not on this machine are fine: composing never reads them.
"""

from __future__ import annotations

import re
import shlex
import statistics
import subprocess
from functools import cache
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rtseg.utils.config import compose_config

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# console script -> the Hydra config it composes (None: a plain argparse command)
CONFIGS = {
    "rtseg-train": "train",
    "rtseg-eval": "eval",
    "rtseg-bench": "benchmark",
    "rtseg-export": "export",
    "rtseg-realtime": "realtime",
    "rtseg-targets": "targets",
    "rtseg-compare": None,
}


def shell_commands(text: str) -> list[str]:
    """The commands of the fenced bash blocks: comments dropped, ``\\`` continuations joined."""
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def documented_commands() -> list[tuple[str, str]]:
    return [(doc.name, cmd) for doc in DOCS for cmd in shell_commands(doc.read_text())]


def test_the_docs_show_commands():
    programs = {shlex.split(cmd)[0].rsplit("/", 1)[-1] for _, cmd in documented_commands()}
    assert {"make", "rtseg-train", "rtseg-bench", "rtseg-realtime", "rtseg-compare"} <= programs


def test_every_entrypoint_is_a_console_script():
    section = (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    assert set(re.findall(r"^(rtseg-[\w-]+) =", section, re.M)) == set(CONFIGS)


def placeholders_filled(word: str) -> str:
    """``<run>`` and shell substitutions ``$(...)`` become plain values Hydra's grammar accepts."""
    word = re.sub(r"\$\([^)]*\)", "placeholder", word)
    return re.sub(r"<([\w-]+)>", r"\1", word)


def sweep_expanded(overrides: list[str]) -> list[list[str]]:
    """One override list per value of each sweep (``a=1,2 b=x,y``: 1 x, 2 x, 1 y), not the product."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    firsts = [
        f"{o.get_key_element()}={next(o.sweep_string_iterator())}"
        if o.is_sweep_override()
        else o.input_line
        for o in parsed
    ]
    runs = [firsts]
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            runs += [
                [*firsts[:i], f"{o.get_key_element()}={v}", *firsts[i + 1 :]]
                for v in list(o.sweep_string_iterator())[1:]
            ]
    return runs


@cache
def compose_checked(config_name: str, overrides: tuple[str, ...]):
    """Compose as the entrypoint would and resolve all but Hydra's runtime values."""
    cfg = compose_config(config_name, list(overrides), hydra=True)
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    job.paths.output_dir = "run"  # Hydra's runtime value, set when a job starts
    OmegaConf.resolve(job)
    return cfg


def check_rtseg_command(command: str) -> None:
    program, *args = shlex.split(placeholders_filled(command))
    program = program.rsplit("/", 1)[-1]
    assert program in CONFIGS, f"{program}: not a console script of rtseg"
    config_name = CONFIGS[program]
    if config_name is None:
        return
    multirun = "-m" in args or "--multirun" in args
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    assert not [a for a in overrides if a.startswith("-")], f"unknown flag in {command}"
    runs = sweep_expanded(overrides) if multirun else [overrides]
    for run in runs:
        cfg = compose_checked(config_name, tuple(run))
    params = OmegaConf.select(cfg, "hydra.sweeper.params") if multirun else None
    for key, value in (params or {}).items():
        parsed = OverridesParser.create().parse_override(f"{key}={value}")
        if parsed.is_discrete_sweep():
            for one in sweep_expanded([f"{key}={value}"]):
                compose_checked(config_name, (*runs[0], *one))
        else:  # an interval: the key must at least be there
            assert OmegaConf.select(cfg, key, default=KeyError) is not KeyError, key


def check_pip_install(command: str) -> None:
    """``pip install .`` / ``'.[a,b]'`` / ``-c FILE``: the extras are declared and the files exist."""
    words = shlex.split(command)[2:]
    declared = set(
        re.findall(
            r"^([\w-]+) = \[",
            (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1],
            re.M,
        )
    )
    for i, word in enumerate(words):
        if word == "-c":
            assert (REPO / words[i + 1]).is_file(), f"{command}: no {words[i + 1]}"
        found = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
        if found and found.group(1):
            missing = set(found.group(1).split(",")) - declared
            assert not missing, f"{command}: extras {sorted(missing)} are not in pyproject.toml"


def without_env(command: str) -> str:
    """``NAME=value cmd ...`` -> ``cmd ...`` (the variables are the shell's, not Hydra's)."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words = words[1:]
    return shlex.join(words)


@pytest.mark.parametrize(
    ("doc", "command"),
    [pytest.param(d, c, id=f"{d}: {c[:60]}") for d, c in documented_commands()],
)
def test_documented_command(doc, command):
    command = without_env(command)
    program = shlex.split(command)[0].rsplit("/", 1)[-1]
    if program == "make":
        targets = [w for w in shlex.split(command)[1:] if "=" not in w]
        for target in targets:
            dry = subprocess.run(
                ["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=30
            )
            assert dry.returncode == 0, f"{doc}: make {target}: {dry.stderr.strip()}"
            for line in dry.stdout.replace("\\\n", " ").splitlines():
                if re.match(r"^\S*/?rtseg-\w+ ", line.strip()):
                    check_rtseg_command(line.strip())
    elif program.startswith("rtseg-"):
        check_rtseg_command(command)
    elif program == "pip" and shlex.split(command)[1] == "install":
        check_pip_install(command)
    else:
        assert program in ("export", "find"), f"{doc}: an unchecked command: {command}"


def test_make_targets_honour_rtseg_log_dir(tmp_path):
    """docs/tracking.md: make leaderboard and make wandb-sync read RTSEG_LOG_DIR like the entrypoints."""
    env = {"PATH": "/usr/bin:/bin", "RTSEG_LOG_DIR": str(tmp_path)}
    dry = subprocess.run(
        ["make", "-n", "leaderboard", "wandb-sync"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    lines = [ln for ln in dry.stdout.splitlines() if "rtseg-compare" in ln or "wandb sync" in ln]
    assert len(lines) == 2 and all(str(tmp_path) in ln for ln in lines), dry.stdout


REPO_PATH = re.compile(r"`((?:src|tests|conf|experiments|tools|notebooks|docs)/[^`\s]*)`")


def test_files_the_docs_name_exist():
    """A path in backticks (`tests/models/test_x.py`, `conf/debug/fdr.yaml`) names a file that is there."""
    missing = []
    for doc in DOCS:
        for path in REPO_PATH.findall(doc.read_text()):
            path = path.split("::")[0].rstrip(".,:;)")
            if re.search(r"[<>*${}]", path):
                continue  # a pattern or a placeholder
            if not (REPO / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert not missing, missing


def test_pictures_the_docs_show():
    """Every picture a doc embeds (``![...](docs/x.png)``) is committed and small (under 300 KB:
    the README's first screen, cloned by everyone)."""
    shown = [
        (doc, (doc.parent / path).resolve())
        for doc in DOCS
        for path in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", doc.read_text())
    ]
    assert any(doc.name == "README.md" for doc, _ in shown), "the README shows no picture"
    for doc, path in shown:
        assert path.is_file(), f"{doc.name}: no {path}"
        assert path.stat().st_size < 300_000, f"{doc.name}: {path.name} is {path.stat().st_size} B"
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(path)], cwd=REPO, capture_output=True
        )
        assert tracked.returncode == 0, f"{doc.name}: {path.name} is not committed"


def layout_text() -> dict[str, str]:
    """docs/design.md's Layout: the text of each src/rtseg package's entry ("" for the top-level
    modules: errors.py, metrics.py...)."""
    text = (REPO / "docs/design.md").read_text()
    layout = text.split("## Layout")[1].split("```")[1]
    entries, package = {}, None
    for line in layout.splitlines():
        head = re.match(r"^  (\S+)\s", line)
        if re.match(r"^\S", line):
            package = None  # a folder outside src/rtseg (conf/, tools/, tests/...)
        elif head:
            package = head.group(1)
        if package is not None:
            key = package.rstrip("/") if package.endswith("/") else ""
            entries[key] = entries.get(key, "") + line + "\n"
    return entries


def test_design_layout_names_every_module():
    """docs/design.md's Layout names every committed module of src/rtseg (``paths`` or
    ``paths.py``), and every ``x.py`` it names is there."""
    entries = layout_text()
    tracked = subprocess.run(
        ["git", "ls-files", "src/rtseg"], cwd=REPO, capture_output=True, text=True
    ).stdout.split()
    unnamed = []
    for path in tracked:
        rel = Path(path).relative_to("src/rtseg")
        if rel.suffix != ".py" or rel.name == "__init__.py" or len(rel.parts) > 2:
            continue
        entry = entries.get(rel.parts[0] if len(rel.parts) == 2 else "", "")
        if not re.search(rf"(?<![\w.]){rel.stem}(\.py)?\b", entry):
            unnamed.append(str(rel))
    assert not unnamed, f"docs/design.md's Layout does not name {unnamed}"
    src = REPO / "src/rtseg"
    gone = [
        f"{package}/{name}"
        for package, entry in entries.items()
        for name in re.findall(r"\b([a-z_]+\.py)\b", entry)
        if not (src / package / name).is_file()
    ]
    assert not gone, f"docs/design.md's Layout names files that are not there: {gone}"


def records(path: str) -> list[dict]:
    import csv

    with open(REPO / "experiments" / path, newline="") as f:
        return list(csv.DictReader(f))


def row_of(rows: list[dict], **match) -> dict:
    (row,) = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return row


def results_row(experiment: str) -> str:
    """README.md's Results row of one experiment."""
    (row,) = [
        line
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith(f"| [{experiment}](experiments/{experiment})")
    ]
    return row


def quoted_figures():
    """(document text, the figure as quoted, where it comes from) for every figure README.md's
    Results table and docs/models.md quote from an experiment's committed CSV."""
    ship = records("camvid_ppliteseg_lite0/bench/results.csv")
    auto, fp32 = row_of(ship, backend="auto"), row_of(ship, backend="openvino")
    row = results_row("camvid_ppliteseg_lite0")
    yield row, f"int8 {float(auto['fps']):.1f} fps model-only", "auto's fps"
    yield row, f"({100 * float(auto['miou_drop']):+.2f} val mIoU points", "auto's mIoU drop"
    yield row, f"vs {float(fp32['fps']):.1f} fps fp32", "OpenVINO fp32's fps"
    models = (REPO / "docs/models.md").read_text()
    cost = (
        f"`ppliteseg` {int(auto['params']) / 1e6:.2f} M params, {float(auto['gflops']):.2f} GFLOPs"
    )
    yield models, cost, "the shipped network's cost"

    nncf = records("int8_nncf/camvid/results.csv")
    row = results_row("int8_nncf")
    ms = {v: float(row_of(nncf, variant=v)["median_ms"]) for v in ("qdq-int8", "nncf-int8", "fp32")}
    yield row, f"QDQ {ms['qdq-int8']:.1f} ms vs NNCF {ms['nncf-int8']:.1f} ms", "int8 latencies"
    yield row, f"fp32 {ms['fp32']:.1f} ms", "fp32 latency"
    worst = max(float(r["miou_drop_points"]) for r in nncf)
    yield row, f"within {worst:.2f} mIoU points", "the worst int8 drop"

    sat = records("int8_saturation/results.csv")
    row = results_row("int8_saturation")
    for bits in (8, 7):
        drop = float(
            row_of(sat, runtime="onnxruntime", variant=f"int8, {bits}-bit weights")[
                "miou_drop_points"
            ]
        )
        yield row, f"-{drop:.2f}", f"ONNX Runtime's drop with {bits}-bit weights"

    pareto = records("camvid_pareto/results.csv")
    row = results_row("camvid_pareto")
    held_out = " / ".join(f"{float(r['seq_val_miou']):.2f}" for r in pareto)
    yield row, held_out, "the held-out sequence's mIoU of each network"

    ablation = {r["run"]: float(r["last"]) for r in records("camvid_generalisation/ablation.csv")}
    row = results_row("camvid_generalisation")
    for run, change in (("ds", "deep supervision"), ("ohem", "OHEM"), ("ema", "EMA")):
        yield row, f"{change} {ablation[run] - ablation['base']:+.2f}", f"{run} - base"
    yield row, f"augmentation {ablation['aug'] - ablation['base']:+.2f}", "aug - base"

    folds = records("camvid_folds/distillation/folds.csv")
    last = {(r["change"], r["seed"]): float(r["miou_last"]) for r in folds if r["miou_last"]}
    row, doc = (
        results_row("camvid_folds/distillation"),
        (REPO / "experiments/camvid_folds/distillation/README.md").read_text(),
    )

    def gains(change: str) -> list[float]:
        return [v - last[("ft360", s)] for (c, s), v in last.items() if c == change]

    for change, words in (("kdft360", "per-pixel KL"), ("kdcwd360", "channel-wise"),
                          ("kdagree360", "KL where the teacher is right"),
                          ("kdlong360", "a stronger teacher (3x the epochs)"), ("ftohem360", "OHEM"),
                          ("ftdice360", "CE + Dice"), ("ftbound360", "boundary-aware CE")):  # fmt: skip
        yield row, f"{words} {statistics.mean(gains(change)):+.2f}", f"{change} - ft360"
        yield (
            doc,
            f"{statistics.mean(gains(change)):+.2f} ({statistics.stdev(gains(change)):.2f})",
            change,
        )
    ft540 = gains("ft540")
    quoted = f"{statistics.mean(ft540):+.2f} (sd {statistics.stdev(ft540):.2f})"
    yield row, f"540x720 fine-tune {quoted}", "ft540 - ft360"


@pytest.mark.parametrize(
    "text, quoted, source", [pytest.param(*q, id=q[1]) for q in quoted_figures()]
)
def test_quoted_figures_match_the_records(text, quoted, source):
    """A figure quoted from an experiment is read from the experiment's own record, so a new run
    (or an edit of the prose) that makes them disagree fails here."""
    assert quoted in text, f"{source}: the record says {quoted!r}; the doc says otherwise"
