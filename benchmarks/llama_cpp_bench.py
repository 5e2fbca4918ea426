"""The package's sampler against llama.cpp, the engine a user would pick instead, on the same GGUF.

llama.cpp (PyPI ``llama-cpp-python``, a benchmark dependency that set-up does not install; it builds
llama.cpp from source, 10-20 minutes on 2 cores) computes on the file's Q4_1 weights; the package
computes in float32 on the same weights de-quantized. Both draw at temperature 1 with no top-k, top-p
or min-p cut, with the same thread count, on the same chat-formatted prompt (the same token ids: the
GGUF's vocabulary), up to the same number of new tokens, and stop at the end of the turn.

- ``sequential``: ``Llama.create_chat_completion`` in a loop, one answer a call, as a user would call
  it (llama.cpp keeps the prompt's cache between calls, so each call decodes its answer only);
- ``batched``: llama.cpp's batch API at its best: the prompt decoded once for every sequence (one
  token belonging to all of them, a unified cache), then one ``llama_decode`` a step over every
  sequence still going, each sampled from its own logits;
- ``package``: ``du.sample`` at the same batch size, measured in turns with the two above.

Install, as measured here (a native build uses AMX tiles where the CPU has them, and segfaulted on
a machine whose kernel does not grant them)::

    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
        -DGGML_AMX_BF16=OFF" .venv/bin/pip install llama-cpp-python==0.3.36

Tokens are the answers' tokens (end-of-turn tokens included, as the package counts them).
"""
import ctypes
import statistics
import time

import torch

import diffuse_utils as du
from diffuse_utils.encoding import encode_prompt
from diffuse_utils.models import embedded_gguf_path

INSTALL = ("llama-cpp-python is not installed: see benchmarks/llama_cpp_bench.py's docstring (it "
           "builds llama.cpp from source, 10-20 minutes on 2 cores)")


def _sequential(llm, prompt: str, n: int, max_new_tokens: int) -> tuple[int, list[str]]:
    tokens, texts = 0, []
    for i in range(n):
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}], temperature=1.0, top_p=1.0, top_k=0,
            min_p=0.0, max_tokens=max_new_tokens, seed=i)
        tokens += out["usage"]["completion_tokens"]
        texts.append(out["choices"][0]["message"]["content"])
    return tokens, texts


class _Batched:
    """A llama.cpp context for ``batch`` sequences sharing one prompt (its own model handle, so that
    its context can hold ``batch`` sequences in one unified cache)."""

    def __init__(self, llama_cpp, path: str, batch: int, prompt_len: int, max_new_tokens: int,
                 threads: int):
        self.l = llama_cpp
        self.model = llama_cpp.llama_model_load_from_file(path.encode(),
                                                          llama_cpp.llama_model_default_params())
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = prompt_len + batch * max_new_tokens + 64
        params.n_batch = params.n_ubatch = max(prompt_len, batch)
        params.n_seq_max, params.kv_unified = batch, True
        params.n_threads = params.n_threads_batch = threads
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.batch = llama_cpp.llama_batch_init(max(prompt_len, batch), 0, batch)
        chain = llama_cpp.llama_sampler_chain_default_params()
        self.sampler = llama_cpp.llama_sampler_chain_init(chain)
        llama_cpp.llama_sampler_chain_add(self.sampler, llama_cpp.llama_sampler_init_dist(0))

    def _put(self, k: int, token: int, pos: int, seqs: list[int], logits: bool) -> None:
        b = self.batch
        b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = token, pos, len(seqs), logits
        for j, seq in enumerate(seqs):
            b.seq_id[k][j] = seq

    def generate(self, prompt_ids: list[int], rows: int, max_new_tokens: int) -> list[list[int]]:
        l, b = self.l, self.batch
        l.llama_memory_clear(l.llama_get_memory(self.ctx), True)
        for k, token in enumerate(prompt_ids):
            self._put(k, token, k, list(range(rows)), k == len(prompt_ids) - 1)
        b.n_tokens = len(prompt_ids)
        if l.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed on the prompt")
        answers, going = [[] for _ in range(rows)], list(range(rows))
        index = {seq: len(prompt_ids) - 1 for seq in going}  # where each sequence's logits are
        for step in range(max_new_tokens):
            drawn = {seq: l.llama_sampler_sample(self.sampler, self.ctx, index[seq]) for seq in going}
            for seq, token in drawn.items():
                answers[seq].append(token)
            going = [seq for seq in going if not l.llama_vocab_is_eog(self.vocab, drawn[seq])]
            if not going or step == max_new_tokens - 1:
                break
            for k, seq in enumerate(going):
                self._put(k, drawn[seq], len(prompt_ids) + step, [seq], True)
                index[seq] = k
            b.n_tokens = len(going)
            if l.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
        return answers

    def text(self, tokens: list[int]) -> str:
        buffer = ctypes.create_string_buffer(4096)
        size = self.l.llama_detokenize(self.vocab, (self.l.llama_token * len(tokens))(*tokens),
                                       len(tokens), buffer, len(buffer), False, False)
        return buffer.raw[:max(size, 0)].decode("utf-8", "replace")


def measure(prompt: str, n: int, batch: int, max_new_tokens: int, repeats: int) -> dict:
    """Tokens/s of the three samplers on ``n`` answers to ``prompt`` (medians of ``repeats``, the
    samplers in turns), and the tokens an answer took on average: the same prompt, cut-off and
    temperature make the answers' lengths alike, so the samplers did comparable work."""
    try:
        import llama_cpp
    except ImportError:
        return {"skipped": INSTALL}
    threads = torch.get_num_threads()
    path = str(embedded_gguf_path())
    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=threads, n_threads_batch=threads,
                          verbose=False, seed=0)
    model, tokenizer = du.load_model(device="cpu")
    prompt_ids = encode_prompt(tokenizer, prompt)
    batched = _Batched(llama_cpp, path, batch, len(prompt_ids), max_new_tokens, threads)
    ends = du.sampling.answer_ends(tokenizer)

    def run_batched():
        tokens, texts = 0, []
        for start in range(0, n, batch):
            for answer in batched.generate(prompt_ids, min(batch, n - start), max_new_tokens):
                tokens += len(answer)
                texts.append(batched.text([t for t in answer if t not in ends]))
        return tokens, texts

    def run_package():
        texts = du.sample(model, tokenizer, prompt, n=n, batch_size=batch, max_new_tokens=max_new_tokens,
                          progress=False)
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        # the answer's tokens and the end-of-turn token where it ended before the cut-off
        return sum(min(len(i) + 1, max_new_tokens) for i in ids), texts

    runs = {"llama.cpp, sequential (create_chat_completion)":
            lambda: _sequential(llm, prompt, n, max_new_tokens),
            f"llama.cpp, batched ({batch} sequences)": run_batched,
            f"package (du.sample, batch {batch})": run_package}
    seconds, tokens, texts = {k: [] for k in runs}, {}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            tokens[name], texts[name] = run()
            seconds[name].append(time.perf_counter() - start)
    rows = []
    for name in runs:
        median = statistics.median(seconds[name])
        rows.append({"sampler": name, "seconds": seconds[name], "answers": n, "tokens": tokens[name],
                     "tokens_per_s": tokens[name] / median, "answers_per_s": n / median,
                     "tokens_per_answer": tokens[name] / n})
    return {"prompt": prompt, "n": n, "batch": batch, "max_new_tokens": max_new_tokens,
            "repeats": repeats, "threads": threads, "llama_cpp_version": llama_cpp.__version__,
            "precision": {"llama.cpp": "Q4_1 weights as stored in the GGUF",
                          "package": "float32, the same weights de-quantized"},
            "rows": rows}
