"""Names that are not sentiment attributes (docs/METHOD.md, step 2; a kit rule, not the paper's).

A small teacher fills its list with names that describe no property of the text: the list's own
numbering ("sentence 1", "attribute 3"), words of the prompt's scaffolding ("more specific attributes",
"specifics of this text", "attribute name") and names of media or layout that a review or tweet does not
have ("infographic", "bold font"). Clustered, they become perspectives that stage 03 turns into
instructions about nothing. The rule: a name is *not an attribute* when, once numbers and function words
are set aside, every word it has is a scaffolding word or a media/layout word, so nothing in it could
describe the sentiment, the tone or the style of a text. "sentence structure" and "formal description"
stay ("structure", "formal" describe writing); "sentence 1" and "infographic" go.

These names are counted per reason (stage 01's summary table and record) and kept out of the
inventory, never silently dropped; an inventory from elsewhere (``clustering.inventory_file``) is
clustered as given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Literal

NonAttributeReason = Literal["numbering", "prompt_scaffolding", "media_or_layout"]
NON_ATTRIBUTE_REASONS: tuple[NonAttributeReason, ...] = ("numbering", "prompt_scaffolding", "media_or_layout")

# Words that carry no meaning of their own in a name.
_FUNCTION_WORDS = frozenset("a an and the of this that its in on for to other more one no".split())
# The enumeration prompt's and a numbered list's own vocabulary: a name made only of these names the
# answer's scaffolding, not the text ("attribute", "attribute value", "specifics", "sentence", "item").
_SCAFFOLDING = frozenset(
    """attribute attributes name names description descriptions value values specific specifics
    particular general obvious tedious example examples item items list number sentence sentences
    paragraph paragraphs line lines point points step steps part parts section sections text texts""".split()
)
# Media and layout: what a page or a picture has, not what a review, a tweet or a post expresses.
_MEDIA_OR_LAYOUT = frozenset(
    """infographic infographics image images picture pictures photo photos video videos chart charts
    graph graphs diagram diagrams table tables font fonts bold italic italics underline markdown html
    bullet bullets heading headings title titles layout formatting""".split()
)
_NUMBER = re.compile(r"^(?:#?\d+(?:st|nd|rd|th)?|[ivx]+)$")
_TOKEN = re.compile(r"[a-z0-9#]+")


def non_attribute_reason(name: str) -> NonAttributeReason | None:
    """Why a normalised name is not a sentiment attribute, or ``None`` when it may be one.

    ``numbering`` when the name holds a number and nothing but scaffolding ("sentence 1", "attribute 2");
    ``media_or_layout`` when a media/layout word is among its words ("infographic"); else
    ``prompt_scaffolding`` when all its words are scaffolding ("more specific attributes").
    """
    tokens = [t for t in _TOKEN.findall(name.lower()) if t not in _FUNCTION_WORDS]
    numbers = [t for t in tokens if _NUMBER.match(t)]
    words = [t for t in tokens if not _NUMBER.match(t)]
    if not all(w in _SCAFFOLDING or w in _MEDIA_OR_LAYOUT for w in words):
        return None
    if any(w in _MEDIA_OR_LAYOUT for w in words):
        return "media_or_layout"
    return "numbering" if numbers else "prompt_scaffolding"


def non_attribute_counts(names: Iterable[str]) -> dict[str, int]:
    """Distinct names per reason (every reason present, zero when none), for the summary and the record."""
    found = Counter(r for n in set(names) if (r := non_attribute_reason(n)))
    return {r: found[r] for r in NON_ATTRIBUTE_REASONS}
