"""diffuse_utils: the code behind the book "Forcing Diffuse Distributions out of Language Models".

Modules, one concern each: ``models`` (loading), ``tasks`` (prompt + targets +
weights), ``encoding`` (chat templates, prefix-free targets), ``packing`` (targets as
tries, each shared token prefix run once), ``scoring`` (exact target log-probs), ``sampling``, ``metrics``, ``tuning`` (loss, LoRA, loop),
``schedule`` (tuning settings, the order of updates: per prompt as the paper's release, or per pass),
``diagnostics`` (exact L = H + KL - log M and the memorization ratio during training), ``fidelity``
(the book's settings beside the paper's and the release's), ``token_targets`` (the per-token form of the loss),
``suite`` (the six task families), ``evaluation`` (held-out evaluation, leave-one-out),
``baselines`` (decoding knobs, Verbalized Sampling), ``string_seed`` (String Seed of Thought),
``utility`` (offline cost-of-tuning proxies: greedy QA, an exact knowledge probe, perplexity),
``biographies`` (Section 6: prompt, parser, per-attribute figures, Tuned-ID targets) and ``places``
(offline geocoding, world outline); the last two are imported by name (``from diffuse_utils import biographies``).
"""
from .evaluation import (cached_samples, cached_samples_timed, diversity_figures, evaluate_family, evaluate_suite, family_means, leave_one_out_plan,
                         suite_adapter, training_tasks)
from .encoding import (NoChatTemplateError, check_prefix_free, encode_prompt, encode_targets, encode_task,
                       end_of_turn_ids)
from .metrics import (coverage, empirical_distribution, entropy, kl_divergence, kl_from_samples,
                      sample_entropy, top_k_table, unigram_diversity, valid_rate)
from .models import ModelNotAvailableError, load_model, load_tokenizer, resolve_device, resolve_dtype
from .sampling import parse_braces, sample
from .scoring import conditional_distribution, score_prompts, target_logprobs, valid_mass
from .suite import FAMILY_NAMES, TaskFamily, canonicalizer, load_family, load_suite, normalize_answer
from .tasks import (BABYNAMES_PROMPT, DIE_PROMPT, RANGE_PROMPTS, RNG_PROMPT, RNG_RANGE_PROMPT, Task, TaskError,
                    range_task)
from .schedule import TuneSettings, tune_settings
from . import data, diagnostics, fidelity  # modules the book reaches as du.data, du.diagnostics, du.fidelity
from .tuning import distribution_matching_loss, load_adapter, save_adapter, tune

__version__ = "0.1.0"
