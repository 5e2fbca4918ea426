"""Benchmarks of the tuning and measurement paths against the naive method (not timed tests).

    .venv/bin/python benchmarks/run.py                 # everything; writes benchmarks/results.json
    .venv/bin/python benchmarks/run.py --repeats 5
    .venv/bin/python benchmarks/run.py --parts sampling   # re-measure one part, keep the rest of results.json
    .venv/bin/python benchmarks/run.py --parts tuning --tasks ranges --methods package   # one row

1. Tuning step (forward + backward over every target of every prompt): the package's path (every
   prompt + target sequence packed into tries, each distinct token prefix run once, see
   diffuse_utils.packing), its two earlier versions (benchmarks/earlier.py: prompt once with targets in
   given order; prompt + common prefix once with length-sorted target mini-batches), and a naive
   reference that concatenates prompt + target for every target, in batches of 32 with gradients
   accumulated, keeping logits only at target positions (as the paper's release does, minus the
   full-vocabulary logits at prompt positions). Wall time (median), tokens processed, the issue's
   "minimum" (each prompt once + distinct target-token prefixes; the trie can go below it, because
   prompts share the chat template), peak memory, and the loss difference. Each measurement runs in
   its own process so peak RSS is its own.
2. Measurement: exact scoring of RNG 1-10 vs 1000 samples, on an RNG-tuned adapter.
3. Sampling throughput: the package's sampler vs the sampler before issue 22 (benchmarks/earlier.py),
   in turns in one process, on short answers (RNG) and on long answers of varied length (biographies),
   with the tokens/s bound set by this CPU's matmul throughput at the same batch; and, on chapter 6's
   workload (21 prompts, 25 samples each), one prompt at a time vs batches mixing prompts.
4. The sampler against llama.cpp (optional: needs llama-cpp-python, see benchmarks/llama_cpp_bench.py):
   llama.cpp's sequential chat completions, its batch API, and the package, on the same GGUF and prompt.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import diffuse_utils as du
from diffuse_utils import data
from diffuse_utils.encoding import encode_task
from diffuse_utils.packing import accumulate_gradients
from diffuse_utils.tries import Query, passes_tokens, plan_passes, trie_size
from diffuse_utils.scoring import prompt_state
from diffuse_utils.tuning import add_lora, distribution_matching_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llama_cpp_bench  # noqa: E402
from earlier import (accumulate_task_gradients, batch_logprobs, common_prefix_length, earlier_sample,  # noqa: E402
                     length_order)

HERE = Path(__file__).resolve().parent
PARTS = ["tuning", "exact", "sampling", "llama_cpp"]
# llama.cpp against the package (benchmarks/llama_cpp_bench.py): RNG answers, as many as it takes
# llama.cpp's sequential calls about a minute
LLAMA_CPP_CASE = dict(n=500, batch=100, max_new_tokens=du.SHORT_ANSWER_TOKENS)
NAIVE, UNFOLDED, SHARED, PACKED = ("naive (paper's release)", "shared prompt (first version)",
                                   "shared prompt + prefix, sorted (second version)", "trie-packed (package)")
METHODS = (NAIVE, UNFOLDED, SHARED, PACKED)


def six_task_set() -> list:
    """Notebook 04's six families: every sub-task with its first training prompt."""
    return [du.Task(name=t.name, prompts=t.prompts[:1], targets=t.targets, weights=t.weights)
            for t in du.training_tasks(du.load_suite())]


def task_sets() -> dict:
    return {"rng (10 targets, 1 prompt)": [du.range_task(1, 10)],
            "babynames (200 draws, 1 prompt)": [data.babynames_task(200, seed=0)],
            "ranges 1-10 + 1-100 (110 targets, 5 prompts each)": [du.range_task(1, 10, du.RANGE_PROMPTS),
                                                                   du.range_task(1, 100, du.RANGE_PROMPTS)],
            "six tasks (21 sub-tasks, 819 targets, 1 prompt each)": six_task_set()}


def naive_logprobs_batched(model, prompt_ids, target_ids):
    """Reference: each target as prompt + target, right-padded, logits only at target positions."""
    base = model.get_base_model()
    decoder, head = base.get_decoder(), base.get_output_embeddings()
    lengths = [len(prompt_ids) + len(t) for t in target_ids]
    ids = torch.zeros(len(target_ids), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, target in enumerate(target_ids):
        ids[row, :lengths[row]] = torch.tensor(prompt_ids + target)
        mask[row, :lengths[row]] = 1
    hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state
    rows = torch.tensor([r for r, t in enumerate(target_ids) for _ in t])
    positions = torch.tensor([len(prompt_ids) - 1 + j for t in target_ids for j in range(len(t))])
    logits = head(hidden[rows, positions]).float()
    picked = logits.gather(-1, ids[rows, positions + 1][:, None])[:, 0] - logits.logsumexp(-1)
    return torch.zeros(len(target_ids)).index_add(0, rows, picked), int(mask.numel())


def naive_step(model, encoded, batch_size):
    """Returns the loss of each (task, prompt) pair and the tokens processed; so do the other steps."""
    losses, tokens = [], 0
    for item in encoded:
        p_star = torch.tensor(item.task.probabilities, dtype=torch.float32)
        for prompt in item.prompt_ids:
            loss = 0.0
            for start in range(0, len(item.target_ids), batch_size):
                logprobs, n = naive_logprobs_batched(model, prompt, item.target_ids[start:start + batch_size])
                batch_loss = distribution_matching_loss(logprobs, p_star[start:start + batch_size]) / len(item.prompt_ids)
                batch_loss.backward()
                loss, tokens = loss + batch_loss.item(), tokens + n
            losses.append(loss)
    return losses, tokens


def padded_tokens(target_ids, batch_size):
    """Input tokens of target mini-batches in the given order: each batch is padded to its longest."""
    chunks = [target_ids[s:s + batch_size] for s in range(0, len(target_ids), batch_size)]
    return sum(len(chunk) * (max(map(len, chunk)) - 1) for chunk in chunks)


def unfolded_step(model, encoded, batch_size):
    """The package's first version: prompt once, targets in their given order, no prefix folding."""
    losses, tokens = [], 0
    for item in encoded:
        p_star = torch.tensor(item.task.probabilities, dtype=torch.float32)
        for prompt in item.prompt_ids:
            loss = 0.0
            last, kv = prompt_state(model, prompt)
            roots = [last] + [t for pair in kv for t in pair]
            leaves = [t.detach().requires_grad_() for t in roots]
            leaf_kv = list(zip(leaves[1::2], leaves[2::2]))
            for s in range(0, len(item.target_ids), batch_size):
                logprobs = batch_logprobs(model, leaves[0], leaf_kv, item.target_ids[s:s + batch_size])
                batch_loss = distribution_matching_loss(logprobs, p_star[s:s + batch_size]) / len(item.prompt_ids)
                batch_loss.backward()
                loss += batch_loss.item()
            pairs = [(r, leaf.grad) for r, leaf in zip(roots, leaves) if leaf.grad is not None]
            torch.autograd.backward([r for r, _ in pairs], [g for _, g in pairs])
            tokens += len(prompt) + padded_tokens(item.target_ids, batch_size)
            losses.append(loss)
    return losses, tokens


def shared_step(model, encoded, batch_size):
    """The second version: prompt + common target prefix once, length-sorted target mini-batches."""
    losses, tokens = [], 0
    for item in encoded:
        p_star = torch.tensor(item.task.probabilities, dtype=torch.float32)
        common = common_prefix_length(item.target_ids)
        rests = [t[common:] for t in item.target_ids]
        for prompt in item.prompt_ids:
            losses.append(accumulate_task_gradients(model, prompt, item.target_ids, p_star, batch_size,
                                                    1 / len(item.prompt_ids)))
            tokens += len(prompt) + common + padded_tokens([rests[k] for k in length_order(rests)], batch_size)
    return losses, tokens


def packed_step(model, encoded, batch_size):
    """The package's path: all prompt + target sequences as tries, passes of TOKENS_PER_PASS tokens
    (``batch_size`` is not used: the pass size is in tokens)."""
    queries, weights = [], []
    for item in encoded:
        p_star = torch.tensor(item.task.probabilities, dtype=torch.float32)
        for prompt in item.prompt_ids:
            queries.append(Query(prompt, item.target_ids))
            weights.append(p_star / len(item.prompt_ids))
    return list(accumulate_gradients(model, queries, weights)), passes_tokens(plan_passes(queries))


def minimum_tokens(encoded) -> int:
    """|prompt| + distinct non-empty proper prefixes of the target ids (a trie's inner nodes), per prompt."""
    return sum(len(prompt) + trie_size(item.target_ids) for item in encoded for prompt in item.prompt_ids)


def measure_tuning(task_name: str, method: str, repeats: int, batch_size: int = 32) -> dict:
    """One (task set, method) measurement, in this process: median step time, tokens, peak RSS."""
    model, tokenizer = du.load_model(device="cpu")
    encoded = [encode_task(tokenizer, t) for t in task_sets()[task_name]]
    model = add_lora(model, seed=0)
    step = {NAIVE: naive_step, UNFOLDED: unfolded_step, SHARED: shared_step, PACKED: packed_step}[method]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats + 1):  # the first run warms up
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        losses, tokens = step(model, encoded, batch_size)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"task": task_name, "method": method, "seconds": statistics.median(times[1:]),
            "loss": sum(losses), "prompt_losses": [float(x) for x in losses],
            "tokens": tokens, "minimum_tokens": minimum_tokens(encoded),
            "sequence_trie_tokens": trie_size([p + t for item in encoded for p in item.prompt_ids for t in item.target_ids]),
            "peak_rss_mb": peak / 1024, "peak_rss_increase_mb": (peak - rss_before) / 1024}


SAMPLING_CASES = {"rng (short answers)": dict(n=1000, batch=100, max_new_tokens=du.SHORT_ANSWER_TOKENS),
                  "biography (long answers, lengths vary)": dict(n=100, batch=100,
                                                                 max_new_tokens=du.BIOGRAPHY_TOKENS)}


def count_decoded_tokens(model) -> list:
    """A running count of the token positions embedded by forward passes of one token per row (decoding
    steps; a prompt's prefill is not counted)."""
    counter = [0]

    def hook(_, args):
        if args[0].shape[-1] == 1:
            counter[0] += args[0].numel()
    model.get_input_embeddings().register_forward_pre_hook(hook)
    return counter


def matmul_seconds(model, rows: int, repeats: int = 3) -> float:
    """Seconds of the matrix products of one decoding step at ``rows`` rows: every linear layer's
    weight (and the vocabulary head) times a random ``(rows, in_features)`` input, nothing else.
    ``rows / matmul_seconds`` tokens/s is the bound this CPU's matmul throughput sets for that batch."""
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = {w.shape[1]: torch.randn(rows, w.shape[1]) for w in weights}
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            for w in weights:
                inputs[w.shape[1]] @ w.T
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def measure_sampling(case: str, repeats: int) -> dict:
    """Samples and tokens per second of the package's sampler against the sampler before issue 22
    (``earlier.earlier_sample``), measured in turns in this process (medians of ``repeats``), whether
    they draw the same texts for the same seed, and the matmul bound for the same batch."""
    from diffuse_utils.biographies import BIOGRAPHY_PROMPT
    settings = SAMPLING_CASES[case]
    n, batch, max_new_tokens = settings["n"], settings["batch"], settings["max_new_tokens"]
    prompt = du.RNG_PROMPT if case.startswith("rng") else BIOGRAPHY_PROMPT
    model, tokenizer = du.load_model(device="cpu")
    tokens = count_decoded_tokens(model)
    kwargs = dict(n=n, batch_size=batch, max_new_tokens=max_new_tokens)
    samplers = {"earlier": lambda: earlier_sample(model, tokenizer, prompt, **kwargs),
                "package": lambda: du.sample(model, tokenizer, prompt, progress=False, **kwargs)}
    seconds, texts, bound = {name: [] for name in samplers}, {}, []
    for _ in range(repeats):
        for name, run in samplers.items():
            tokens[0], start = 0, time.perf_counter()
            texts[name] = run()
            seconds[name].append(time.perf_counter() - start)
        bound.append(matmul_seconds(model, batch, repeats=1))
    decoded = tokens[0]
    median = {name: statistics.median(times) for name, times in seconds.items()}
    same = sum(a == b for a, b in zip(texts["earlier"], texts["package"]))
    return {"case": case, "n": n, "batch": batch, "max_new_tokens": max_new_tokens, "repeats": repeats,
            "decoded_tokens": decoded, "earlier_seconds": seconds["earlier"], "package_seconds": seconds["package"],
            "earlier_samples_per_s": n / median["earlier"], "package_samples_per_s": n / median["package"],
            "earlier_tokens_per_s": decoded / median["earlier"], "package_tokens_per_s": decoded / median["package"],
            "speed_up": median["earlier"] / median["package"],
            "matmul_bound_tokens_per_s": batch / statistics.median(bound),
            "identical_texts_share": same / n}


def measure_several_prompts(samples_per_prompt: int = 25, max_new_tokens: int = 16) -> dict:
    """Samples per second on chapter 6's workload, the first held-out prompt of every six-task
    sub-task with a few samples each: one prompt at a time (batches of ``samples_per_prompt``)
    against ``sample_prompts`` (batches of 100 mixing prompts), and whether the texts agree."""
    from diffuse_utils.sampling import sample_prompts
    prompts = [task.metadata["held_out_prompts"][0] for task in du.training_tasks(du.load_suite())]
    model, tokenizer = du.load_model(device="cpu")
    settings = dict(max_new_tokens=max_new_tokens, temperature=1.5, progress=False)
    start = time.perf_counter()
    alone = [du.sample(model, tokenizer, prompt, n=samples_per_prompt, **settings) for prompt in prompts]
    alone_seconds = time.perf_counter() - start
    start = time.perf_counter()
    together = sample_prompts(model, tokenizer, prompts, [samples_per_prompt] * len(prompts), batch_size=100,
                              **settings)
    together_seconds = time.perf_counter() - start
    n = samples_per_prompt * len(prompts)
    same = sum(a == b for texts_a, texts_b in zip(alone, together) for a, b in zip(texts_a, texts_b))
    return {"prompts": len(prompts), "samples_per_prompt": samples_per_prompt, "temperature": 1.5,
            "max_new_tokens": max_new_tokens, "one_prompt_at_a_time_samples_per_s": n / alone_seconds,
            "together_samples_per_s": n / together_seconds, "speed_up": alone_seconds / together_seconds,
            "identical_texts_share": same / n}


def measure_exact_vs_sampled(n: int = 1000) -> dict:
    """Exact scoring vs estimating from n samples, on an RNG-tuned adapter (so most samples are valid)."""
    model, tokenizer = du.load_model(device="cpu")
    rng = du.range_task(1, 10)
    tuned, _ = du.tune(model, tokenizer, [rng], passes=30, lr=5e-4, progress=False)
    start = time.perf_counter()
    exact = du.conditional_distribution(du.target_logprobs(tuned, tokenizer, rng))
    exact_seconds = time.perf_counter() - start
    start = time.perf_counter()
    texts = du.sample(tuned, tokenizer, rng.prompts[0], n=n, max_new_tokens=8, progress=False)
    sample_seconds = time.perf_counter() - start
    figures = du.text_figures(texts, rng.targets, prompt=rng.prompts[0])
    sampled = du.empirical_distribution(figures["answers"]).reindex(exact.index, fill_value=0)
    return {"n": n, "exact_seconds": exact_seconds, "sample_seconds": sample_seconds,
            "total_variation": 0.5 * float((exact - sampled).abs().sum()),
            "entropy_exact": du.entropy(exact), "entropy_sampled": du.entropy(sampled.to_numpy()),
            "valid_rate": figures["valid_rate"]}


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "model": "SmolLM2-135M-Instruct (float32, CPU)"}


def save(results: dict, output: Path) -> None:
    """Write the results in a fixed key order, through a temporary file so a kill never leaves half a file."""
    order = ["machine", "tuning_step", "exact_vs_sampled", "sampling", "sampling_several_prompts", "llama_cpp"]
    order += [key for key in results if key not in order]   # nothing measured is dropped
    partial = output.with_suffix(".json.partial")
    partial.write_text(json.dumps({key: results[key] for key in order if key in results}, indent=2))
    partial.replace(output)


def in_subprocess(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS,
                        help="measure only these; the others are kept from the existing output file")
    parser.add_argument("--tasks", nargs="+", default=[],
                        help="tuning: re-measure only task sets whose name contains one of these words")
    parser.add_argument("--methods", nargs="+", default=[],
                        help="tuning: re-measure only methods whose name contains one of these words "
                             "(e.g. package); the other rows are kept")
    parser.add_argument("--threads", type=int, help="torch threads of every measurement (default: torch's); on a "
                        "CPU shared with other work, 1 avoids threads waiting on each other")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by the measuring subprocesses' torch
        torch.set_num_threads(args.threads)
    if args.one:
        kind, *rest = args.one
        result = {"tuning": lambda: measure_tuning(rest[0], rest[1], int(rest[2])),
                  "sampling": lambda: measure_sampling(rest[0], int(rest[1])), "exact": measure_exact_vs_sampled,
                  "several": measure_several_prompts,
                  "llama_cpp": lambda: llama_cpp_bench.measure(du.RNG_PROMPT, repeats=int(rest[0]),
                                                               **LLAMA_CPP_CASE)}[kind]()
        print(json.dumps(result))
        return 0
    results = json.loads(args.output.read_text()) if args.output.exists() and args.parts != PARTS else {}
    results["machine"] = machine()
    if "tuning" in args.parts:
        chosen = lambda name, words: not words or any(word in name for word in words)  # noqa: E731
        kept = {(row["task"], row["method"]): row for row in results.get("tuning_step", [])
                if args.tasks or args.methods}
        results["tuning_step"] = []
        for task_name in task_sets():
            for method in METHODS:
                if (task_name, method) in kept and not (chosen(task_name, args.tasks) and chosen(method, args.methods)):
                    results["tuning_step"].append(kept[(task_name, method)])
                    continue
                print(f"tuning step: {task_name}, {method}", flush=True)
                results["tuning_step"].append(in_subprocess("tuning", task_name, method, str(args.repeats)))
                save(results, args.output)  # an interrupted run keeps what it measured
    if "exact" in args.parts:
        print("exact vs sampled", flush=True)
        results["exact_vs_sampled"] = in_subprocess("exact")
        save(results, args.output)
    if "sampling" in args.parts:
        print("sampling throughput", flush=True)
        results["sampling"] = [in_subprocess("sampling", case, str(args.repeats)) for case in SAMPLING_CASES]
        results["sampling_several_prompts"] = in_subprocess("several")
    if "llama_cpp" in args.parts:
        print("llama.cpp against the package", flush=True)
        measured = in_subprocess("llama_cpp", str(args.repeats))
        print(json.dumps(measured), flush=True)   # kept in the log whatever happens next
        if "skipped" in measured and "rows" in results.get("llama_cpp", {}):
            print(f"{measured['skipped']}; kept the earlier measurement")
        else:
            results["llama_cpp"] = measured
    save(results, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
