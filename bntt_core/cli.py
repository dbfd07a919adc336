"""The `bntt` command: train, resume, evaluate, analyse and convert runs.

    bntt train --preset quickstart --out runs/first            # any flag overrides the preset
    bntt train --num_steps 25 --lr 0.3 --arch vgg9 --dataset cifar10 --batch_size 256 \\
               --leak_mem 0.95 --num_epochs 100 --out runs/c10   # the official README's spelling
    bntt train --resume runs/first                             # after a crash or kill -9
    bntt evaluate runs/first --steps 3                         # accuracy at T and after 3 steps
    bntt analyze runs/first [--quick]                          # the analysis tables
    bntt analyze runs/first --noise-mode unclipped,clipped,shift   # noise curves to compute
    bntt convert runs/ann --out runs/converted --steps 500     # ANN→SNN conversion
    bntt presets                                               # the named recipes
    bntt runs [ROOT ...]                                       # list runs (broken ones with the reason)
    python -m bntt_core train ...                              # the same without the entry point
    torchrun --nproc_per_node 2 -m bntt_core train ...         # data-parallel (gloo on CPU, nccl on CUDA)

Bad input (unknown names, T < 1, missing data, damaged weights, an existing --out, a diverging loss)
ends with one line `error: ...` on stderr and exit code 2; nothing already written is lost.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one `error: ...` line (exit 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, e.g. 0.5,0.7,0.9; got {text!r}") from exc


PRECISIONS = ("auto", "fp32", "bf16")  # = bntt_core.nn.step.PRECISIONS (here: `--help` without importing torch)
NOISE_MODES = ("unclipped", "clipped", "shift")  # = bntt_core.analysis.robustness.NOISE_MODES (imported lazily there)
DEFAULT_NOISE_MODES = "unclipped,clipped"  # = bntt_core.analysis.DEFAULT_NOISE_MODES


def _noise_modes(text: str) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [mode for mode in modes if mode not in NOISE_MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"expected one or more of {','.join(NOISE_MODES)} separated by commas; "
                                         f"got {text!r}")
    return modes


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags whose dest is a TrainConfig field; SUPPRESS keeps absent flags out of the namespace, so
    only the flags actually given override the preset (or the stored config, on --resume)."""
    add = parser.add_argument
    S = argparse.SUPPRESS
    add("--preset", default=S, help="a named recipe (bntt presets); flags override it")
    add("--arch", default=S, help="vgg5 | vgg9 | vgg11 | mlp | seqfc")
    add("--dataset", default=S, help="mnist10k | mnist | fashion-mnist | cifar10 | cifar100 | tiny-imagenet | "
                                     "seq-mnist | dvs-cifar10 | image-folder")
    add("--data-dir", "--data_dir", dest="data_dir", default=S, help="where the dataset lives")
    add("--num-steps", "--num_steps", "--T", dest="num_steps", type=int, default=S, help="time steps T")
    add("--leak", "--leak_mem", dest="leak", type=float, default=S, help="membrane leak λ in (0, 1]")
    add("--threshold", type=float, default=S, help="firing threshold θ")
    add("--norm", default=S, help="bntt | bn (the paper's: one BN called at every step) | bn-joint "
                                  "(statistics over T·B) | tdbn | tebn | ln | none")
    add("--encoding", "--encode", dest="encoding", default=S, help="p | d | poisson | direct")
    add("--reset", default=S, help="soft | hard")
    add("--surrogate", default=S, help="triangle | fast_sigmoid | atan")
    add("--width", type=float, default=S, help="channel multiplier (1.0: the paper's network)")
    add("--ann", dest="spiking", action="store_const", const=False, default=S,
        help="train the ANN twin (ReLU + BN) instead of the SNN")
    add("--epochs", "--num_epochs", dest="epochs", type=int, default=S)
    add("--batch-size", "--batch_size", dest="batch_size", type=int, default=S,
        help="global batch size (split over torchrun processes)")
    add("--lr", type=float, default=S, help="base learning rate")
    add("--optimizer", default=S, help="sgd | adam")
    add("--momentum", type=float, default=S)
    add("--weight-decay", "--weight_decay", dest="weight_decay", type=float, default=S)
    add("--lr-milestones", dest="lr_milestones", type=_fractions, default=S,
        help="fractions of the epochs where lr ÷ 10, e.g. 0.5,0.7,0.9")
    add("--augment", action=argparse.BooleanOptionalAction, default=S,
        help="random crop + flip (image folders without --preset: off below 16 px unless given)")
    add("--crop-padding", dest="crop_padding", type=int, default=S,
        help="random-crop shift in pixels (default 4; image folders without --preset: image size / 8)")
    add("--test-fraction", dest="test_fraction", type=float, default=S,
        help="image folder of class folders without train/ + test/: share of each class held out for "
             "testing (seeded, stratified; default 0.2)")
    add("--strict-images", dest="strict_images", action=argparse.BooleanOptionalAction, default=S,
        help="image folders: an unreadable image is an error (default: skipped with one warning)")
    add("--seed", type=int, default=S)
    add("--split-seed", dest="split_seed", type=int, default=S, help="seed of the train/test split")
    add("--max-train-images", dest="max_train_images", type=int, default=S, help="seeded subset (smoke tests)")
    add("--validation-fraction", "--validation_fraction", dest="validation_fraction", type=float, default=S,
        help="share of the training images held out (seeded, never trained on) to choose the early-exit τ on "
             "in `bntt analyze`, never for model selection; in [0, 1), default 0.1, 0 disables")
    add("--max-test-images", dest="max_test_images", type=int, default=S,
        help="seeded subset (smoke tests; the reported accuracy uses the full test set)")
    add("--device", default=S, help="auto | cpu | cuda | cuda:N | mps")
    add("--threads", type=int, default=S,
        help="CPU threads for torch (default: torch's; the CPU presets use 1, far faster on a busy shared CPU)")
    add("--precision", default=S,
        help="auto (default): bf16 autocast (membrane fp32) where this machine computes bf16 natively — a CPU "
             "with AVX512_BF16 or AMX, a CUDA GPU with bf16 — else fp32, since emulated bf16 (AVX2-only CPUs) is "
             "several times slower than fp32; the choice is stored in config.json (precision_used) | fp32 "
             "(exact) | bf16 (forced; warns where emulated)")
    add("--weights-dtype", dest="weights_dtype", default=S, help="float32 | float16 | bfloat16 (stored weights)")
    add("--eval-batch-size", dest="eval_batch_size", type=int, default=S)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bntt", description="Batch Normalization Through Time spiking networks.",
                     allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser("train", help="train a run (or --resume one)", allow_abbrev=False,
                                description="Train a BNTT network into a run directory. Without --preset "
                                            "the settings are the paper's CIFAR-10 recipe (VGG9, T=25, "
                                            "120 epochs), except that on an image folder the batch size, "
                                            "learning rate and augmentation you do not give are adapted to "
                                            "the data (printed at the start, stored in config.json); "
                                            "`bntt presets` lists the others.")
    _add_train_arguments(train)
    train.add_argument("--out", help="the run directory to create (default runs/<preset>-<time>); never overwritten")
    train.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")

    evaluate = commands.add_parser("evaluate", help="test accuracy of a run (and with early exit)",
                                   allow_abbrev=False)
    evaluate.add_argument("run", metavar="RUN")
    evaluate.add_argument("--steps", type=int, help="also the accuracy after K < T steps")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--data-dir", "--data_dir", dest="data_dir", help="the dataset, if it moved")
    evaluate.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int,
                          help="default: the run's eval batch size (reproduces its number exactly)")
    evaluate.add_argument("--quiet", action="store_true")

    analyze = commands.add_parser("analyze", help="write the analysis tables of a run", allow_abbrev=False)
    analyze.add_argument("run", metavar="RUN")
    analyze.add_argument("--quick", action="store_true", help="a small test subset (seconds, not minutes)")
    analyze.add_argument("--tables", help="comma-separated table names (default: all)")
    analyze.add_argument("--subset", type=int, help="that many test images instead of all")
    analyze.add_argument("--seed", type=int, help="Poisson/noise seed (default: the one training evaluated with)")
    analyze.add_argument("--noise-mode", "--noise-modes", dest="noise_modes", type=_noise_modes,
                         default=_noise_modes(DEFAULT_NOISE_MODES),
                         help="noise curves, comma-separated: unclipped (the paper's: x + σz, not clipped), "
                              "clipped (to [0, 1], as the shipped tables), shift (x + σ, no noise) "
                              f"(default: {DEFAULT_NOISE_MODES})")
    analyze.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int)
    analyze.add_argument("--data-dir", "--data_dir", dest="data_dir", help="the dataset, if it moved")
    analyze.add_argument("--device", default=None)
    analyze.add_argument("--quiet", action="store_true")

    convert = commands.add_parser("convert", help="ANN→SNN conversion of an --ann run", allow_abbrev=False)
    convert.add_argument("ann_run", metavar="ANN_RUN")
    convert.add_argument("--out", required=True, help="the converted run directory to create")
    convert.add_argument("--steps", type=int, default=None, help="time steps of the converted SNN")
    convert.add_argument("--calibration-images", dest="calibration_images", type=int,
                         help="training images used for threshold balancing")
    convert.add_argument("--eval-images", dest="eval_images", type=int, help="limit the test images evaluated")
    convert.add_argument("--seed", type=int)
    convert.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int)
    convert.add_argument("--data-dir", "--data_dir", dest="data_dir", help="the dataset, if it moved")
    convert.add_argument("--device", default=None)
    convert.add_argument("--quiet", action="store_true")

    for command in (evaluate, analyze, convert):
        command.add_argument("--threads", type=int, default=None,
                             help="CPU threads for torch (default: the run's setting, else torch's)")
        command.add_argument("--precision", choices=PRECISIONS, default=None,
                             help="default: the precision the run measured its numbers in (so they reproduce "
                                  "exactly), except bf16 on a machine without native bf16 (no AVX512_BF16/AMX): "
                                  "fp32 there, several times faster; auto: the machine's choice")

    commands.add_parser("presets", help="list the named training recipes")

    listing = commands.add_parser("runs", help="list the runs under some folders")
    listing.add_argument("roots", nargs="*", default=["runs"], metavar="ROOT")
    return parser


# ------------------------------------------------------------------------------------ commands
def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _train(args: argparse.Namespace) -> int:
    from bntt_core.runs.config import TrainConfig
    from bntt_core.runs.presets import preset_settings
    from bntt_core.runs.training import resume, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {key: value for key, value in vars(args).items() if key in fields}
    progress = "quiet" if args.quiet else "bar"
    if args.resume:
        if args.out is not None:
            raise ValueError("--resume continues RUN in place; leave out --out")
        device, threads = given.pop("device", None), given.pop("threads", None)
        result = resume(args.resume, device=device, threads=threads, progress=progress, expect=given)
    else:
        from bntt_core.runs.recipe import AUTO_RECIPE_SETTINGS

        settings = preset_settings(given["preset"]) if "preset" in given else {}
        settings.update(given)
        # flags absent from the namespace (SUPPRESS) were not given: without a preset, an image folder
        # gets those settings adapted to its data (training.adapt_recipe); a preset or a flag always wins
        auto = () if "preset" in given else tuple(name for name in AUTO_RECIPE_SETTINGS if name not in given)
        result = train(TrainConfig.from_dict(settings), args.out, progress=progress, auto=auto)
    if _is_main_process():
        print(f"run: {result.path}")
        print(f"test accuracy: {100 * result.test_accuracy:.2f}% after {result.epochs_done} epochs "
              f"({result.wall_seconds:.0f} s)")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from bntt_core.runs.evaluation import evaluate_run

    bars = []  # created on the first batch, so that an early error is not preceded by a bar

    def progress(done: int, total: int) -> None:
        if args.quiet:
            return
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=total, desc="evaluating", unit="batch", leave=False, file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        result = evaluate_run(args.run, steps=args.steps, device=args.device, data_dir=args.data_dir,
                              batch_size=args.batch_size, threads=args.threads, precision=args.precision,
                              progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(f"test accuracy: {100 * result['test_accuracy']:.2f}% ({result['num_images']} images, "
          f"T = {result['num_steps']}) in {result['precision']}")
    if result["steps"] is not None:
        print(f"after {result['steps']} of {result['num_steps']} steps: {100 * result['accuracy_at_steps']:.2f}%")
    return EXIT_OK


def _import_optional(module: str, command: str):
    """Import a module that another part of the project provides; a clear error if it is not there."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise ValueError(f"`bntt {command}` needs {module}, which this installation does not have yet") from exc
        raise ValueError(f"`bntt {command}` needs the package {exc.name!r}; install the project's "
                         f"dependencies (make install)") from exc


def _progress_printer(quiet: bool):
    """A progress(fraction, message) callback: a tqdm bar, or a line per message when quiet."""
    if quiet:
        last = [None]

        def report(fraction: float, message: str) -> None:
            if message != last[0]:
                print(f"{100 * fraction:5.1f}% {message}", flush=True)
                last[0] = message
        return report, lambda: None
    bars = []  # created on the first report, so that an early error is not preceded by a bar

    def update(fraction: float, message: str) -> None:
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=100, unit="%", leave=False, file=sys.stderr,
                             bar_format="{l_bar}{bar}| {elapsed}"))
        bars[0].set_description_str(message)
        bars[0].update(max(0.0, 100 * fraction - bars[0].n))

    def close() -> None:
        for bar in bars:
            bar.close()
    return update, close


def _call_with_supported(function, *args, **options):
    """Call `function` with the options it declares (None values left out)."""
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    chosen = {key: value for key, value in options.items()
              if value is not None and (takes_any or key in parameters)}
    return function(*args, **chosen)


def _analyze(args: argparse.Namespace) -> int:
    analysis = _import_optional("bntt_core.analysis", "analyze")
    tables = [name.strip() for name in args.tables.split(",") if name.strip()] if args.tables else None
    progress, close = _progress_printer(args.quiet)
    try:
        result = _call_with_supported(analysis.analyze_run, args.run, quick=args.quick, tables=tables,
                                      progress=progress, device=args.device, subset=args.subset, seed=args.seed,
                                      batch_size=args.batch_size, data_dir=args.data_dir,
                                      noise_modes=args.noise_modes, precision=args.precision)
    finally:
        close()
    print(f"analysis written to {os.path.join(args.run, 'analysis')}")
    if isinstance(result, dict) and result:
        print("tables: " + ", ".join(sorted(map(str, result))))
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    conversion = _import_optional("bntt_core.conversion", "convert")
    progress, close = _progress_printer(args.quiet)
    try:
        result = _call_with_supported(conversion.convert_run, args.ann_run, args.out, steps=args.steps,
                                      device=args.device, progress=progress,
                                      calibration_images=args.calibration_images, eval_images=args.eval_images,
                                      seed=args.seed, batch_size=args.batch_size, data_dir=args.data_dir,
                                      precision=args.precision)
    finally:
        close()
    print(f"converted run: {getattr(result, 'path', None) or args.out}")
    return EXIT_OK


def _presets(args: argparse.Namespace) -> int:
    from bntt_core.runs.presets import PRESETS

    for name, preset in PRESETS.items():
        settings = " ".join(f"{key}={value}" for key, value in preset.settings.items())
        print(f"{name}\n    {preset.description}\n    {settings}\n    measured: {preset.measured}")
    print("(measured: runs trained on all their training images; a new run holds out 10% for the early-exit τ "
          "unless given --validation-fraction 0)")
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    from bntt_core.runs.listing import find_runs

    entries = find_runs(args.roots)
    if not entries:
        print(f"no runs under {', '.join(args.roots)}")
    for entry in entries:
        if entry.error:
            print(f"{entry.path}  BROKEN: {entry.error}")
        else:
            accuracy = f"{100 * entry.test_accuracy:.2f}%" if entry.test_accuracy is not None else "-"
            model = "ANN (ReLU + BN)" if entry.spiking is False else f"T={entry.num_steps} norm={entry.norm}"
            print(f"{entry.path}  {entry.kind} {entry.arch} {entry.dataset} {model} test={accuracy}")
    return EXIT_OK


COMMANDS = {"train": _train, "evaluate": _evaluate, "analyze": _analyze, "convert": _convert,
            "presets": _presets, "runs": _runs}


def _warnings_as_lines() -> None:
    """Our own warnings (bntt_core's UserWarnings) print as one `warning: ...` line, without the source line."""
    import warnings

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning) and f"{os.sep}bntt_core{os.sep}" in str(filename):
            if _is_main_process():
                sys.stderr.write(f"warning: {message}\n")
            return
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `bntt` and `python -m bntt_core`; returns the exit code."""
    args = build_parser().parse_args(argv)
    _warnings_as_lines()
    try:
        threads = getattr(args, "threads", None)
        if threads is not None and threads < 1:
            raise ValueError(f"--threads must be ≥ 1; got {threads}")
        if threads is not None and args.command in ("analyze", "convert"):
            import torch

            torch.set_num_threads(threads)
        return COMMANDS[args.command](args)
    except ValueError as exc:  # every library error about the user's input is a ValueError subclass
        if _is_main_process():
            sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; a training run resumes with `bntt train --resume RUN`\n")
        return 130
    except OSError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
