"""diffuse_utils: the code behind the book "Forcing Diffuse Distributions out of Language Models".

Modules, one concern each: ``models`` (loading), ``tasks`` (prompt + targets +
weights), ``encoding`` (chat templates, prefix-free targets), ``tries`` (targets as tries, rows and
passes planned), ``packing`` (the packed forward: each shared token prefix run once), ``scoring``
(exact target log-probs), ``sampling``, ``answers`` (what counts as a valid answer: braces, canonical
forms, the figures over valid answers), ``metrics``, ``tuning`` (loss, LoRA, loop),
``artifacts`` (adapters and generations cached under a key of their configuration),
``schedule`` (tuning settings, the order of updates: per prompt as the paper's release, or per pass),
``diagnostics`` (exact L = H + KL - log M and the memorization ratio during training), ``fidelity``
(the book's settings beside the paper's and the release's), ``token_targets`` (the per-token form of the loss),
``suite`` (the six task families), ``evaluation`` (held-out evaluation, leave-one-out),
``baselines`` (decoding knobs, Verbalized Sampling), ``string_seed`` (String Seed of Thought),
``utility`` (offline cost-of-tuning proxies: greedy QA, an exact knowledge probe, perplexity),
``biographies`` (Section 6: prompt, parser, per-attribute figures, Tuned-ID targets) and ``places``
(offline geocoding, world outline); the last two are imported by name (``from diffuse_utils import biographies``).

What the notebooks call is exported here (``du.X``); the rest is reached through its module.
"""
from . import baselines, data, diagnostics, fidelity, metrics  # modules the book reaches as du.baselines, ...
from .answers import answer_figures, parse_braces, text_figures
from .artifacts import cached_generations, cached_measure, cached_tune
from .encoding import NoChatTemplateError, check_prefix_free, encode_prompt, encode_targets, encode_task
from .evaluation import evaluate_suite, leave_one_out_plan, suite_adapter, training_tasks
from .metrics import empirical_distribution, entropy, kl_divergence, top_k_table
from .models import load_model, load_tokenizer, resolve_device, resolve_dtype
from .sampling import sample
from .schedule import TuneSettings, tune_settings
from .scoring import conditional_distribution, score_prompts, target_logprobs, valid_mass
from .suite import FAMILY_NAMES, load_family, load_suite
from .tasks import BABYNAMES_PROMPT, DIE_PROMPT, RANGE_PROMPTS, RNG_PROMPT, Task, TaskError, range_task
from .tuning import distribution_matching_loss, tune

__version__ = "0.1.0"
