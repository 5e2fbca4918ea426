"""What a chapter concludes in the default profile and in the full one, side by side.

The default profile cuts sample counts and passes to fit 40 minutes on 2 cores; the full profile
(params/full.yaml) runs what was cut. This reads the values two executed copies of a chapter glued
(the numbers its page states), keeps those its verdicts rest on (``VERDICTS``), and writes both
profiles' values to ``benchmarks/profile_comparison.json`` with the settings they ran under:

    .venv/bin/python benchmarks/compare_profiles.py DEFAULT_EXECUTED_DIR FULL_EXECUTED_DIR

(each folder as ``scripts/run_notebooks.py --output`` writes it: executed chapters and
``timings.json``). A chapter found in both folders is compared; the others are left as they were.
The Performance page shows the file.
"""
import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "profile_comparison.json"
# chapter -> {glued name: what it is, in words}: the values its verdicts rest on, and the settings
# that differ between the profiles
VERDICTS = {
    "01_measuring_bias": {
        "agreement_samples": "samples checked against exact scoring",
        "agree_inside": "answers inside their 95% band (of 10)",
        "agree_total": "valid answers, observed and expected",
        "top_name": "favourite valid name",
        "top_name_ratio": "its share over its share of births",
        "name_valid_rate_prefix": "valid names with '{' pre-filled (%)",
    },
    "04_leave_one_out": {
        "passes_glue": "six-task tuning passes",
        "n_samples": "generations per held-out prompt",
        "n_tasks": "families",
        "ood_wins": "families where OOD's entropy beats the base model's",
        "ood_valid_wins": "families where OOD's valid rate beats the base model's",
        "id_wins": "families where ID's entropy beats OOD's",
    },
    "05_synthetic_biographies": {
        "n_bios": "biographies per model",
        "claims_held": "comparisons where a tuned model beats the base model",
        "claims_total": "comparisons made",
        "equal_size": "well-formed biographies per model in the diversity figure",
    },
    "06_is_tuning_worth_it": {
        "n_samples_glue": "generations per method (RNG, BABYNAMES)",
        "suite_samples_glue": "generations per six-task prompt",
        "tuned_entropy": "tuned models: mean entropy over valid answers (nats)",
        "tuned_valid": "tuned models: mean valid rate",
        "best_other_method": "the untuned method(s) of highest entropy",
        "best_other_entropy": "its mean entropy over valid answers (nats)",
        "best_other_valid": "its mean valid rate",
    },
    "07_what_it_takes": {
        "scope_note": "what ran",
        "n_names_glue": "names generated per BABYNAMES adapter",
        "names_outside_verdict": "BABYNAMES: valid names outside the targets",
        "memorization_verdict": "BABYNAMES: memorization at a common loss",
        "names_pick_sentence": "BABYNAMES: the settings the rule picks",
        "held_out_glue": "six tasks: the family left out",
        "prompt_passes_glue": "six tasks: passes of a 'prompt' run",
        "suite_verdict": "six tasks: the left-out family's exact entropy",
        "suite_pick_sentence": "six tasks: the settings the rule picks",
        "format_verdict": "biographies: the end of turn after the first field",
        "bio_transfer_verdict": "biographies: first names, format controlled",
        "utility_verdict": "knowledge and greedy QA",
    },
    "08_beyond_the_paper": {
        "n_names_glue": "names generated per adapter",
        "passes_glue": "updates per run",
        "fixed_list_gamma_stop_share_ratio": "fixed list at its gamma stop: held-out ratio",
        "fresh_lists_same_updates_share_ratio": "fresh lists, same updates: held-out ratio",
        "mechanism": "where the fall comes from",
        "verdict_sentence": "the verdict",
        "dose_lists": "remedy 3: the lists tuned",
        "suite_change": "six tasks: left-out entropy, carried remedy against chapter 4",
    },
}


def glued(executed: Path) -> dict:
    """Every value an executed notebook glued, as its plain-text form."""
    values = {}
    for cell in json.loads(executed.read_text())["cells"]:
        for output in cell.get("outputs", []):
            glued_as = output.get("metadata", {}).get("scrapbook", {})
            name, prefix = glued_as.get("name"), glued_as.get("mime_prefix", "")
            text = output.get("data", {}).get(f"{prefix}text/plain")
            if name and text is not None:
                values[name] = "".join(text).strip("'\"")
    return values


def compare(default: Path, full: Path) -> dict:
    """chapter -> {"default": {name: value}, "full": {name: value}} for chapters in both folders."""
    found = {}
    for chapter, names in VERDICTS.items():
        pair = {label: folder / f"{chapter}.ipynb" for label, folder in (("default", default), ("full", full))}
        if all(path.exists() for path in pair.values()):
            values = {label: glued(path) for label, path in pair.items()}
            found[chapter] = {label: {n: v.get(n) for n in names} for label, v in values.items()}
            found[chapter]["labels"] = dict(names)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("default", type=Path, help="executed chapters of the default profile")
    parser.add_argument("full", type=Path, help="executed chapters of the full profile")
    args = parser.parse_args()
    found = compare(args.default, args.full)
    if not found:
        raise SystemExit(f"no chapter of {sorted(VERDICTS)} is in both {args.default} and {args.full}")
    record = json.loads(OUTPUT.read_text()) if OUTPUT.exists() else {}
    for chapter, values in found.items():
        params = {label: json.loads((folder / "timings.json").read_text()).get("params")
                  for label, folder in (("default", args.default), ("full", args.full))
                  if (folder / "timings.json").exists()}
        record[chapter] = {**values, "params": params}
        print(f"{chapter}: " + "; ".join(f"{n} {values['default'][n]} -> {values['full'][n]}"
                                          for n in VERDICTS[chapter]))
    OUTPUT.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
