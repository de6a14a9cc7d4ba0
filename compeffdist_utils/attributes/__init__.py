"""Stage 01 (notebook ``01_attributes``): the teacher enumerates sentiment attributes per text; answers are
parsed, names normalised and counted into the inventory; its figures.
"""

from compeffdist_utils.attributes.enumeration import (
    WORKED_EXAMPLE_ANSWER,
    WORKED_EXAMPLE_TEXT,
    AttributeStats,
    Enumeration,
    Item,
    ParsedAttribute,
    aggregate,
    attribute_records,
    build_messages,
    build_prompt,
    clean_field,
    enumerate_attributes,
    enumeration_requests,
    frequency_cut,
    normalise_name,
    parse_answer,
    yield_counts,
)

__all__ = [
    "AttributeStats",
    "Enumeration",
    "Item",
    "ParsedAttribute",
    "WORKED_EXAMPLE_ANSWER",
    "WORKED_EXAMPLE_TEXT",
    "aggregate",
    "attribute_records",
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
