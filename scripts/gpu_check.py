"""GPU check: the GPU params files' model shapes, with random weights, through tuning and sampling.

    python scripts/gpu_check.py              # one CUDA GPU, no network: under 5 minutes on one H200
    python scripts/gpu_check.py --dry-run    # CPU, tiny shapes, the same code path, seconds

For each shape of params/gpu-*.yaml (Qwen2.5-1.5B, Gemma-2-2B, Llama-2-13B; configuration values
from the models' published config.json), a model with random weights is built in code in bf16
(no download: the tokenizer is the embedded model's, saved as small files in TOKENIZER_DIR, an untracked folder to carry), then:
one release-style tuning pass over the six-task suite (one AdamW update per (task, prompt)) and
1000 RNG samples, with tokens/s and peak GPU memory. From the 13B pass it projects the paper's
six-task 13B run (50 passes). Checks: exact scores of a tiny model agree between CUDA and CPU
(fp32 within 1e-4 nats; bf16 within BF16_TOLERANCE nats per target token), and
``device="auto"``/``dtype="auto"`` pick CUDA/bf16. Results go to benchmarks/gpu_check.json, which
the Performance page (notebooks/90_performance.ipynb) shows.
"""
import argparse
import cProfile
import inspect
import json
import platform
import pstats
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import diffuse_utils as du  # noqa: E402

TOKENIZER_DIR = ROOT / "benchmarks" / "gpu_check_tokenizer"   # SmolLM2-135M-Instruct's tokenizer files, no weights
OUTPUT = ROOT / "benchmarks" / "gpu_check.json"
PAPER_PASSES = 50            # the paper's six-task 13B run: 50 passes over every (task, prompt)
FP32_TOLERANCE = 1e-4        # nats, exact scores CUDA vs CPU in float32
BF16_TOLERANCE = 0.05        # nats per target token, bf16 (8 significant bits; kernels sum in different orders)
SHAPES = {  # published config.json values (hub: Qwen/Qwen2.5-1.5B-Instruct, google/gemma-2-2b-it, meta-llama/Llama-2-13b-chat-hf)
    "Qwen2.5-1.5B": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, rope_theta=1e6,
                         rms_norm_eps=1e-6, max_position_embeddings=32768, tie_word_embeddings=True, hidden_act="silu"),
    "Gemma-2-2B": dict(model_type="gemma2", hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                       num_attention_heads=8, num_key_value_heads=4, head_dim=256, vocab_size=256000,
                       rope_theta=10000.0, rms_norm_eps=1e-6, max_position_embeddings=8192, sliding_window=4096,
                       attn_logit_softcapping=50.0, final_logit_softcapping=30.0, query_pre_attn_scalar=256,
                       hidden_activation="gelu_pytorch_tanh"),
    "Llama-2-13B": dict(model_type="llama", hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                        num_attention_heads=40, num_key_value_heads=40, vocab_size=32000, rope_theta=10000.0,
                        rms_norm_eps=1e-5, max_position_embeddings=4096, tie_word_embeddings=False, hidden_act="silu"),
}
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, query_pre_attn_scalar=16, sliding_window=4096)  # --dry-run: every shape shrunk to this


def check_tune_api() -> None:
    """Fail early, with the fix, if the package's tune lacks the release's per-prompt updates."""
    fields = inspect.signature(du.TuneSettings).parameters
    if "settings" not in inspect.signature(du.tune).parameters or not {"update_per", "passes"} <= set(fields):
        raise SystemExit("gpu_check needs du.tune(..., update_per='prompt', passes=...) (diffuse_utils.tuning "
                         "with TuneSettings.update_per); update the repository.")


def load_tokenizer():
    """The embedded model's tokenizer from TOKENIZER_DIR, written there first from the embedded
    model where it is missing (the folder is not tracked: a GPU machine, which has no embedded
    model, gets it as a carried path after `--save-tokenizer` here)."""
    from transformers import AutoTokenizer
    if not (TOKENIZER_DIR / "tokenizer.json").exists():
        try:
            du.load_tokenizer().save_pretrained(TOKENIZER_DIR)
        except Exception as error:  # no embedded model here (a GPU machine): say how to bring the files
            raise SystemExit(f"{TOKENIZER_DIR} is missing and the embedded model is not installed here "
                             f"({error}): run `python scripts/gpu_check.py --save-tokenizer` where it is, "
                             "and carry the folder (device tool: carry=['benchmarks/gpu_check_tokenizer']).")
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return tokenizer


def build(name: str, vocabulary: int, device, dtype, tiny: bool, seed: int = 0):
    """A random-weight model of shape ``SHAPES[name]`` (``TINY`` sizes when ``tiny``), built on ``device``.
    The vocabulary is at least the tokenizer's (``vocabulary``), so every token id it makes exists."""
    from transformers import AutoConfig, AutoModelForCausalLM
    values = dict(SHAPES[name])
    model_type = values.pop("model_type")
    if tiny:
        values.update({k: v for k, v in TINY.items() if k in values or k in ("head_dim",)})
        values["vocab_size"] = vocabulary
    values["vocab_size"] = max(values["vocab_size"], vocabulary)
    config = AutoConfig.for_model(model_type, **values)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval(), sum(p.numel() for p in model.parameters())


def count_tokens(model) -> list:
    """A running count of the token positions the model embeds (a hook on its input embeddings, which
    PEFT's wrapper, calling ``forward`` directly, cannot bypass)."""
    counter = [0]
    model.get_input_embeddings().register_forward_hook(
        lambda _, args, __: counter.__setitem__(0, counter[0] + args[0].numel()))
    return counter


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_shape(name: str, tokenizer, tasks, device, dtype, tiny: bool, n_samples: int, batch_size: int) -> dict:
    """Build one shape, run one tuning pass and ``n_samples`` RNG samples; timings and memory."""
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model, parameters = build(name, len(tokenizer), device, dtype, tiny)
    tokens = count_tokens(model)
    synchronize(device)
    built = time.perf_counter() - start
    start = time.perf_counter()
    tuned, history = du.tune(model, tokenizer, tasks, passes=1, update_per="prompt", progress=False)
    synchronize(device)
    tune_seconds, tune_tokens = time.perf_counter() - start, tokens[0]
    tokens[0] = 0
    start = time.perf_counter()
    texts = du.sample(tuned, tokenizer, du.RNG_PROMPT, n=n_samples, max_new_tokens=16, batch_size=batch_size,
                      progress=False)
    synchronize(device)
    sample_seconds = time.perf_counter() - start
    tokens[0] -= len(du.encode_prompt(tokenizer, du.RNG_PROMPT))  # the prompt, prefilled once: not sampled
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else None
    return {"model": name, "parameters": parameters, "build_seconds": built,
            "tuning": {"updates": len(history), "seconds": tune_seconds, "tokens": tune_tokens,
                       "tokens_per_s": tune_tokens / tune_seconds},
            "sampling": {"samples": len(texts), "seconds": sample_seconds, "tokens": tokens[0],
                         "tokens_per_s": tokens[0] / sample_seconds, "batch_size": batch_size},
            "peak_gpu_memory_gib": peak}


def tuned_updates(model, tokenizer, tasks, device, count: int):
    """Run ``count`` per-prompt updates on fresh LoRA adapters and take them out again: the base
    model back (PEFT injects adapters in place, so a second run on an un-unloaded model would
    stack a second adapter) and the seconds the updates took."""
    synchronize(device)
    start = time.perf_counter()
    tuned, _ = du.tune(model, tokenizer, tasks, passes=1, update_per="prompt", tasks_per_step=count, progress=False)
    synchronize(device)
    return tuned.unload(), time.perf_counter() - start


def profile_tuning(name: str, tokenizer, tasks, device, dtype, tiny: bool, updates: int = 8) -> dict:
    """Where one shape's tuning time goes: ``updates`` per-prompt updates after a warm-up, timed, and
    profiled (torch.profiler): the wall time against the time GPU kernels ran, and the operators that
    took most host (CPU) time; then the same updates under cProfile, for the Python functions. Kernel
    time far below the wall time means the host, not the GPU, sets the pace."""
    model, _ = build(name, len(tokenizer), device, dtype, tiny)
    model, _ = tuned_updates(model, tokenizer, tasks, device, 2)   # warm-up
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if torch.device(device).type == "cuda" else [])
    with torch.profiler.profile(activities=activities) as profiler:
        model, wall = tuned_updates(model, tokenizer, tasks, device, updates)
    averages = profiler.key_averages()
    device_us = lambda e: getattr(e, "self_device_time_total", 0) or 0
    top = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    python = cProfile.Profile()
    python.enable()
    tuned_updates(model, tokenizer, tasks, device, updates)
    python.disable()
    functions = sorted(pstats.Stats(python).stats.items(), key=lambda item: item[1][2], reverse=True)[:12]
    return {"model": name, "updates": updates, "wall_seconds_per_update": wall / updates,
            "gpu_kernel_seconds_per_update": sum(device_us(e) for e in averages) / 1e6 / updates,
            "top_host_ops": [{"op": e.key, "calls": e.count, "host_ms": e.self_cpu_time_total / 1e3,
                              "gpu_ms": device_us(e) / 1e3} for e in top],
            "top_python_functions": [{"function": f"{Path(file).name}:{line}({function})", "calls": stats[1],
                                      "own_seconds": stats[2]} for (file, line, function), stats in functions]}


def compare_attention(tokenizer, tasks, device, dtype, tiny: bool, updates: int = 24) -> dict:
    """Milliseconds per tuning update with each choice of attention kernels for the packed passes:
    the package's (``packing.PACKED_ATTENTION``, every SDPA kernel but cuDNN's), cuDNN's allowed too,
    and the math kernel alone; on two shapes, each after a 4-update warm-up."""
    from torch.nn.attention import SDPBackend
    from diffuse_utils import packing
    package = packing.PACKED_ATTENTION
    choices = {"package (no cuDNN)": list(package), "cuDNN allowed": [SDPBackend.CUDNN_ATTENTION, *package],
               "math only": [SDPBackend.MATH]}
    out = {}
    for name in ("Llama-2-13B", "Qwen2.5-1.5B"):
        model, _ = build(name, len(tokenizer), device, dtype, tiny)
        for label, backends in choices.items():
            with packing.attention_kernels(backends):
                model, _ = tuned_updates(model, tokenizer, tasks, device, 4)   # warm-up: kernel plans, allocator
                model, seconds = tuned_updates(model, tokenizer, tasks, device, updates)
                out.setdefault(name, {})[label] = 1000 * seconds / updates
        del model
    return out


def compare_devices(tokenizer, device) -> dict:
    """Exact scores of a tiny Llama-shaped model on ``device`` against the CPU, in fp32 and in bf16."""
    task = du.range_task(1, 10)
    target_tokens = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in task.targets) + 2
    out = {"compared": f"{torch.device(device).type} vs cpu"}
    for label, dtype, tolerance in (("fp32", torch.float32, FP32_TOLERANCE),
                                    ("bf16", torch.bfloat16, BF16_TOLERANCE * target_tokens)):
        model, _ = build("Llama-2-13B", len(tokenizer), "cpu", torch.float32, tiny=True, seed=1)
        cpu = du.target_logprobs(model.to(dtype), tokenizer, task)
        there = du.target_logprobs(model.to(device), tokenizer, task)
        gap = float((cpu - there).abs().max())
        out[label] = {"max_abs_difference_nats": gap, "tolerance_nats": tolerance, "ok": gap <= tolerance}
    return out


def check_auto(device) -> dict:
    """What ``device="auto"`` and ``dtype="auto"`` resolve to here, and whether it is CUDA/bf16 on a GPU."""
    picked = du.resolve_device("auto")
    dtype = du.resolve_dtype("auto", picked)
    expected = ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
    return {"device": picked.type, "dtype": str(dtype).replace("torch.", ""),
            "ok": (picked.type, dtype) == expected}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU, two tasks, 8 samples")
    parser.add_argument("--output", type=Path, help=f"results JSON (default {OUTPUT.relative_to(ROOT)}; "
                                                      "a dry run writes none unless given)")
    parser.add_argument("--save-tokenizer", action="store_true", help="write TOKENIZER_DIR from the embedded model")
    parser.add_argument("--profile-only", action="store_true",
                        help="only profile the largest shape's tuning updates (merged into an existing output)")
    args = parser.parse_args()
    if args.save_tokenizer:
        du.load_tokenizer().save_pretrained(TOKENIZER_DIR)
        print(f"wrote {TOKENIZER_DIR}")
        return 0
    check_tune_api()
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --dry-run for the CPU check.")
    device, dtype = ("cpu", torch.float32) if args.dry_run else ("cuda", torch.bfloat16)
    started, tokenizer = time.perf_counter(), load_tokenizer()
    tasks = du.training_tasks(du.load_suite())
    if args.dry_run:
        tasks = [du.Task(name=t.name, prompts=t.prompts[:1], targets=t.targets[:4],
                         weights=t.weights[:4] if t.weights else None)
                 for t in tasks[:2]]
        torch.set_num_threads(1)  # tiny matrices: one thread is quicker than two that wait on each other
    n_samples, batch_size = (8, 8) if args.dry_run else (1000, 500)
    output = args.output or (None if args.dry_run else OUTPUT)
    if args.profile_only:
        profile = profile_tuning("Llama-2-13B", tokenizer, tasks, device, dtype, args.dry_run)
        print(json.dumps(profile, indent=1))
        if output:
            earlier = json.loads(output.read_text()) if output.exists() else {}
            output.write_text(json.dumps({**earlier, "tuning_profile": profile}, indent=2))
        return 0
    results = {"dry_run": args.dry_run, "device": torch.cuda.get_device_name() if not args.dry_run else "cpu",
               "torch": torch.__version__, "python": platform.python_version(), "dtype": str(dtype)[6:],
               "tasks": len(tasks), "prompts": sum(len(t.prompts) for t in tasks), "models": []}
    for name in SHAPES:
        row = run_shape(name, tokenizer, tasks, device, dtype, args.dry_run, n_samples, batch_size)
        results["models"].append(row)
        print(f"{name}: {row['parameters'] / 1e9:.2f} B parameters; tuning pass {row['tuning']['seconds']:.1f} s "
              f"({row['tuning']['tokens_per_s']:.0f} tokens/s); {n_samples} samples {row['sampling']['seconds']:.1f} s "
              f"({row['sampling']['tokens_per_s']:.0f} tokens/s); peak GPU memory {row['peak_gpu_memory_gib']} GiB",
              flush=True)
    big = results["models"][-1]
    results["projected_paper_13b_run_minutes"] = PAPER_PASSES * big["tuning"]["seconds"] / 60
    results["device_agreement"] = compare_devices(tokenizer, device)
    results["auto_choice"] = check_auto(device)
    results["total_seconds"] = time.perf_counter() - started
    print(f"projected six-task 13B run ({PAPER_PASSES} passes): {results['projected_paper_13b_run_minutes']:.1f} min")
    print(json.dumps({k: results[k] for k in ("device_agreement", "auto_choice", "total_seconds")}, indent=1))
    results["tuning_profile"] = profile_tuning("Llama-2-13B", tokenizer, tasks, device, dtype, args.dry_run)
    results["attention_ms_per_update"] = compare_attention(tokenizer, tasks, device, dtype, args.dry_run,
                                                           updates=2 if args.dry_run else 24)
    print(json.dumps(results["attention_ms_per_update"], indent=1))
    if output:
        output.write_text(json.dumps(results, indent=2))
        print(f"wrote {output}")
    checks = [results["device_agreement"]["fp32"]["ok"], results["device_agreement"]["bf16"]["ok"],
              results["auto_choice"]["ok"]]
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
