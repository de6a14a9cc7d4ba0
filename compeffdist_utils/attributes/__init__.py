"""Stage 01 (notebook ``01_attributes``): the teacher enumerates sentiment attributes per text; answers are
parsed, names normalised and counted into the inventory; its figures.
"""

from compeffdist_utils.attributes.enumeration import (
    WORKED_EXAMPLE_ANSWER,
    WORKED_EXAMPLE_TEXT,
    Enumeration,
    best_example,
    build_messages,
    build_prompt,
    enumerate_attributes,
    enumeration_requests,
    yield_counts,
)
from compeffdist_utils.attributes.inventory import (
    AttributeStats,
    ParsedAttribute,
    aggregate,
    attribute_records,
    frequency_cut,
    normalise_name,
)
from compeffdist_utils.attributes.parsing import Item, ParseStatus, clean_field, parse_answer

__all__ = [
    "AttributeStats",
    "Enumeration",
    "Item",
    "ParseStatus",
    "ParsedAttribute",
    "WORKED_EXAMPLE_ANSWER",
    "WORKED_EXAMPLE_TEXT",
    "aggregate",
    "attribute_records",
    "best_example",
    "build_messages",
    "build_prompt",
    "clean_field",
    "enumerate_attributes",
    "enumeration_requests",
    "frequency_cut",
    "normalise_name",
    "parse_answer",
    "yield_counts",
]
