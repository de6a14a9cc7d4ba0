"""The teacher prompts of stage 03 (docs/METHOD.md, step 4a-4d), kept apart from parsing and bookkeeping.

The wording follows the method's description of what each step asks for; the authors' exact prompt
texts for this stage are not published, so these are the kit's.

Small teachers (the embedded SmolLM2-135M) only produce a parseable answer when they have seen the
expected shape. With ``params.instructions.worked_example`` (on in tiny params, off in paper params) the
request is preceded by a *worked example*: the same kind of request about another topic and a model
answer to it, as an earlier turn of the chat (:func:`backends.conversation`). Trials with SmolLM2 showed that a
solved earlier turn is copied less than an example pasted into the request itself, and the request
reads the same with and without it. The examples use topics unlikely to be a cluster's own (humour,
sarcasm), and the parsers drop items that merely repeat them (``text.echoes_worked_example``),
so a teacher that copies the example contributes nothing rather than polluting the pool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

# -- (a) analysis prompts ------------------------------------------------------------------------------


def analysis_prompt(
    attribute_names: Sequence[str], top_descriptions: Sequence[tuple[str, str]], n_prompts: int
) -> str:
    """Ask for ``n_prompts`` domain-general, open-ended analysis prompts for one cluster.

    The teacher sees every attribute name and the most common description of the top-5 attributes, as in
    docs/METHOD.md, step 4a (attributes without a description, e.g. from an external inventory, are only named), and
    must not name a single attribute (the prompt should capture what they share).
    """
    described = "\n".join(f"- {name}: {desc}" for name, desc in top_descriptions if desc)
    return "\n\n".join(
        [
            "The following sentiment attributes were found in user texts (reviews, tweets, posts) and belong "
            "to one group.",
            f"Attribute names: {', '.join(attribute_names)}",
            *([f"What the most common ones mean:\n{described}"] if described else []),
            f"Write {n_prompts} open-ended analysis prompts that ask someone to analyse a single user text for "
            "what these attributes have in common. The prompts must work for any domain (not only movies or "
            'restaurants) and must not name any one attribute from the list. Start each prompt with "Please '
            'analyze", "What", "Which" or "How".',
            "Answer with a numbered list only, one prompt per line.",
        ]
    )


ANALYSIS_EXAMPLE_ITEMS = (
    "Please analyze how the author uses humour to shape the reader's impression of the subject.",
    "What playful or witty elements appear in the text, and what effect do they have?",
    "How does the light-hearted tone change the overall message of the text?",
)
ANALYSIS_EXAMPLE = (
    analysis_prompt(
        ["humour", "wit", "playfulness", "irony of tone"],
        [("humour", "how funny the author tries to be"), ("wit", "clever, quick use of words")],
        len(ANALYSIS_EXAMPLE_ITEMS),
    ),
    "\n".join(f"{i}. {p}" for i, p in enumerate(ANALYSIS_EXAMPLE_ITEMS, 1)),
)


# -- (b) task ideation ---------------------------------------------------------------------------------


def ideation_prompt(attribute: str, description: str) -> str:
    """Ask for a JSON list of single-text tasks about the cluster's most frequent attribute (docs/METHOD.md, step 4b).

    The method asks for ``{task_name, task_description}``; the kit also asks for ``task_type`` so the type
    comes from the teacher when it can say it (``task_items.assign_task_type`` validates it and
    falls back to keywords when it is missing or unknown).
    """
    return "\n\n".join(
        [
            "You design sentiment analysis tasks.",
            f'Attribute: "{attribute}"' + (f"\nDescription: {description}" if description else ""),
            "Propose tasks that analyse this attribute in ONE user text (a review, a tweet or a post). Cover "
            "all four task types:\n"
            "- classification: give one label from a closed set (e.g. low / medium / high) or an open label\n"
            "- scoring: rate the text on a numeric scale (e.g. 1 to 5)\n"
            "- extraction: extract keywords, key sentences, triggers or causes from the text\n"
            "- structured_output: give several fields as JSON or a table",
            "Every task works on a single text; never compare two texts.",
            'Answer with a JSON list only: [{"task_name": "...", "task_type": "...", "task_description": "..."}]',
        ]
    )


IDEATION_EXAMPLE_TASKS = (
    {
        "task_name": "sarcasm detection",
        "task_type": "classification",
        "task_description": "Decide whether the text is sarcastic. Answer sarcastic or not sarcastic.",
    },
    {
        "task_name": "sarcasm intensity rating",
        "task_type": "scoring",
        "task_description": "Rate how strongly sarcastic the text is on a scale from 1 (not at all) to 5.",
    },
    {
        "task_name": "sarcastic phrase extraction",
        "task_type": "extraction",
        "task_description": "Copy the phrases of the text that carry the sarcasm, one per line.",
    },
    {
        "task_name": "sarcasm profile",
        "task_type": "structured_output",
        "task_description": 'Return JSON {"sarcastic": true/false, "target": "...", "cue": "..."}.',
    },
)


def _json_list(tasks: Sequence[dict[str, str]]) -> str:
    """One object per line, keys in the order the prompt asks for them."""
    return "[\n" + ",\n".join("  " + json.dumps(t, ensure_ascii=False) for t in tasks) + "\n]"


IDEATION_EXAMPLE = (
    ideation_prompt("sarcasm", "whether the author says the opposite of what they mean to mock"),
    _json_list(IDEATION_EXAMPLE_TASKS),
)


# -- (c) standardisation -------------------------------------------------------------------------------

_FORMAT_RULES = {
    "classification": "list the full label set and say that the answer is exactly one of those labels",
    "scoring": "state the scale, what its two ends mean, and that the answer is one number",
    "extraction": "say whether extracted spans must be copied word for word from the text and how several "
    "spans are separated",
    "structured_output": "give the full JSON schema (every key and the type or allowed values of its value)",
}


def standardisation_prompt(task_name: str, task_type: str, task_description: str, min_examples: int) -> str:
    """Ask for an unambiguous definition with the exact output format and >= ``min_examples`` examples."""
    rule = _FORMAT_RULES.get(task_type, _FORMAT_RULES["classification"])
    return "\n\n".join(
        [
            "Rewrite the following sentiment analysis task so that anyone can carry it out without guessing.",
            f"Task name: {task_name}\nTask type: {task_type}\nTask description: {task_description}",
            'First write one paragraph that starts with "Definition:" and says exactly what to do with the '
            f"input text and the exact output format ({rule}).",
            f"Then write at least {min_examples} example{'s' if min_examples != 1 else ''}, each as two lines:\n"
            "Input: <one user text>\n"
            "Output: <the answer in the exact output format>",
            "Every example uses one text only; never compare two texts.",
        ]
    )


STANDARDISATION_EXAMPLE_ANSWER = """Definition: Decide whether the input text is sarcastic, that is, whether \
the author says the opposite of what they mean in order to mock something. Output format: exactly one label \
from {sarcastic, not sarcastic}, in lower case, with nothing else.

Input: Oh great, another two-hour wait for a cold burger. Best night ever.
Output: sarcastic

Input: The staff were friendly and the burger arrived hot.
Output: not sarcastic"""
# One solved standardisation per task type, on the same two texts: a small teacher copies the shape of
# the example it sees, so a scoring task shown the classification example came back with the label set
# {sarcastic, not sarcastic} (a tiny run lost its only scoring task that way).
_STANDARDISED_OTHER_TYPES = {
    "scoring": (
        "Rate how strongly sarcastic the input text is. Output format: one whole number from 1 (not "
        "sarcastic at all) to 5 (openly mocking), with nothing else.",
        ("5", "1"),
    ),
    "extraction": (
        "Copy the phrases of the input text that carry the sarcasm, word for word. Output format: the "
        'phrases separated by " | ", or "none" when there is none.',
        ("Oh great | Best night ever", "none"),
    ),
    "structured_output": (
        "Describe the sarcasm of the input text as JSON. Output format: one JSON object with the keys "
        '"sarcastic" (true or false), "target" (what is mocked, or null) and "cue" (the words that show '
        "it, or null).",
        (
            '{"sarcastic": true, "target": "the burger place", "cue": "Best night ever"}',
            '{"sarcastic": false, "target": null, "cue": null}',
        ),
    ),
}


def _standardised_answer(definition: str, outputs: Sequence[str]) -> str:
    """A solved standardisation on the classification example's two texts, with these outputs."""
    inputs = re.findall(r"(?m)^Input: (.+)$", STANDARDISATION_EXAMPLE_ANSWER)
    pairs = "\n\n".join(f"Input: {i}\nOutput: {o}" for i, o in zip(inputs, outputs, strict=True))
    return f"Definition: {definition}\n\n{pairs}"


# Each example request asks for as many examples as its answer gives, so the two agree.
STANDARDISATION_EXAMPLES: dict[str, tuple[str, str]] = {
    t["task_type"]: (
        standardisation_prompt(t["task_name"], t["task_type"], t["task_description"], 2),
        STANDARDISATION_EXAMPLE_ANSWER
        if t["task_type"] == "classification"
        else _standardised_answer(*_STANDARDISED_OTHER_TYPES[t["task_type"]]),
    )
    for t in IDEATION_EXAMPLE_TASKS
}
STANDARDISATION_EXAMPLE = STANDARDISATION_EXAMPLES["classification"]


def standardisation_example(task_type: str) -> tuple[str, str]:
    """The worked example of the task's own type (classification's for a type the kit does not know)."""
    return STANDARDISATION_EXAMPLES.get(task_type, STANDARDISATION_EXAMPLE)


# -- (d) demonstrations grounded in real text ----------------------------------------------------------


def demonstration_prompt(
    definition: str, shown_demos: Sequence[tuple[str, str]], reference_texts: Sequence[str]
) -> str:
    """Ask for two new (Input, Output) pairs in the style of two real user texts (docs/METHOD.md, step 4d).

    The style references come first and the task with its 1-2 solved examples last, right before the
    answer format: small teachers follow what they read last.
    """
    demos = "\n\n".join(f"Input: {i}\nOutput: {o}" for i, o in shown_demos)
    refs = "\n".join(f'Reference {k}: "{t}"' for k, t in enumerate(reference_texts, 1))
    return "\n\n".join(
        [
            "Two real user texts, to be used ONLY as style references (length, tone, topic, way of writing):\n"
            + refs,
            f"Task: {definition}",
            f"Solved examples of the task:\n{demos}",
            "Write exactly two NEW examples of the task. Their inputs must read like the reference texts but "
            "be different texts, and must not mention the references. Answer in exactly this form:\n"
            "Input: ...\nOutput: ...\nInput: ...\nOutput: ...",
        ]
    )


DEMONSTRATION_EXAMPLE_PAIRS = (
    ("Wow, the update deleted all my photos. Exactly what I wanted on my birthday.", "sarcastic"),
    ("Finally tried the new cafe downtown and the cinnamon rolls were lovely.", "not sarcastic"),
)
DEMONSTRATION_EXAMPLE = (
    demonstration_prompt(
        STANDARDISATION_EXAMPLE_ANSWER.split("\n\n")[0].removeprefix("Definition: "),
        [("Oh great, another two-hour wait for a cold burger. Best night ever.", "sarcastic")],
        [
            "omg my phone died right before the concert started, perfect timing as always",
            "Had brunch at Rosie's today, the pancakes were fluffy and the coffee strong.",
        ],
    ),
    "\n".join(f"Input: {i}\nOutput: {o}" for i, o in DEMONSTRATION_EXAMPLE_PAIRS),
)


# -- (e) the prompt string of a task-specific instruction ----------------------------------------------


def task_instruction_prompt(definition: str, demos: Sequence[tuple[str, str]]) -> str:
    """The ``prompt`` a task-specific pool record carries: its definition, then its demos as examples.

    Stage 04 appends ``"\\n\\nInput: {text}"`` to this (the authors' sample form), so the demos use the
    same ``Input:`` / ``Output:`` shape and the teacher's answer continues the pattern.
    """
    if not demos:
        return definition
    blocks = "\n\n".join(f"Input: {i}\nOutput: {o}" for i, o in demos)
    return f"{definition}\n\nExamples:\n\n{blocks}"
