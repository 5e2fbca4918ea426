"""diffuse_utils: the code behind the book "Forcing Diffuse Distributions out of
Language Models".

Modules, one concern each:

- loading and tasks: ``models`` (loading), ``tasks`` (prompt + targets + weights),
  ``task_checks`` (what makes a task file valid), ``prompts`` (the paper's prompts),
  ``data`` (natural distributions: SSA names), ``suite`` (the six task families of
  Section 5);
- scoring: ``encoding`` (chat templates, prefix-free targets), ``tries`` (targets as
  tries, rows and passes planned), ``packing`` (the packed forward: each shared token
  prefix run once), ``scoring`` (exact target log-probs), ``token_targets`` (the
  per-token form of the loss);
- sampling: ``decoding`` (``SampleSettings``, answer lengths, temperature/top-p/min-p),
  ``kvcache`` (the sampler's preallocated cache), ``sampling``, ``greedy`` (greedy
  answers to many prompts, batched);
- reading answers: ``answers`` (braces, canonical forms, valid answers, the diversity
  figures), ``metrics``;
- tuning: ``schedule`` (``TuneSettings``, the order of updates), ``tuning`` (loss,
  loop), ``adapters`` (LoRA made, saved, loaded, and ``adapter``, which hands the base
  model back), ``profiles`` (the runs chapters share, one source of settings in
  each profile), ``diagnostics`` (exact L = H + KL - log M, memorization),
  ``fidelity`` (the book's settings beside the paper's and the release's);
- experiments: ``artifacts`` (adapters, generations and measurements cached by their
  settings), ``cache_keys`` (what names a cached result; whole-or-nothing writes),
  ``evaluation`` (held-out evaluation, leave-one-out), ``baselines`` (the methods
  compared with tuning), ``verbalized`` (Verbalized Sampling), ``string_seed`` (String
  Seed of Thought), ``utility`` (greedy QA, an exact knowledge probe, perplexity),
  ``ablation`` (chapter 7: doses, threshold crossings, the defaults rule),
  ``ablation_runs`` (chapter 7's BABYNAMES and six-task runs, measured), ``verdicts``
  (chapter 7's computed sentences), ``format_probes`` (ending the turn: format against
  substance), ``biographies`` (Section 6) and ``places`` (offline geocoding, world
  outline);
- chapters 1 and 2: ``bias`` (a model's bias, exact and sampled: cached draws, the
  agreement band, the temperature sweep, Table 1's baseline rows) and
  ``kl_equivalence`` (the loss as KL + H, checked: a token tree, the per-token form);
- chapter 3: ``single_task`` (one task tuned, measured against the base model, at each
  early stop and learning rate) and ``range_transfer`` (Figure 2: ranges and their
  entropies);
- chapters 4 and 5: ``leave_one_out`` (chapter 4's tables: the families, means per task
  and setting, the paper's Tables 5 and 6 beside ours) and ``biography_comparison``
  (chapter 5: biographies written and cached, diversity at equal size, examples);
- chapter 6 and the Performance page: ``method_comparison`` (every method on every
  probe), ``tuning_costs`` (what tuning costs: the exact probes before and after) and
  ``benchmark_results`` (the Performance page's tables and sentences, read from the
  benchmarks' JSON);
- beyond the paper (chapter 8): ``remedies`` (other uses of the BABYNAMES data: fresh
  lists from ``p*``, list sizes, a validation stop, checkpointed runs), ``unseen``
  (the mass on names never tuned on, exact and sampled, and the verdict) and
  ``remedy_runs`` (each remedy tuned, measured at its stops, carried into the six
  tasks);
- the book's pages: ``plots``, ``widgets`` (controls over results a chapter has, with
  static fallbacks), ``report`` (glue, paper tables, the package's code shown on
  pages, timings), ``tables`` (result tables at the text column's width: labels in
  words).

What the notebooks call is exported here (``du.X``); the rest is reached through its
module (``from diffuse_utils import biographies``).
"""

# modules the book reaches as du.baselines, ...
from . import baselines, data, diagnostics, fidelity, metrics, profiles
from .adapters import adapter
from .answers import answer_figures, parse_braces, text_figures
from .artifacts import cached_generations, cached_measure, cached_tune
from .decoding import (
    BIOGRAPHY_TOKENS,
    LONG_ANSWER_TOKENS,
    SHORT_ANSWER_TOKENS,
    SampleSettings,
    sample_settings,
)
from .encoding import (
    NoChatTemplateError,
    check_prefix_free,
    encode_prompt,
    encode_targets,
    encode_task,
)
from .evaluation import (
    evaluate_suite,
    leave_one_out_plan,
    suite_adapter,
    training_tasks,
)
from .metrics import empirical_distribution, entropy, kl_divergence, top_k_table
from .models import (
    load_model,
    load_tokenizer,
    model_label,
    resolve_device,
    resolve_dtype,
)
from .sampling import sample
from .schedule import TuneSettings, tune_settings
from .scoring import (
    conditional_distribution,
    score_prompts,
    target_logprobs,
    valid_mass,
)
from .suite import FAMILY_NAMES, load_family, load_suite
from .tasks import (
    BABYNAMES_PROMPT,
    DIE_PROMPT,
    RANGE_PROMPTS,
    RNG_PROMPT,
    Task,
    TaskError,
    range_task,
)
from .tuning import distribution_matching_loss, tune

__version__ = "0.1.0"
