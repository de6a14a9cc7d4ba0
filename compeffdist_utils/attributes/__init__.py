"""Stage 01 (notebook ``01_attributes``): the teacher enumerates sentiment attributes per text; answers are
parsed, names normalised and counted into the inventory; its figures.
"""

from compeffdist_utils.attributes.enumeration import (
    WORKED_EXAMPLE_ANSWER,
    best_example,
    build_messages,
    enumerate_attributes,
    enumeration_requests,
    yield_counts,
)
from compeffdist_utils.attributes.inventory import aggregate, attribute_records, frequency_cut
from compeffdist_utils.attributes.parsing import parse_answer

__all__ = [
    "WORKED_EXAMPLE_ANSWER",
    "aggregate",
    "attribute_records",
    "best_example",
    "build_messages",
    "enumerate_attributes",
    "enumeration_requests",
    "frequency_cut",
    "parse_answer",
    "yield_counts",
]
