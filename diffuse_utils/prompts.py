"""The paper's prompts, word for word (typos included): the RNG prompt of Section 4,
the five formats of Figure 2, the baby-names prompt, and footnote 2's completion prompt.

Example::

    RANGE_PROMPTS[0].format(low=1, high=10)
    # 'Randomly pick an integer between 1 and 10. Do not provide any code. ...'
"""

BABYNAMES_PROMPT = (
    "Please generate an English first name, chosen completely at random. Output only "
    "the name between two curly braces, like this: {name}. Don't output code."
)

# Appendix B.1: the five prompt formats of Figure 2 ({low}/{high} filled in; typos are
# the paper's).
RANGE_PROMPTS = [
    "Randomly pick an integer between {low} and {high}. Do not provide any code. "
    "Output only the number between two curly braces, like this: {{number}}. Don't "
    "output code.",
    "Output a number uniform randomly from the range {low} to {high}, inclusive. "
    "Output the number between two curly braces, like this: {{number}}. Don't output "
    "code.",
    "Choose a number at random between {low} and {high}. Output your chosen number "
    "bweet two curly braces, like this {{number}}.",
    "Select an integer completely at random from the interval [{low}, {high}]. "
    "Output the selected integer between two curly braces, like this {{n}}.",
    "I need you to pick a number completely at random. The number should be between "
    "{low} and {high}. Print the number between two curly braces, like this: {{n}}.",
]
# The RNG prompt of Section 4 with its range as a parameter, and the paper's 1-10
# instance of it.
RNG_RANGE_PROMPT = (
    "Generate a random number between {low} and {high}. Output only the number "
    "between two curly braces, like this: {{number}}. Don't output code."
)
RNG_PROMPT = RNG_RANGE_PROMPT.format(low=1, high=10)
# Footnote 2: a completion prompt for a base model (answers " 1" ... " 20").
DIE_PROMPT = "She rolled the 20-sided die. It landed on the number"
